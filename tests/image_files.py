"""Real image files of one T1 volume (nibabel's, 33x41x25 at 2 mm, LAS) in every format the pair loading reads:
NIfTI with a label, NRRD, MetaImage and a DICOM series; shared by the tests of ``monai_avsm.data.loading`` and
``monai_avsm.transforms.pair_io``."""

from __future__ import annotations

import os
import tempfile
import unittest
import warnings

import itk
import nibabel as nib
import numpy as np

from monai_avsm.data import pair_loading_transforms
from monai_avsm.demo import sample_image_path

__all__ = ["LoadingTestCase", "root_cause"]


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
