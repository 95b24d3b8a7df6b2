"""Loading pairs from real files in every supported format; geometry kept; clear errors for bad input."""

from __future__ import annotations

import os
import re
import tempfile
import unittest
import warnings

import itk
import nibabel as nib
import numpy as np
import torch
from parameterized import parameterized

from monai_avsm.data import CheckPaird, pair_loading_transforms
from monai_avsm.demo import sample_image_path


def _itk_image(array_xyz: np.ndarray, affine_ras: np.ndarray):
    """An ITK image (LPS world) with the voxels and geometry of a nibabel-order array and RAS affine."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_ras
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(0))
    image = itk.image_from_array(np.ascontiguousarray(array_xyz.transpose(2, 1, 0)))  # ITK arrays are (z, y, x)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(lps[:3, 3].tolist())
    image.SetDirection(itk.matrix_from_array(lps[:3, :3] / spacing))
    return image


def _write_dicom_series(array_xyz: np.ndarray, affine_ras: np.ndarray, folder: str) -> None:
    """Write an int16 DICOM series (one file per slice along the third axis) with full geometry tags."""
    image = _itk_image(array_xyz.astype(np.int16), affine_ras)
    direction = itk.array_from_matrix(image.GetDirection())
    origin, spacing = np.array(itk.origin(image)), np.array(itk.spacing(image))
    uid = "1.2.826.0.1.3680043.8.498.7"
    dictionaries = itk.vector[itk.MetaDataDictionary]()  # holds raw pointers: keep the Python objects alive
    keep_alive, names = [], []
    for k in range(array_xyz.shape[2]):
        tags = itk.MetaDataDictionary()
        position = origin + direction[:, 2] * spacing[2] * k
        tags["0020|0032"] = "\\".join(f"{v:.6f}" for v in position)  # image position (patient)
        tags["0020|0037"] = "\\".join(f"{v:.6f}" for v in np.r_[direction[:, 0], direction[:, 1]])  # orientation
        tags["0028|0030"] = f"{spacing[1]:.6f}\\{spacing[0]:.6f}"  # pixel spacing (row, column)
        tags["0018|0050"] = f"{spacing[2]:.6f}"  # slice thickness
        tags["0020|0013"] = str(k + 1)  # instance number
        tags["0008|0060"] = "MR"
        tags["0020|000d"], tags["0020|000e"], tags["0020|0052"] = f"{uid}.1", f"{uid}.2", f"{uid}.3"
        tags["0008|0018"] = f"{uid}.4.{k + 1}"
        dictionaries.push_back(tags)
        keep_alive.append(tags)
        names.append(os.path.join(folder, f"slice_{k:03d}.dcm"))
    imageio = itk.GDCMImageIO.New()
    imageio.KeepOriginalUIDOn()
    writer = itk.ImageSeriesWriter[type(image), itk.Image[itk.SS, 2]].New(Input=image, ImageIO=imageio, FileNames=names)
    writer.SetMetaDataDictionaryArray(dictionaries)
    writer.Update()
    del keep_alive


def root_cause(error: BaseException) -> BaseException:
    """MONAI's Compose wraps every error in ``RuntimeError('applying transform ...')``: return the error inside."""
    while isinstance(error, RuntimeError) and str(error).startswith("applying transform") and error.__cause__:
        error = error.__cause__
    return error


class LoadingTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        ref = nib.load(sample_image_path())  # nibabel's real T1: 33x41x25 at 2 mm, LAS
        cls.affine = ref.affine.copy()
        cls.volume = np.asarray(ref.dataobj).astype(np.float32)
        q = np.quantile(cls.volume, [0.4, 0.75])
        cls.labels = ((cls.volume > q[0]).astype(np.uint8) + (cls.volume > q[1])).astype(np.uint8)
        cls.files = {"nii": os.path.join(d, "t1.nii.gz"), "label": os.path.join(d, "t1_seg.nii.gz")}
        nib.save(nib.Nifti1Image(cls.volume, cls.affine), cls.files["nii"])
        nib.save(nib.Nifti1Image(cls.labels, cls.affine), cls.files["label"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for ext in ("nrrd", "mha"):
                cls.files[ext] = os.path.join(d, f"t1.{ext}")
                itk.imwrite(_itk_image(cls.volume, cls.affine), cls.files[ext])
            cls.files["dcm"] = os.path.join(d, "t1_dicom")
            os.makedirs(cls.files["dcm"])
            _write_dicom_series(np.round(cls.volume), cls.affine, cls.files["dcm"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name: str) -> str:
        return os.path.join(self.tmp.name, name)

    def load(self, item, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pair_loading_transforms(**kwargs)(item)


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


if __name__ == "__main__":
    unittest.main()
