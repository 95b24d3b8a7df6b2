"""Image files for the tests that read pairs from disk.

- :class:`LoadingTestCase`: one real T1 volume (nibabel's, 33x41x25 at 2 mm, LAS) in every format the pair loading
  reads: NIfTI with a label, NRRD, MetaImage and a DICOM series (``monai_avsm.data.loading``,
  ``monai_avsm.transforms.pair_io``);
- :func:`known_pair` and :class:`KnownMapNet`: a pair of small RAS NIfTI files with labels and a "network" that
  returns a known map (a reflection and a whole-voxel shift), whose Dice, folds and symmetry are known by hand
  (``monai_avsm.engines.evaluation``, ``monai_avsm.handlers.registration``).
"""

from __future__ import annotations

import os
import tempfile
import unittest
import warnings

import itk
import nibabel as nib
import numpy as np
import torch

from monai_avsm.data import pair_loading_transforms
from monai_avsm.demo import sample_image_path

__all__ = [
    "LoadingTestCase",
    "root_cause",
    "KNOWN_SHAPE",
    "KNOWN_SHIFT",
    "known_pair",
    "known_map",
    "KnownMapNet",
    "known_warped_label",
    "dice_by_hand",
]


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


#: the known pair's grid: 12x14x10 voxels of 2 mm, RAS (the working grid equals the native grid)
KNOWN_SHAPE = (12, 14, 10)
#: the known map's shift along tensor axis 1, in voxels
KNOWN_SHIFT = 2


def known_pair(folder: str, seed: int = 0) -> dict[str, str]:
    """Write a moving and a fixed image with labels 0, 1, 2 (random, ``seed``) on one 2 mm RAS grid
    (:data:`KNOWN_SHAPE`) into ``folder``; returns the datalist item (file paths)."""
    g = np.random.default_rng(seed)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = (-10.0, 4.0, 7.0)
    item = {}
    for key in ("moving", "fixed"):
        item[key] = os.path.join(folder, f"{key}.nii.gz")
        nib.save(nib.Nifti1Image(g.random(KNOWN_SHAPE).astype(np.float32) + 1.0, affine), item[key])
        item[f"{key}_label"] = os.path.join(folder, f"{key}_seg.nii.gz")
        nib.save(nib.Nifti1Image(g.integers(0, 3, KNOWN_SHAPE).astype(np.uint8), affine), item[f"{key}_label"])
    return item


def known_map(shape=KNOWN_SHAPE, shift: int = KNOWN_SHIFT) -> torch.Tensor:
    """``phi(x) = (-x_0, x_1 + t, x_2)`` (normalised coordinates, ``t`` = ``shift`` voxels): a reflection (det J = -1,
    every voxel a fold) and a whole-voxel shift, so that nearest-neighbour warping is exact."""
    axes = [torch.linspace(-1, 1, n, dtype=torch.float64) for n in shape]
    phi = torch.stack(torch.meshgrid(*axes, indexing="ij"))[None]
    phi[:, 0] = -phi[:, 0]
    phi[:, 1] = phi[:, 1] + 2.0 * shift / (shape[1] - 1)
    return phi.float()


class KnownMapNet(torch.nn.Module):
    """A stand-in for ``AVSMNet``: the identity affine part and :func:`known_map` for any input (so the swapped pair
    gets the same map, and ``phi o phi`` is the shift by twice ``t``)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor | None = None, **kwargs) -> dict:
        self.calls += 1
        b = moving.shape[0]
        theta = torch.cat([torch.eye(3), torch.zeros(3, 1)], dim=1).expand(b, 3, 4)
        return {"map": known_map(tuple(moving.shape[2:])).expand(b, -1, -1, -1, -1), "affine": theta, "warped": moving}


def known_warped_label(moving_label: np.ndarray, shift: int = KNOWN_SHIFT) -> np.ndarray:
    """The moving label pulled by :func:`known_map`, by hand: reversed along axis 0, read ``shift`` voxels further
    along axis 1, background outside."""
    out = np.zeros_like(moving_label)
    out[:, : moving_label.shape[1] - shift] = moving_label[::-1, shift:]
    return out


def dice_by_hand(a: np.ndarray, b: np.ndarray, labels=(1, 2)) -> list[float]:
    """2 |A_l & B_l| / (|A_l| + |B_l|) per label."""
    return [2.0 * np.sum((a == lab) & (b == lab)) / (np.sum(a == lab) + np.sum(b == lab)) for lab in labels]
