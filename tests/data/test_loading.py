"""Loading pairs from real files in every supported format with ``pair_loading_transforms``: values, orientation,
intensities, the fixed geometry kept, the working grids, inversion. The errors for bad input are in
``tests/transforms/test_pair_io.py``."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from parameterized import parameterized

from monai_avsm.data import pair_loading_transforms
from tests.image_files import LoadingTestCase


class TestFormats(LoadingTestCase):
    @parameterized.expand([["nii"], ["nrrd"], ["mha"], ["dcm"]])
    def test_reads_values_and_geometry(self, fmt):
        item = {"moving": self.files[fmt], "fixed": self.files["nii"], "fixed_label": self.files["label"]}
        out = self.load(item, intensity_percentiles=None)
        expected = np.round(self.volume) if fmt == "dcm" else self.volume  # DICOM stores int16
        fixed, moving = out["fixed"], out["moving"]
        self.assertEqual(tuple(moving.shape), (1, 33, 41, 25))
        np.testing.assert_allclose(moving.numpy()[0], expected[::-1], atol=1e-5)  # LAS file -> RAS: x reversed
        np.testing.assert_allclose(fixed.numpy()[0], self.volume[::-1], atol=1e-5)
        np.testing.assert_allclose(np.asarray(moving.affine), np.asarray(fixed.affine), atol=1e-4)
        ras = self.affine @ np.array([[-1, 0, 0, 32], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])  # flip x of 33 voxels
        np.testing.assert_allclose(np.asarray(fixed.affine), ras, atol=1e-5)
        self.assertEqual(out["fixed_label"].dtype, torch.int64)
        np.testing.assert_array_equal(out["fixed_label"].numpy()[0], self.labels[::-1])

    def test_paper_intensity_normalisation(self):
        out = self.load({"moving": self.files["mha"], "fixed": self.files["nii"]})
        lo, hi = np.percentile(self.volume, [0.1, 99.9])
        expected = np.clip((self.volume - lo) / (hi - lo), 0, 1)[::-1]
        np.testing.assert_allclose(out["moving"].numpy()[0], expected, atol=1e-5)
        self.assertEqual(out["moving"].dtype, torch.float32)

    def test_fixed_geometry_kept_on_one_working_grid(self):
        item = {
            "moving": self.files["nrrd"],
            "fixed": self.files["nii"],
            "moving_label": self.files["label"],
            "fixed_label": self.files["label"],
        }
        out = self.load(item, spatial_size=(16, 20, 12))
        for key in ("moving", "fixed", "moving_label", "fixed_label"):
            self.assertEqual(tuple(out[key].shape), (1, 16, 20, 12), key)
        self.assertEqual(set(torch.unique(out["moving_label"]).tolist()), {0, 1, 2})
        np.testing.assert_allclose(out["fixed_original_affine"].numpy(), self.affine)
        self.assertEqual(out["fixed_original_shape"].tolist(), [33, 41, 25])
        np.testing.assert_allclose(out["fixed_original_spacing"].numpy(), [2.0, 2.0, 2.0])
        np.testing.assert_allclose(out["fixed_original_direction"].numpy(), np.diag([-1.0, 1.0, 1.0]))
        self.assertEqual(out["fixed_filename"], self.files["nii"])
        np.testing.assert_allclose(np.asarray(out["fixed"].meta["original_affine"]), self.affine)
        self.assertEqual(list(np.asarray(out["fixed"].meta["spatial_shape"])), [33, 41, 25])
        # the working grid spans the same field of view: voxel size 33*2/16 mm along x
        self.assertAlmostEqual(float(np.abs(np.asarray(out["fixed"].affine)[0, 0])), 33 * 2 / 16, places=5)

    def test_invert_back_to_the_native_grid(self):
        transforms = pair_loading_transforms(spatial_size=(16, 20, 12), intensity_percentiles=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = transforms(
                {"moving": self.files["mha"], "fixed": self.files["nii"], "fixed_label": self.files["label"]}
            )
            back = transforms.inverse({"fixed_label": out["fixed_label"].float()})["fixed_label"]
        self.assertEqual(tuple(back.shape), (1, 33, 41, 25))
        np.testing.assert_allclose(np.asarray(back.affine), self.affine, atol=1e-5)

    def test_spacing_alone_resamples_moving_onto_fixed(self):
        out = self.load({"moving": self.files["mha"], "fixed": self.files["nii"]}, spacing=3.0)
        self.assertEqual(tuple(out["fixed"].shape), (1, 22, 28, 17))
        self.assertEqual(out["moving"].shape, out["fixed"].shape)
        np.testing.assert_allclose(np.asarray(out["moving"].affine), np.asarray(out["fixed"].affine), atol=1e-5)

    def test_spacing_and_size_pad_or_crop(self):
        out = self.load(
            {"moving": self.files["dcm"], "fixed": self.files["nii"]}, spacing=3.0, spatial_size=(24, 24, 24)
        )
        self.assertEqual(tuple(out["moving"].shape), (1, 24, 24, 24))
        self.assertEqual(tuple(out["fixed"].shape), (1, 24, 24, 24))


if __name__ == "__main__":
    import unittest

    unittest.main()
