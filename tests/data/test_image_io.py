# Copyright (c) 2026 The monai_avsm authors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""The fast readers (nibabel; ITK through MONAI for the rest) against MONAI's ``LoadImage``, the working grid without
MONAI against ``pair_loading_transforms``, and the checks on bad files, on a real T1 volume (nibabel's)."""

from __future__ import annotations

import os
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch
from monai.transforms import LoadImage

from monai_avsm.data import pair_loading_transforms
from monai_avsm.data.files import check_image_file
from monai_avsm.data.image_io import check_intensities, read_image
from monai_avsm.data.working_grid import to_working_grid

REAL_T1 = os.path.join(os.path.dirname(nib.__file__), "tests", "data", "anatomical.nii")


class TestReadImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        img = nib.load(REAL_T1)
        cls.data = np.asarray(img.dataobj).astype(np.float32)
        # an oblique, permuted and flipped grid: not the RAS voxel order
        rot = np.array([[0.0, 1.0, 0.0], [-np.cos(0.3), 0.0, np.sin(0.3)], [np.sin(0.3), 0.0, np.cos(0.3)]])
        affine = np.eye(4)
        affine[:3, :3] = rot @ np.diag([2.0, 2.5, 3.0])
        affine[:3, 3] = [10.0, -20.0, 5.0]
        cls.odd = os.path.join(cls.tmp, "odd.nii.gz")
        nib.save(nib.Nifti1Image(cls.data, affine), cls.odd)
        cls.nrrd = os.path.join(cls.tmp, "odd.nrrd")
        import itk

        itk.imwrite(itk.imread(cls.odd), cls.nrrd)

    def test_same_as_monai_load_image(self):
        for path in (REAL_T1, self.odd, self.nrrd):
            ours = read_image(path)
            ref = LoadImage(image_only=True, ensure_channel_first=True)(path)
            np.testing.assert_allclose(ours.data.numpy(), ref.numpy().astype(np.float32), rtol=0, atol=1e-6)
            np.testing.assert_allclose(ours.affine.numpy(), np.asarray(ref.affine, np.float64), atol=1e-5)
            self.assertEqual(ours.data.dtype, torch.float32)

    def test_working_grid_same_as_monai_pipeline(self):
        for path in (REAL_T1, self.odd):
            item = pair_loading_transforms(spatial_size=(20, 24, 16), moving_label_key=None, fixed_label_key=None)(
                {"moving": path, "fixed": path}
            )
            data, affine = to_working_grid(read_image(path), (20, 24, 16))
            np.testing.assert_allclose(data.numpy(), item["fixed"].numpy(), atol=1e-6)
            np.testing.assert_allclose(affine.numpy(), np.asarray(item["fixed"].affine, np.float64), atol=1e-9)

    def test_labels_and_bad_files(self):
        labels = os.path.join(self.tmp, "labels.nii.gz")
        nib.save(nib.Nifti1Image((self.data > self.data.mean()).astype(np.float32) * 2, np.eye(4)), labels)
        lab = read_image(labels, label=True)
        self.assertEqual(lab.data.dtype, torch.int64)
        self.assertEqual(set(torch.unique(lab.data).tolist()), {0, 2})
        cases = {}
        cases["half.nii.gz"] = (nib.Nifti1Image(self.data * 0.5 + 0.25, np.eye(4)), {"label": True}, "non-integer")
        nan = self.data.copy()
        nan[3, 3, 3] = np.nan
        cases["nan.nii.gz"] = (nib.Nifti1Image(nan, np.eye(4)), {}, "NaN")
        cases["four_d.nii.gz"] = (nib.Nifti1Image(np.stack([self.data] * 2, -1), np.eye(4)), {}, "4D")
        for name, (img, kwargs, message) in cases.items():
            path = os.path.join(self.tmp, name)
            nib.save(img, path)
            with self.assertRaisesRegex(ValueError, message):
                read_image(path, **kwargs)
            with self.assertRaisesRegex(ValueError, name):
                read_image(path, **kwargs)
        corrupt = os.path.join(self.tmp, "corrupt.nii.gz")
        with open(corrupt, "wb") as f:
            f.write(b"not an image" * 20)
        with self.assertRaisesRegex(ValueError, "corrupt.nii.gz"):
            check_image_file(corrupt, "moving", "test")
        empty = os.path.join(self.tmp, "empty.nii.gz")
        open(empty, "wb").close()
        with self.assertRaisesRegex(ValueError, "empty"):
            check_image_file(empty, "moving", "test")
        with self.assertRaisesRegex(FileNotFoundError, "missing.nii.gz"):
            check_image_file(os.path.join(self.tmp, "missing.nii.gz"), "moving", "test")

    def test_blank_images_are_refused(self):
        for values, message in ((np.zeros_like(self.data), "all zero"), (np.full_like(self.data, 7.0), "constant")):
            path = os.path.join(self.tmp, "blank.nii.gz")
            nib.save(nib.Nifti1Image(values, np.eye(4)), path)
            with self.assertRaisesRegex(ValueError, message):
                check_intensities(read_image(path), "fixed", "test")
        img = read_image(REAL_T1)
        check_intensities(img, "fixed", "test")  # a real image passes
        inside = torch.zeros(img.spatial_shape, dtype=torch.bool)
        inside[0, 0, 0] = True  # one voxel: constant inside the mask
        with self.assertRaisesRegex(ValueError, "inside the mask"):
            check_intensities(img, "fixed", "test", mask=inside)


if __name__ == "__main__":
    unittest.main()
