"""``apply_transforms``: the order and meaning of a transform list (ANTs' convention), known answers on a synthetic
image with an oblique affine and a non-uniform displacement field."""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage

from monai_avsm import apply_transforms
from monai_avsm.data.export import write_affine_transform, write_displacement_field, write_image

N = 32


class TestApplyTransforms(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        x, y, z = np.meshgrid(*[np.arange(N, dtype=np.float64)] * 3, indexing="ij")
        cls.image = (np.sin(x / 3.0) + np.cos(y / 4.0) + np.sin(z / 5.0) * x / 10).astype(np.float32)
        cls.affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 2 mm voxels, RAS
        cls.affine[:3, 3] = [-30.0, -20.0, -10.0]
        write_image(cls.p("img.nii.gz"), torch.tensor(cls.image)[None], cls.affine)
        d = np.zeros((3, N, N, N))
        d[0] = 3 * np.sin(y / 7.0)
        d[1] = 2 * np.cos(z / 6.0)
        cls.d = d
        write_displacement_field(cls.p("field.nii.gz"), torch.tensor(d), cls.affine)
        T = np.eye(4)
        T[:3, :3] = [[1.03, 0.02, 0], [0, 0.97, 0], [0.02, 0, 1]]
        T[:3, 3] = [1.0, -1.0, 0.5]
        cls.T = T
        write_affine_transform(cls.p("aff.mat"), torch.tensor(T))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def p(cls, name: str) -> str:
        return os.path.join(cls.tmp, name)

    def _expected(self, world_points: np.ndarray) -> np.ndarray:
        """The image read (linearly) at world points ``(3, N, N, N)``."""
        vox = np.linalg.inv(self.affine) @ np.concatenate([world_points.reshape(3, -1), np.ones((1, N**3))])
        return ndimage.map_coordinates(self.image.astype(np.float64), vox[:3], order=1).reshape(N, N, N)

    def _apply(self, transforms, name):
        out = self.p(name)
        paths = [t if t.startswith("[") else self.p(t) for t in transforms]
        apply_transforms(paths, self.p("img.nii.gz"), self.p("img.nii.gz"), out)
        return np.asarray(nib.load(out).dataobj, dtype=np.float64)

    def _inside(self, points):
        vox = np.linalg.inv(self.affine) @ np.concatenate([points.reshape(3, -1), np.ones((1, N**3))])
        return ((vox[:3] > 1) & (vox[:3] < N - 2)).all(0).reshape(N, N, N)

    def test_order_field_then_affine(self):
        """[field, affine]: reference points go through the field first, then the affine: q = T(p + d(p))."""
        p = np.einsum("ij,j...->i...", self.affine[:3, :3], np.indices((N, N, N)).astype(np.float64))
        p = p + self.affine[:3, 3].reshape(3, 1, 1, 1)
        q = p + self.d
        q = np.einsum("ij,j...->i...", self.T[:3, :3], q) + self.T[:3, 3].reshape(3, 1, 1, 1)
        got = self._apply(["field.nii.gz", "aff.mat"], "fa.nii.gz")
        inside = self._inside(q)
        self.assertGreater(inside.mean(), 0.3)
        np.testing.assert_allclose(got[inside], self._expected(q)[inside], atol=1e-4)
        # the other order is a different transformation
        other = self._apply(["aff.mat", "field.nii.gz"], "af.nii.gz")
        self.assertGreater(np.abs(other - got)[inside].max(), 0.1)  # measured 0.31 (the tolerance above is 1e-4)

    def test_inverse_affine_syntax(self):
        """'[aff.mat,1]' is the inverse: [aff, [aff,1]] is the identity (inside the image)."""
        got = self._apply(["aff.mat", "[" + self.p("aff.mat") + ",1]"], "ident.nii.gz")
        core = (slice(2, -2),) * 3
        np.testing.assert_allclose(got[core], self.image[core], atol=1e-4)
        with self.assertRaisesRegex(ValueError, "only affine files"):
            self._apply(["[" + self.p("field.nii.gz") + ",1]"], "bad.nii.gz")

    def test_refuses_to_overwrite(self):
        self._apply(["aff.mat"], "once.nii.gz")
        with self.assertRaisesRegex(FileExistsError, "once.nii.gz"):
            self._apply(["aff.mat"], "once.nii.gz")


if __name__ == "__main__":
    unittest.main()
