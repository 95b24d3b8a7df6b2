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
``{"moving", "fixed", "moving_label", "fixed_label"}`` (file paths) into channel-first tensors on one working grid:

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

import logging
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    CastToTyped,
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    InvertibleTransform,
    LoadImaged,
    MapTransform,
    Orientationd,
    ResampleToMatchd,
    Resized,
    ResizeWithPadOrCropd,
    ScaleIntensityRangePercentilesd,
    Spacingd,
)

__all__ = [
    "CheckPaird",
    "LoadPairImaged",
    "StoreGeometryd",
    "pair_loading_transforms",
    "working_grid_transforms",
    "SUPPORTED_FORMATS",
]

logger = logging.getLogger(__name__)

#: file formats the loading transforms are tested with (reader chosen by MONAI from the suffix).
SUPPORTED_FORMATS = (
    "NIfTI (.nii, .nii.gz; nibabel)",
    "NRRD (.nrrd, .nhdr; ITK)",
    "MetaImage (.mha, .mhd; ITK)",
    "DICOM series (a folder of .dcm slices; ITK)",
)

_STAGES = ("files", "loaded", "grid")


def _filename(x: Any, default: str) -> str:
    meta = getattr(x, "meta", None)
    if isinstance(meta, Mapping) and meta.get("filename_or_obj"):
        return str(meta["filename_or_obj"])
    return default


