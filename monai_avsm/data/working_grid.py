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
r"""An image on the network's working grid without MONAI's import: the steps of
:func:`~monai_avsm.data.pair_loading_transforms` with ``spatial_size`` (percentile scaling on the native voxels,
``Orientationd("RAS")``, ``Resized`` trilinear), written with nibabel's orientation functions and
``torch.nn.functional.interpolate`` so that the one-pair command does not pay ``import monai`` (about 3 s on 2 CPU
cores). The result equals MONAI's pipeline (data and affine; tested to float32 round-off), so a model trained on
MONAI-loaded pairs sees the same input.

What MONAI does, step by step (MONAI 1.6.1, checked):

1. ``ScaleIntensityRangePercentiles(lower, upper, 0, 1, clip=True)``: :math:`(x - p_l) / (p_u - p_l)` clamped to
   ``[0, 1]``, percentiles with linear interpolation over all voxels;
2. ``Orientation(axcodes)``: ``nibabel.orientations`` ``io_orientation`` -> ``ornt_transform`` -> flips and an axis
   permutation of the voxels, the affine times ``inv_ornt_aff``;
3. ``Resize(spatial_size, mode="trilinear")``: ``interpolate(..., align_corners=False)``, the affine times the
   centred scaling :math:`S = \mathrm{diag}(n/n')` with offset :math:`(n/n' - 1)/2` (``scale_affine``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from monai_avsm.data.image_io import NativeImage
from monai_avsm.functional.intensity import percentile_scale

__all__ = ["percentile_scale", "reorient", "resize_to", "to_working_grid"]


def reorient(data: torch.Tensor, affine: torch.Tensor, axcodes: str = "RAS") -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-first ``data`` ``(C, *S)`` and its voxel -> RAS ``affine`` in the voxel order ``axcodes`` (flips and a
    permutation; no interpolation), as MONAI's ``Orientation``."""
    import nibabel.orientations as nio

    ndim = data.ndim - 1
    a = affine.detach().cpu().numpy().astype(np.float64)
    src = nio.io_orientation(a)
    dst = nio.axcodes2ornt(axcodes[:ndim])
    ornt = nio.ornt_transform(src, dst)
    xform = nio.inv_ornt_aff(ornt, tuple(int(s) for s in data.shape[1:]))
    flips = [1 + ax for ax, f in enumerate(ornt[:, 1]) if f == -1]
    out = torch.flip(data, dims=flips) if flips else data
    perm = [0] + [1 + int(i) for i in np.argsort(ornt[:, 0])]
    if perm != list(range(ndim + 1)):
        out = out.permute(perm)
    return out.contiguous(), torch.as_tensor(a @ xform, dtype=torch.float64)


def resize_to(
    data: torch.Tensor, affine: torch.Tensor, spatial_size: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, *S)`` resized to ``spatial_size`` (linear, ``align_corners=False``), with the affine of MONAI's
    ``Resize``."""
    ndim = data.ndim - 1
    size = tuple(int(s) for s in spatial_size)
    shape = tuple(int(s) for s in data.shape[1:])
    if size == shape:
        return data, affine.clone()
    mode = "trilinear" if ndim == 3 else "bilinear"
    out = F.interpolate(data[None].to(torch.float32), size=size, mode=mode, align_corners=False)[0]
    s = torch.tensor([o / n for o, n in zip(shape, size)], dtype=torch.float64)
    scale = torch.eye(ndim + 1, dtype=torch.float64)
    scale[:ndim, :ndim] = torch.diag(s)
    scale[:ndim, ndim] = (s - 1) / 2
    return out, affine.to(torch.float64) @ scale


def to_working_grid(
    image: NativeImage,
    spatial_size: Sequence[int],
    axcodes: str | None = "RAS",
    intensity_percentiles: tuple[float, float] | None = (0.1, 99.9),
) -> tuple[torch.Tensor, torch.Tensor]:
    """An image as the network sees it: ``(1, *spatial_size)`` float32 and its working-grid voxel -> RAS affine.

    Args:
        image: as read (:func:`~monai_avsm.data.image_io.read_image`).
        spatial_size: the working shape, in the order after reorientation.
        axcodes: voxel order (``"RAS"``; ``"RA"`` in 2D) or ``None`` to keep the file's.
        intensity_percentiles: percentiles mapped to 0 and 1 (``None``: intensities kept).
    """
    ndim = image.data.ndim - 1
    if len(spatial_size) != ndim:
        raise ValueError(f"to_working_grid: 'spatial_size' must have {ndim} sizes, got {tuple(spatial_size)}.")
    data = image.data.to(torch.float32)
    if intensity_percentiles is not None:
        data = percentile_scale(data, *intensity_percentiles)
    affine = image.affine.to(torch.float64)
    if axcodes is not None:
        data, affine = reorient(data, affine, axcodes[:ndim] if ndim == 2 and axcodes == "RAS" else axcodes)
    return resize_to(data, affine, spatial_size)
