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
"""Loading registration pairs with MONAI dictionary transforms: read, check, orient, resample, normalise.

:func:`pair_loading_transforms` returns the ``Compose`` that turns a datalist item
``{"moving", "fixed", "moving_label", "fixed_label"}`` (file paths) into channel-first tensors on one working grid
(the pair transforms are in :mod:`monai_avsm.transforms.pair_io`; ``bundle/configs/inference.json`` writes the same
``Compose`` out, tested equal to this one):

1. :class:`CheckPaird` (``stage="files"``): every listed file exists and is not empty;
2. :class:`LoadPairImaged`: MONAI's ``LoadImaged`` (NIfTI with nibabel; NRRD, MHA/MHD and DICOM series folders
   with ITK), naming the file in every read error;
3. :class:`CheckPaird` (``stage="loaded"``): 3D single-channel images, moving and fixed of the same dimensionality,
   labels on their image's grid and integer-valued, images finite;
4. ``EnsureChannelFirstd``, then :class:`StoreGeometryd`: a copy of the fixed image's native geometry;
5. ``ScaleIntensityRangePercentilesd(lower=0.1, upper=99.9, b_min=0, b_max=1, clip=True)`` on the images: the
   paper's normalisation, on the native voxels (as the authors' offline preprocessing);
6. ``Orientationd("RAS")``, then ``Spacingd`` and/or ``Resized`` / ``ResizeWithPadOrCropd`` / ``ResampleToMatchd``:
   images linear, labels nearest neighbour;
7. labels cast to integers; :class:`CheckPaird` (``stage="grid"``): every tensor of the pair has one shape.

Where the fixed image's native geometry is kept (to write results back on its grid):

- ``fixed_original_affine`` (4x4 float64, voxel index -> RAS world mm, MONAI's convention; ITK's LPS world is this
  with the first two rows negated), ``fixed_original_shape``, ``fixed_original_spacing`` (mm),
  ``fixed_original_direction`` (3x3, columns = RAS directions of the voxel axes) and ``fixed_filename``;
- the fixed ``MetaTensor`` itself: ``.meta["original_affine"]`` and ``.meta["spatial_shape"]`` (as read), ``.affine``
  (the working grid), and ``.applied_operations``, so ``monai.transforms.Invertd`` can undo orientation and
  resampling of any output that copies the fixed image's meta data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    CastToTyped,
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    Orientationd,
    ResampleToMatchd,
    Resized,
    ResizeWithPadOrCropd,
    ScaleIntensityRangePercentilesd,
)

from monai_avsm.transforms.pair_io import CheckPaird, LoadPairImaged, SpacingEachd, StoreGeometryd

__all__ = ["pair_loading_transforms", "working_grid_transforms"]


def pair_loading_transforms(
    moving_key: str = "moving",
    fixed_key: str = "fixed",
    moving_label_key: str | None = "moving_label",
    fixed_label_key: str | None = "fixed_label",
    spatial_size: Sequence[int] | None = None,
    spacing: Sequence[float] | float | None = None,
    axcodes: str | None = "RAS",
    spatial_dims: int = 3,
    intensity_percentiles: tuple[float, float] | None = (0.1, 99.9),
    anti_aliasing: bool = False,
    reader: Any = None,
    label_dtype: torch.dtype = torch.int64,
    check: bool = True,
) -> Compose:
    """Dictionary transforms that load a registration pair onto one working grid (see the module docstring).

    Working grid:

    - ``spatial_size`` only: ``Resized`` of every image to ``spatial_size`` (the paper: OAI knees 384x384x160 ->
      192x192x80); the field of view is kept, the voxel size changes;
    - ``spacing`` and ``spatial_size``: ``Spacingd`` to ``spacing`` mm, then ``ResizeWithPadOrCropd`` to
      ``spatial_size`` about the centre (voxel size kept, field of view cropped or zero-padded);
    - ``spacing`` only: ``Spacingd`` of the fixed image, then the moving image (and label) resampled onto the fixed
      image's grid with ``ResampleToMatchd`` (this uses the world coordinates of both headers);
    - neither: the files must already share a shape (checked at the end).

    Images are resampled linearly (bilinear / trilinear), labels with nearest neighbour; outside the field of view
    both are zero.

    Orientation: ``Orientationd(axcodes)`` first puts every image in the same anatomical axis order (RAS: axis 0
    left -> right, 1 posterior -> anterior, 2 inferior -> superior). Networks are not invariant to flips and axis
    permutations, so files written with different conventions (RAS NIfTI, LPS DICOM, sagittal or axial slice
    order) must be brought to one layout before they meet; ``spatial_size`` is given in this order. ``None`` keeps
    the files' voxel order.

    Intensities: ``ScaleIntensityRangePercentilesd(lower, upper, b_min=0, b_max=1, clip=True)`` is exactly the
    paper's preprocessing (checked in MONAI 1.6.1: ``(x - p_lower) / (p_upper - p_lower)`` clamped to ``[0, 1]``,
    percentiles with linear interpolation over all voxels, as ``numpy.percentile``); it runs on the native voxels,
    before resampling, as the authors' offline preprocessing did. A constant image gives a MONAI warning and zeros.

    Args:
        moving_key, fixed_key: image keys of the datalist item.
        moving_label_key, fixed_label_key: label keys (``None``: no labels). Labels are optional in each item.
        spatial_size: working shape, in the order after ``Orientationd``.
        spacing: working voxel size in mm (one value or one per axis).
        axcodes: target orientation (``"RAS"``; ``"RA"`` in 2D), or ``None`` to keep the file order.
        spatial_dims: 3 (or 2); images of another dimensionality are rejected.
        intensity_percentiles: ``(lower, upper)`` percentiles mapped to 0 and 1, or ``None`` to keep intensities.
        anti_aliasing: Gaussian smoothing before down-sampling images with ``Resized``.
        reader: forwarded to ``LoadImaged`` (default: MONAI picks nibabel for NIfTI, ITK for the rest).
        label_dtype: dtype of the returned labels.
        check: add the :class:`CheckPaird` steps.

    Returns:
        a ``monai.transforms.Compose``; its output has channel-first ``MetaTensor`` images ``(1, *spatial_size)``
        (float32, in ``[0, 1]``), labels of ``label_dtype``, and the fixed geometry keys of :class:`StoreGeometryd`.

    Example:
        >>> from monai_avsm.data import load_pair_datalist, pair_loading_transforms
        >>> items = load_pair_datalist("datalist.json", section="training")
        >>> pair = pair_loading_transforms(spatial_size=(96, 112, 96))(items[0])
        >>> pair["moving"].shape, pair["fixed_original_affine"].shape
        (torch.Size([1, 96, 112, 96]), torch.Size([4, 4]))
    """
    caller = "pair_loading_transforms()"
    if spatial_dims not in (2, 3):
        raise ValueError(f"{caller}: 'spatial_dims' must be 2 or 3, got {spatial_dims!r}.")
    if spatial_size is not None:
        spatial_size = tuple(int(s) for s in spatial_size)
        if len(spatial_size) != spatial_dims or min(spatial_size) < 1:
            raise ValueError(
                f"{caller}: 'spatial_size' must have {spatial_dims} positive sizes, got {tuple(spatial_size)}."
            )
    if spacing is not None:
        spacing = (float(spacing),) * spatial_dims if isinstance(spacing, (int, float)) else tuple(map(float, spacing))
        if len(spacing) != spatial_dims or min(spacing) <= 0:
            raise ValueError(f"{caller}: 'spacing' must have {spatial_dims} positive values, got {spacing}.")
    if axcodes == "RAS" and spatial_dims == 2:
        axcodes = "RA"  # the default, in 2D
    if axcodes is not None and len(axcodes) != spatial_dims:
        raise ValueError(f"{caller}: 'axcodes' must have {spatial_dims} letters (e.g. 'RAS'), got {axcodes!r}.")
    if intensity_percentiles is not None:
        lower, upper = (float(v) for v in intensity_percentiles)
        if not 0 <= lower < upper <= 100:
            raise ValueError(
                f"{caller}: 'intensity_percentiles' must satisfy 0 <= lower < upper <= 100, got "
                f"{tuple(intensity_percentiles)}."
            )

    images = [moving_key, fixed_key]
    labels = [k for k in (moving_label_key, fixed_label_key) if k is not None]
    keys = images + labels
    pair_checks = dict(keys=images, label_keys=[moving_label_key, fixed_label_key], spatial_dims=spatial_dims)

    xforms: list = []
    if check:
        xforms.append(CheckPaird(stage="files", **pair_checks))
    xforms += [
        LoadPairImaged(keys=keys, reader=reader, image_only=True, allow_missing_keys=True),
    ]
    if check:
        xforms.append(CheckPaird(stage="loaded", **pair_checks))
    xforms += [
        EnsureChannelFirstd(keys=keys, allow_missing_keys=True),
        StoreGeometryd(keys=fixed_key),
    ]
    xforms += working_grid_transforms(
        moving_key,
        fixed_key,
        moving_label_key,
        fixed_label_key,
        spatial_size,
        spacing,
        axcodes,
        spatial_dims,
        None if intensity_percentiles is None else (lower, upper),
        anti_aliasing,
    )
    xforms.append(EnsureTyped(keys=images, dtype=torch.float32))
    if labels:
        xforms.append(CastToTyped(keys=labels, dtype=label_dtype, allow_missing_keys=True))
    if check:
        xforms.append(CheckPaird(stage="grid", **pair_checks))
    return Compose(xforms)


def working_grid_transforms(
    moving_key: str = "moving",
    fixed_key: str = "fixed",
    moving_label_key: str | None = "moving_label",
    fixed_label_key: str | None = "fixed_label",
    spatial_size: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    axcodes: str | None = "RAS",
    spatial_dims: int = 3,
    intensity_percentiles: tuple[float, float] | None = (0.1, 99.9),
    anti_aliasing: bool = False,
) -> list:
    """The steps of :func:`pair_loading_transforms` after loading (intensity scaling, orientation, working grid) on
    channel-first ``MetaTensor`` items, e.g. images already read into memory. Arguments as there, already checked
    (``spacing`` a tuple per axis)."""
    images = [moving_key, fixed_key]
    labels = [k for k in (moving_label_key, fixed_label_key) if k is not None]
    keys = images + labels
    linear = "bilinear"  # grid_sample's linear mode (trilinear in 3D)
    resize_linear = "trilinear" if spatial_dims == 3 else "bilinear"
    modes = [linear] * len(images) + ["nearest"] * len(labels)
    xforms: list = []
    if intensity_percentiles is not None:
        lower, upper = intensity_percentiles
        xforms.append(
            ScaleIntensityRangePercentilesd(
                keys=images, lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True, dtype=np.float32
            )
        )
    if axcodes is not None:
        xforms.append(Orientationd(keys=keys, axcodes=axcodes, labels=None, allow_missing_keys=True))
    if spacing is not None:
        if spatial_size is None:
            fixed_keys = [fixed_key] + ([fixed_label_key] if fixed_label_key else [])
            moving_keys = [moving_key] + ([moving_label_key] if moving_label_key else [])
            xforms += [
                SpacingEachd(fixed_keys, [linear, "nearest"][: len(fixed_keys)], pixdim=spacing, padding_mode="zeros"),
                ResampleToMatchd(
                    keys=moving_keys,
                    key_dst=fixed_key,
                    mode=[linear, "nearest"][: len(moving_keys)],
                    padding_mode="zeros",
                    allow_missing_keys=True,
                ),
            ]
        else:
            xforms += [
                SpacingEachd(keys, modes, pixdim=spacing, padding_mode="zeros"),
                ResizeWithPadOrCropd(keys=keys, spatial_size=spatial_size, allow_missing_keys=True),
            ]
    elif spatial_size is not None:
        xforms.append(
            Resized(
                keys=keys,
                spatial_size=spatial_size,
                mode=[resize_linear] * len(images) + ["nearest-exact"] * len(labels),
                anti_aliasing=[anti_aliasing] * len(images) + [False] * len(labels),
                allow_missing_keys=True,
            )
        )
    return xforms