class CheckPaird(MapTransform):
    """Check a registration pair and raise errors that name the file and the problem.

    One transform, placed at three points of the loading ``Compose``:

    - ``stage="files"`` (before loading; values are paths): the item has the image keys; each listed file (or DICOM
      folder) exists and is not empty.
    - ``stage="loaded"`` (after ``LoadImaged``, before ``EnsureChannelFirstd``): each image has ``spatial_dims``
      spatial dimensions and one channel (a 4D image where 3D is expected fails), moving and fixed have the same
      dimensionality, images are finite, each label lies on its image's grid and holds integer values only.
    - ``stage="grid"`` (at the end; channel-first tensors): every tensor of the pair has the same spatial shape.

    Args:
        keys: the image keys (moving first, then fixed).
        label_keys: the label key of each image key, in the same order (``None`` for an image without label).
            Labels are optional in an item.
        stage: ``"files"``, ``"loaded"`` or ``"grid"``.
        spatial_dims: the expected number of spatial dimensions (2 or 3), or ``None`` to accept any as long as moving
            and fixed agree.

    Raises:
        FileNotFoundError: a listed file does not exist.
        ValueError: any other problem; the message starts with ``CheckPaird`` and names the key and file.
    """

    def __init__(
        self,
        keys: KeysCollection = ("moving", "fixed"),
        label_keys: Sequence[str | None] | None = ("moving_label", "fixed_label"),
        stage: str = "loaded",
        spatial_dims: int | None = 3,
    ) -> None:
        super().__init__(keys, allow_missing_keys=False)
        if stage not in _STAGES:
            raise ValueError(f"CheckPaird: 'stage' must be one of {_STAGES}, got {stage!r}.")
        if spatial_dims is not None and spatial_dims not in (2, 3):
            raise ValueError(f"CheckPaird: 'spatial_dims' must be 2, 3 or None, got {spatial_dims!r}.")
        labels = list(label_keys) if label_keys is not None else []
        labels += [None] * (len(self.keys) - len(labels))
        if len(labels) != len(self.keys):
            raise ValueError(
                f"CheckPaird: 'label_keys' needs at most one entry per image key {tuple(self.keys)}, got {label_keys}."
            )
        self.label_keys: list[Hashable | None] = labels
        self.stage = stage
        self.spatial_dims = spatial_dims

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        missing = [k for k in self.keys if k not in d]
        if missing:
            raise ValueError(
                f"CheckPaird: the item has no {missing[0]!r} key (required: {list(self.keys)}; "
                f"found: {sorted(map(str, d))})."
            )
        if self.stage == "files":
            for key in self._present(d):
                self._check_file(key, d[key])
        elif self.stage == "loaded":
            self._check_loaded(d)
        else:
            self._check_grid(d)
        return d

    def _present(self, d: Mapping) -> list[Hashable]:
        return list(self.keys) + [k for k in self.label_keys if k is not None and d.get(k) is not None]

    @staticmethod
    def _check_file(key: Hashable, value: Any) -> None:
        paths = value if isinstance(value, (list, tuple)) else [value]
        for p in paths:
            if not isinstance(p, (str, os.PathLike)):
                raise ValueError(
                    f"CheckPaird: {key!r} must be a file path before loading, got {type(p).__name__}; place "
                    "CheckPaird(stage='files') before LoadImaged."
                )
            p = os.path.expanduser(str(p))
            if not os.path.exists(p):
                raise FileNotFoundError(f"CheckPaird: {key!r} file {p!r} does not exist.")
            if os.path.isdir(p):
                if not any(os.path.isfile(os.path.join(p, f)) for f in os.listdir(p)):
                    raise ValueError(f"CheckPaird: {key!r} folder {p!r} (a DICOM series?) contains no files.")
            elif os.path.getsize(p) == 0:
                raise ValueError(f"CheckPaird: {key!r} file {p!r} is empty (0 bytes): corrupt or incomplete file.")

    def _spatial(self, key: Hashable, x: Any) -> tuple[int, ...]:
        """Spatial shape of a loaded, not yet channel-first image; raise if it has several channels."""
        arr_shape = tuple(int(s) for s in x.shape)
        meta = getattr(x, "meta", {}) or {}
        spatial = meta.get("spatial_shape")
        spatial = tuple(int(s) for s in np.asarray(spatial).reshape(-1)) if spatial is not None else arr_shape
        channels = int(np.prod(arr_shape)) // max(int(np.prod(spatial)), 1)
        if channels != 1 or (self.spatial_dims is not None and len(spatial) > self.spatial_dims):
            expected = f"{self.spatial_dims}D" if self.spatial_dims is not None else "2D or 3D"
            raise ValueError(
                f"CheckPaird: {key!r} file {_filename(x, str(key))!r} has shape {arr_shape} "
                f"({len(arr_shape)}D, {channels} channel(s)); expected a {expected} single-channel image: "
                "select one volume (time point / channel) first."
            )
        return spatial

    def _check_loaded(self, d: dict) -> None:
        spatial = {k: self._spatial(k, d[k]) for k in self.keys}
        names = {k: _filename(d[k], str(k)) for k in self.keys}
        first = self.keys[0]
        for k in self.keys[1:]:
            if len(spatial[k]) != len(spatial[first]):
                raise ValueError(
                    f"CheckPaird: {first!r} file {names[first]!r} ({len(spatial[first])}D, shape {spatial[first]}) and "
                    f"{k!r} file {names[k]!r} ({len(spatial[k])}D, shape {spatial[k]}) have different "
                    "dimensionality; moving and fixed must both be 2D or both 3D."
                )
        for k in self.keys:
            if self.spatial_dims is not None and len(spatial[k]) != self.spatial_dims:
                raise ValueError(
                    f"CheckPaird: {k!r} file {names[k]!r} is {len(spatial[k])}D (shape {spatial[k]}); expected "
                    f"{self.spatial_dims}D."
                )
            x = torch.as_tensor(d[k])
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                raise ValueError(
                    f"CheckPaird: {k!r} file {names[k]!r} contains {int((~torch.isfinite(x)).sum())} NaN or infinite "
                    "values."
                )
        for k, lk in zip(self.keys, self.label_keys):
            if lk is None or d.get(lk) is None:
                continue
            label_name = _filename(d[lk], str(lk))
            label_spatial = self._spatial(lk, d[lk])
            if label_spatial != spatial[k]:
                raise ValueError(
                    f"CheckPaird: {lk!r} file {label_name!r} has spatial shape {label_spatial} but its image {k!r} "
                    f"file {names[k]!r} has {spatial[k]}; a label must lie on its image's grid."
                )
            y = torch.as_tensor(d[lk])
            if y.is_floating_point():
                bad = ~torch.isfinite(y) | (y != torch.round(y))
                if bool(bad.any()):
                    example = float(y[bad].reshape(-1)[0])
                    raise ValueError(
                        f"CheckPaird: {lk!r} file {label_name!r} has {int(bad.sum())} non-integer values (e.g. "
                        f"{example}); labels must hold integer class indices (a probability map or an image given "
                        "as a label?)."
                    )

    def _check_grid(self, d: dict) -> None:
        present = self._present(d)
        shapes = {k: tuple(int(s) for s in d[k].shape[1:]) for k in present}
        ref = present[0]
        for k in present[1:]:
            if shapes[k] != shapes[ref]:
                raise ValueError(
                    f"CheckPaird: {k!r} file {_filename(d[k], str(k))!r} ends on shape {shapes[k]} but {ref!r} file "
                    f"{_filename(d[ref], str(ref))!r} on {shapes[ref]}; moving and fixed must share one working "
                    "grid: set 'spatial_size' (and/or 'spacing') in pair_loading_transforms."
                )


