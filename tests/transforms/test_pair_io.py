"""The pair transforms of ``monai_avsm.transforms.pair_io`` on real files: ``CheckPaird`` and ``LoadPairImaged`` name
the file and the problem for bad input, ``StoreGeometryd`` keeps the native geometry, ``SpacingEachd`` resamples
where MONAI's ``Spacingd`` fails on the pair keys."""

from __future__ import annotations

import re
import unittest
import warnings

import nibabel as nib
import numpy as np
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Spacingd

from monai_avsm.data import pair_loading_transforms
from monai_avsm.transforms import CheckPaird, SpacingEachd, StoreGeometryd
from tests.image_files import LoadingTestCase, root_cause


class TestBadInput(LoadingTestCase):
    def assert_pair_error(self, item, error, *patterns, **kwargs):
        with self.assertRaises(Exception) as ctx:
            self.load(item, **kwargs)
        cause = root_cause(ctx.exception)
        self.assertIsInstance(cause, error, f"{type(cause).__name__}: {cause}")
        for pattern in patterns:
            self.assertRegex(str(cause), pattern)

    def test_missing_file(self):
        missing = self.path("no_such_scan.nii.gz")
        self.assert_pair_error(
            {"moving": missing, "fixed": self.files["nii"]},
            FileNotFoundError,
            rf"'moving' file '{re.escape(missing)}' does not exist",
        )
        with self.assertRaisesRegex(FileNotFoundError, "no_such_scan.nii.gz' does not exist"):
            CheckPaird(stage="files")({"moving": missing, "fixed": self.files["nii"]})

    def test_missing_key(self):
        with self.assertRaisesRegex(ValueError, "CheckPaird: the item has no 'fixed' key"):
            CheckPaird(stage="files")({"moving": self.files["nii"]})

    def test_corrupt_file(self):
        garbage = self.path("garbage.nii.gz")
        with open(garbage, "wb") as f:
            f.write(b"this is not an image" * 10)
        truncated = self.path("truncated.nii.gz")
        with open(self.files["nii"], "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        for bad in (garbage, truncated):
            self.assert_pair_error(
                {"moving": self.files["nii"], "fixed": bad},
                ValueError,
                rf"cannot read 'fixed' file '{re.escape(bad)}': corrupt or not a supported image",
            )

    def test_empty_file(self):
        empty = self.path("empty.mha")
        open(empty, "wb").close()
        self.assert_pair_error(
            {"moving": empty, "fixed": self.files["nii"]}, ValueError, rf"'{re.escape(empty)}' is empty \(0 bytes\)"
        )

    def test_4d_image_where_3d_expected(self):
        four_d = self.path("t1_4d.nii.gz")
        nib.save(nib.Nifti1Image(np.stack([self.volume] * 3, -1), self.affine), four_d)
        self.assert_pair_error(
            {"moving": four_d, "fixed": self.files["nii"]},
            ValueError,
            rf"'moving' file '{re.escape(four_d)}' has shape \(33, 41, 25, 3\) \(4D, 3 channel\(s\)\); expected a 3D",
        )

    def test_non_integer_labels(self):
        soft = self.path("soft_seg.nii.gz")
        nib.save(nib.Nifti1Image(self.labels.astype(np.float32) * 0.5, self.affine), soft)
        self.assert_pair_error(
            {"moving": self.files["nii"], "fixed": self.files["nii"], "fixed_label": soft},
            ValueError,
            rf"'fixed_label' file '{re.escape(soft)}' has \d+ non-integer values \(e.g. 0.5\)",
        )

    def test_moving_and_fixed_of_different_dimensionality(self):
        flat = self.path("t1_slice.nii.gz")
        nib.save(nib.Nifti1Image(self.volume[:, :, 12], self.affine), flat)
        self.assert_pair_error(
            {"moving": flat, "fixed": self.files["mha"]},
            ValueError,
            rf"'moving' file '{re.escape(flat)}' \(2D, shape \(33, 41\)\) and 'fixed' file "
            rf"'{re.escape(self.files['mha'])}' \(3D, shape \(33, 41, 25\)\) have different dimensionality",
        )

    def test_label_off_its_image_grid(self):
        small = self.path("small_seg.nii.gz")
        nib.save(nib.Nifti1Image(self.labels[:20], self.affine), small)
        self.assert_pair_error(
            {"moving": self.files["nii"], "fixed": self.files["nii"], "moving_label": small},
            ValueError,
            rf"'moving_label' file '{re.escape(small)}' has spatial shape \(20, 41, 25\) but its image 'moving'",
        )

    def test_different_grids_without_working_size(self):
        small = self.path("t1_small.nii.gz")
        nib.save(nib.Nifti1Image(self.volume[:20], self.affine), small)
        self.assert_pair_error(
            {"moving": small, "fixed": self.files["nii"]}, ValueError, "must share one working grid: set 'spatial_size'"
        )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, r"pair_loading_transforms\(\): 'spatial_size' must have 3"):
            pair_loading_transforms(spatial_size=(10, 10))
        with self.assertRaisesRegex(ValueError, "'intensity_percentiles' must satisfy"):
            pair_loading_transforms(intensity_percentiles=(99.9, 0.1))
        with self.assertRaisesRegex(ValueError, "CheckPaird: 'stage' must be one of"):
            CheckPaird(stage="later")


