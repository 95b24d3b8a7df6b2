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
r"""Read an image file once, quickly, with its voxel -> world geometry.

:func:`read_image` reads NIfTI with nibabel (no MONAI, no ITK import: the one-pair command line starts in a fraction
of a second) and every other format (NRRD, MetaImage, a DICOM folder) with MONAI's ``LoadImage`` (ITK), imported
only then. Both give the same channel-first data and the same voxel -> **RAS** affine as MONAI's ``LoadImage`` with
``ensure_channel_first=True`` (tested), so the two paths are interchangeable.

:class:`NativeImage` is what the registration reads once per input and carries to the writer: the voxels as they
are in the file (no reorientation, no resampling) and the affine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from monai_avsm.data.files import IMAGE_SUFFIXES, NIFTI_SUFFIXES, check_image_file, error_summary, is_nifti

__all__ = ["NativeImage", "read_image", "check_image_file", "check_intensities", "NIFTI_SUFFIXES", "IMAGE_SUFFIXES"]


@dataclass(frozen=True)
class NativeImage:
    """An image as read from its file: ``data`` ``(C, *S)`` (float32, or int64 for labels), ``affine``
    ``(D + 1, D + 1)`` float64 voxel index -> RAS world mm, and the file it came from.

    It offers the parts of MONAI's ``MetaTensor`` that the writers use (``as_tensor()``, ``affine``, ``shape``).
    """

    data: torch.Tensor
    affine: torch.Tensor
    path: str | None = None
    label: bool = False

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.data.shape[1:])

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each voxel axis (norms of the affine's columns)."""
        return tuple(float(s) for s in torch.linalg.norm(self.affine[:-1, :-1], dim=0))

    def as_tensor(self) -> torch.Tensor:
        return self.data

    def is_floating_point(self) -> bool:
        return self.data.is_floating_point()


def _read_nifti(path: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.load(path)
    data = np.asanyarray(img.dataobj)  # applies scl_slope/inter as nibabel (and MONAI's NibabelReader) do
    return data, np.asarray(img.affine, dtype=np.float64)


def _read_other(path: str) -> tuple[np.ndarray, np.ndarray]:
    from monai.transforms import LoadImage  # ITK for NRRD, MetaImage, DICOM; imported only for these

    img = LoadImage(image_only=True, ensure_channel_first=False)(path)
    return np.asarray(img.as_tensor() if hasattr(img, "as_tensor") else img), np.asarray(img.affine, np.float64)


def read_image(
    path: str | os.PathLike, label: bool = False, name: str = "image", caller: str = "read_image"
) -> NativeImage:
    """Read an image (or label map) file: channel-first data and its voxel -> RAS affine.

    A 2D or 3D single-channel image is expected; a 4D image (a time series, several channels) is refused, naming the
    file. Images are float32 and must be finite; labels must hold integer values and are returned as int64.

    Args:
        path: a NIfTI file (nibabel), or NRRD / MetaImage / a DICOM folder (MONAI ``LoadImage`` with ITK).
        label: read a label map (integer classes).
        name: what the file is, for the messages (``"moving"``, ``"fixed_label"``).
        caller: the function named in the messages.

    Raises:
        FileNotFoundError: no such file; ValueError: corrupt or unreadable, wrong dimensionality, several channels,
        NaN or infinite values, non-integer labels (each names the file).
    """
    p = check_image_file(path, name, caller)
    try:
        data, affine = _read_nifti(p) if is_nifti(p) else _read_other(p)
    except Exception as e:
        raise ValueError(
            f"{caller}: cannot read the {name} file {p!r} (corrupt or not a supported image?): {error_summary(e)}"
        ) from e
    shape = tuple(int(s) for s in data.shape)
    ndim = affine.shape[0] - 1
    while len(shape) > ndim and shape[-1] == 1:  # trailing singleton axes (NIfTI writers add them)
        data = data.reshape(shape[:-1])
        shape = shape[:-1]
    if len(shape) not in (2, 3) or len(shape) > ndim:
        raise ValueError(
            f"{caller}: the {name} file {p!r} has shape {shape} ({len(shape)}D); expected a 2D or 3D single-channel "
            "image: select one volume (time point / channel) first."
        )
    if len(shape) == 2 and ndim == 3:  # a 2D NIfTI: keep the in-plane part of the geometry
        a = np.eye(3)
        a[:2, :2], a[:2, 2] = affine[:2, :2], affine[:2, 3]
        affine = a
    if label:
        if np.issubdtype(data.dtype, np.floating):
            bad = ~np.isfinite(data) | (data != np.round(data))
            if bad.any():
                raise ValueError(
                    f"{caller}: the {name} file {p!r} has {int(bad.sum())} non-integer values (e.g. "
                    f"{float(data[bad].reshape(-1)[0])}); labels must hold integer class indices (a probability map "
                    "or an image given as a label?)."
                )
        tensor = torch.as_tensor(np.ascontiguousarray(data).astype(np.int64))
    else:
        arr = np.ascontiguousarray(data, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(
                f"{caller}: the {name} file {p!r} contains {int((~np.isfinite(arr)).sum())} NaN or infinite values."
            )
        tensor = torch.from_numpy(arr)
    return NativeImage(tensor[None], torch.as_tensor(affine, dtype=torch.float64), os.path.abspath(p), label)


def check_intensities(image: NativeImage, name: str, caller: str, mask: torch.Tensor | None = None) -> None:
    """Refuse an image that cannot be registered: all zero, or constant (inside ``mask``, a boolean tensor of the
    image's spatial shape, when given).

    Raises:
        ValueError: naming the file and what is wrong.
    """
    data = image.data[0]
    values = data[mask] if mask is not None else data.reshape(-1)
    where = " inside the mask" if mask is not None else ""
    if values.numel() == 0:
        raise ValueError(f"{caller}: the {name} image {image.path!r} has no voxel{where}.")
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        what = "all zero" if hi == 0 else f"constant ({hi:g})"
        raise ValueError(
            f"{caller}: the {name} image {image.path!r} is {what}{where}: there is nothing to register (a blank or "
            "wrongly exported image?)."
        )