class LoadPairImaged(LoadImaged):
    """MONAI's ``LoadImaged`` whose read errors name the key and the file.

    Takes the arguments of ``monai.transforms.LoadImaged``. When reading fails, each key is read again on its own to
    find the culprit, and a ``ValueError`` names it (MONAI's own message for an unreadable file suggests installing
    reader packages, and a truncated ``.nii.gz`` fails in ``gzip`` without any file name).
    """

    def __call__(self, data: Mapping[Hashable, Any], reader: Any = None) -> dict[Hashable, Any]:
        try:
            return super().__call__(data, reader)
        except Exception as error:
            for key in self.key_iterator(dict(data)):
                path = data[key]
                try:
                    self._loader(path, reader)
                except Exception as e:
                    raise ValueError(
                        f"LoadPairImaged: cannot read {key!r} file {str(path)!r}: corrupt or not a supported image "
                        f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}). "
                        f"Supported: {', '.join(SUPPORTED_FORMATS)}."
                    ) from e
            raise error


class StoreGeometryd(MapTransform):
    """Copy the native geometry of images under their own keys, before any reorientation or resampling.

    For each key ``k`` (a channel-first ``MetaTensor``), adds ``k_original_affine`` (4x4 float64, voxel index -> RAS
    world in mm), ``k_original_shape`` (int64, spatial shape), ``k_original_spacing`` (mm per voxel axis),
    ``k_original_direction`` (3x3, unit columns) and ``k_filename``. Results computed on the working grid can be
    resampled back onto this grid (e.g. ``monai.transforms.ResampleToMatch`` with a ``MetaTensor`` carrying this
    affine and shape) and written with the original header.

    Args:
        keys: the image keys (default: the fixed image).
        prefix: the key suffix used after ``k_`` (default ``"original"``).
        allow_missing_keys: skip absent keys.
    """

    def __init__(self, keys: KeysCollection = "fixed", prefix: str = "original", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.prefix = prefix

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            x = d[key]
            affine = getattr(x, "affine", None)
            if affine is None:
                raise ValueError(
                    f"StoreGeometryd: {key!r} must be a MetaTensor with an affine (load it with LoadImaged), "
                    f"got {type(x).__name__}."
                )
            affine = torch.as_tensor(affine, dtype=torch.float64).clone()
            linear = affine[:-1, :-1]
            spacing = torch.linalg.norm(linear, dim=0)
            d[f"{key}_{self.prefix}_affine"] = affine
            d[f"{key}_{self.prefix}_shape"] = torch.tensor(tuple(x.shape[1:]), dtype=torch.int64)
            d[f"{key}_{self.prefix}_spacing"] = spacing
            d[f"{key}_{self.prefix}_direction"] = linear / spacing.clamp_min(1e-12)
            d[f"{key}_filename"] = _filename(x, "")
        return d


class _SpacingEachd(MapTransform, InvertibleTransform):
    """``Spacingd`` applied to each key on its own.

    MONAI 1.6.1's ``Spacingd`` updates every item key that starts with ``f"{key}_"`` as if it were a meta dict
    (``d[meta_key].update(...)``, for NIfTI files), which breaks on the pair keys ``fixed`` / ``fixed_label`` and on
    ``fixed_original_affine``; here each key is resampled in a dict that holds only that key.
    """

    def __init__(self, keys: Sequence[str], modes: Sequence[str], **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.spacers = {k: Spacingd(keys=k, mode=m, **kwargs) for k, m in zip(self.keys, modes)}

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.spacers[key]({key: d[key]})[key]
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.spacers[key].inverse({key: d[key]})[key]
        return d


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
                _SpacingEachd(fixed_keys, [linear, "nearest"][: len(fixed_keys)], pixdim=spacing, padding_mode="zeros"),
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
                _SpacingEachd(keys, modes, pixdim=spacing, padding_mode="zeros"),
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