class TestGeometryAndSpacing(LoadingTestCase):
    def loaded(self) -> dict:
        keys = ["fixed", "fixed_label"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load = Compose([LoadImaged(keys, image_only=True), EnsureChannelFirstd(keys)])
            return load({"fixed": self.files["nii"], "fixed_label": self.files["label"]})

    def test_store_geometry_of_a_known_header(self):
        out = StoreGeometryd(keys="fixed")(self.loaded())
        np.testing.assert_allclose(out["fixed_original_affine"].numpy(), self.affine)  # LAS, 2 mm
        self.assertEqual(out["fixed_original_affine"].dtype, torch.float64)
        self.assertEqual(out["fixed_original_shape"].tolist(), [33, 41, 25])
        np.testing.assert_allclose(out["fixed_original_spacing"].numpy(), [2.0, 2.0, 2.0])
        np.testing.assert_allclose(out["fixed_original_direction"].numpy(), np.diag([-1.0, 1.0, 1.0]))
        self.assertEqual(out["fixed_filename"], self.files["nii"])
        with self.assertRaisesRegex(ValueError, "StoreGeometryd: 'fixed' must be a MetaTensor with an affine"):
            StoreGeometryd(keys="fixed")({"fixed": torch.zeros(1, 4, 4, 4)})

    def test_spacing_each_where_spacingd_fails(self):
        """MONAI 1.6.1's Spacingd takes every key starting with 'fixed_' for a meta dict of a NIfTI 'fixed' image
        (the docstring of SpacingEachd); if this starts to pass, MONAI changed and SpacingEachd can go."""
        item = StoreGeometryd(keys="fixed")(self.loaded())
        with self.assertRaisesRegex(AttributeError, "has no attribute 'update'"):
            Spacingd(keys=["fixed", "fixed_label"], pixdim=3.0, mode=["bilinear", "nearest"])(item)
        spacing = SpacingEachd(["fixed", "fixed_label"], ["bilinear", "nearest"], pixdim=3.0)
        out = spacing(item)
        for key, mode in (("fixed", "bilinear"), ("fixed_label", "nearest")):
            alone = Spacingd(keys=key, pixdim=3.0, mode=mode)({key: item[key]})[key]  # one key: Spacingd works
            torch.testing.assert_close(out[key].as_tensor(), alone.as_tensor())
            self.assertEqual(tuple(out[key].shape), (1, 22, 28, 17))
        torch.testing.assert_close(out["fixed_original_affine"], item["fixed_original_affine"])  # untouched
        back = spacing.inverse({"fixed": out["fixed"]})["fixed"]  # invertible like Spacingd
        self.assertEqual(tuple(back.shape), (1, 33, 41, 25))
        np.testing.assert_allclose(np.asarray(back.affine), self.affine, atol=1e-5)


if __name__ == "__main__":
    unittest.main()
