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
"""Dictionary transforms that read and check a registration pair (MONAI's ``LoadImaged`` family).

- :class:`CheckPaird`: errors that name the file and the problem, at three points of a loading ``Compose``
  (files, loaded arrays, working grid);
- :class:`LoadPairImaged`: MONAI's ``LoadImaged`` whose read errors name the key and the file;
- :class:`StoreGeometryd`: a copy of an image's native geometry (affine, shape, spacing, direction, file name)
  before any reorientation or resampling, to write results back on that grid;
- :class:`SpacingEachd`: MONAI's ``Spacingd`` applied to each key on its own (a work-around, see there).

:func:`monai_avsm.data.pair_loading_transforms` chains them with MONAI's transforms; ``bundle/configs/inference.json``
writes the same ``Compose`` out.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, LoadImaged, MapTransform, Spacingd

__all__ = ["CheckPaird", "LoadPairImaged", "StoreGeometryd", "SpacingEachd", "SUPPORTED_FORMATS"]

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


class SpacingEachd(MapTransform, InvertibleTransform):
    """MONAI's ``Spacingd`` applied to each key on its own: one ``Spacingd(keys=key, mode=mode, **kwargs)`` per key,
    called on a dictionary that holds only that key; invertible like ``Spacingd``.

    Why: after resampling ``d[key]``, MONAI 1.6.1's ``Spacingd.__call__`` (``monai/transforms/spatial/dictionary.py``)
    runs, when ``d[key].meta["filename_or_obj"]`` is a NIfTI file::

        meta_keys = [k for k in d.keys() if k is not None and k.startswith(f"{key}_")]
        for meta_key in meta_keys:
            d[meta_key].update(d[key].meta)

    i.e. it takes *every* item key that starts with ``"<key>_"`` for a legacy meta dictionary. In a pair item the keys
    ``fixed_label`` (a ``MetaTensor``), ``fixed_original_affine`` (a tensor, :class:`StoreGeometryd`) and
    ``fixed_filename`` (a string) start with ``"fixed_"``, so ``Spacingd(keys="fixed")`` fails with
    ``AttributeError: 'MetaTensor' object has no attribute 'update'`` (``'Tensor'``, ``'str'``), and would overwrite
    any dict-valued item of such a name. No MONAI issue for it was found (searched: Spacingd meta keys prefix
    update); ``tests/transforms/test_pair_io.py`` checks that plain ``Spacingd`` still fails, so the work-around can
    go when MONAI changes it.

    Args:
        keys: the keys to resample.
        modes: the interpolation mode of each key (``"bilinear"``, ``"nearest"``, ...), in the order of ``keys``.
        kwargs: the other arguments of ``monai.transforms.Spacingd`` (``pixdim``, ``padding_mode``, ...), the same for
            every key.
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
