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
r"""From the working grid back to the files: a registration computed by the network on the working grid (both images
reoriented to RAS and resized by :func:`~monai_avsm.data.pair_loading_transforms`) is brought to world space and
onto the fixed image's **native** grid (as read from its file), where the outputs are written and measured.

For every fixed native voxel :math:`j` the moving world point it pulls from is
:math:`q(j) = W_m\,\phi(W_f^{-1} A_f^{nat} j)` (:func:`~monai_avsm.functional.map_to_world_points`), and the warped
moving image is the moving *file's* voxels sampled there (:func:`~monai_avsm.functional.resample_world`): one
interpolation from the original intensities and resolution, whatever the working grid.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from monai_avsm.data.files import IMAGE_SUFFIXES, image_filename
from monai_avsm.data.image_io import NativeImage, read_image
from monai_avsm.functional.world import (
    apply_affine_points,
    map_to_world_points,
    resample_world,
    theta_to_world_affine,
    voxel_world_points,
    world_displacement,
)

__all__ = ["Grid", "PairGeometry", "pair_geometry", "load_native", "sample_at_points", "NativeResampler", "pair_name"]

_KEYS = ("moving", "fixed", "moving_label", "fixed_label")


@dataclass(frozen=True)
class Grid:
    """A voxel grid in world space: ``shape`` (torch order), ``affine`` (voxel index -> RAS mm, float64) and the file
    it belongs to. Validated on creation (finite, invertible affine of the right size)."""

    shape: tuple[int, ...]
    affine: torch.Tensor
    file: str | None = None

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        affine = torch.as_tensor(self.affine, dtype=torch.float64).detach().cpu()
        ndim = len(shape)
        if ndim not in (2, 3) or min(shape) < 1:
            raise ValueError(f"Grid: 'shape' must have 2 or 3 positive sizes, got {shape}.")
        if tuple(affine.shape) != (ndim + 1, ndim + 1):
            raise ValueError(
                f"Grid: 'affine' must be ({ndim + 1}, {ndim + 1}) for shape {shape}, got {tuple(affine.shape)}."
            )
        if not bool(torch.isfinite(affine).all()) or abs(float(torch.linalg.det(affine[:-1, :-1]))) < 1e-12:
            raise ValueError(f"Grid: 'affine' must be finite and invertible, got {affine.tolist()}.")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", affine)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size (mm) along each voxel axis."""
        return tuple(float(v) for v in torch.linalg.norm(self.affine[:-1, :-1], dim=0))

    @property
    def direction(self) -> torch.Tensor:
        """``(D, D)``: unit columns, the RAS direction of each voxel axis."""
        return self.affine[:-1, :-1] / torch.tensor(self.spacing, dtype=torch.float64)

    @classmethod
    def of(cls, image: Any, file: str | None = None) -> Grid:
        """The grid of a channel-first image with an ``affine`` (:class:`~monai_avsm.data.image_io.NativeImage` or
        MONAI ``MetaTensor``)."""
        name = file if file is not None else image_filename(image)
        return cls(tuple(int(s) for s in image.shape[1:]), image.affine, name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "affine": self.affine.tolist(),
            "spacing": list(self.spacing),
            "file": self.file,
        }


@dataclass(frozen=True)
class PairGeometry(Mapping):
    """Geometry of one pair, built once at loading and carried to the writer (immutable).

    - ``fixed``, ``moving``: the **working** grids the network (or the optimisation) ran on; a map ``phi`` lives on
      ``fixed`` and points into ``moving`` (normalised coordinates, docs/conventions.md);
    - ``fixed_native``: the fixed image's own grid (where forward results are written);
      ``moving_native``: the moving image's own grid (inverse results), ``None`` when not known yet;
    - ``files``: the input files by key (``moving``, ``fixed``, ``moving_label``, ``fixed_label``; absent: ``None``).

    For code written against the earlier dictionary form it is also a read-only mapping with the keys
    ``fixed_affine``/``fixed_shape``, ``moving_affine``/``moving_shape``, ``native_affine``/``native_shape`` and
    ``<key>_file``.
    """

    fixed: Grid
    moving: Grid
    fixed_native: Grid
    moving_native: Grid | None = None
    files: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dims = {self.fixed.ndim, self.moving.ndim, self.fixed_native.ndim}
        if self.moving_native is not None:
            dims.add(self.moving_native.ndim)
        if len(dims) != 1:
            raise ValueError(f"PairGeometry: the grids must have one dimensionality, got {sorted(dims)}.")
        unknown = set(self.files) - set(_KEYS)
        if unknown:
            raise ValueError(f"PairGeometry: unknown file keys {sorted(unknown)}; expected some of {_KEYS}.")
        object.__setattr__(self, "files", {k: self.files.get(k) for k in _KEYS})

    def _table(self) -> dict[str, Any]:
        return {
            "fixed_affine": self.fixed.affine,
            "fixed_shape": self.fixed.shape,
            "moving_affine": self.moving.affine,
            "moving_shape": self.moving.shape,
            "native_affine": self.fixed_native.affine,
            "native_shape": self.fixed_native.shape,
            **{f"{k}_file": v for k, v in self.files.items()},
        }

    def __getitem__(self, key: str) -> Any:
        return self._table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for ``registration.json``)."""
        return {
            "working_fixed": self.fixed.to_dict(),
            "working_moving": self.moving.to_dict(),
            "fixed_native": self.fixed_native.to_dict(),
            "moving_native": None if self.moving_native is None else self.moving_native.to_dict(),
            "files": dict(self.files),
        }


def pair_geometry(batch: Mapping[str, Any], index: int = 0) -> PairGeometry:
    """The :class:`PairGeometry` of item ``index`` of a collated batch from ``pair_loading_transforms``.

    Raises:
        KeyError: the batch lacks the fixed image's native geometry (``fixed_original_affine``/``_shape``, kept by
            ``StoreGeometryd``) or the images are not ``MetaTensor`` with an affine.
    """
    for key in ("moving", "fixed", "fixed_original_affine", "fixed_original_shape"):
        if key not in batch:
            raise KeyError(
                f"pair_geometry: the batch has no {key!r}; load pairs with monai_avsm.data.pair_loading_transforms "
                f"(it keeps the fixed image's native geometry). Keys: {sorted(map(str, batch))}."
            )
    moving, fixed = batch["moving"], batch["fixed"]
    if getattr(moving, "affine", None) is None or getattr(fixed, "affine", None) is None:
        raise KeyError("pair_geometry: 'moving' and 'fixed' must be MetaTensors with their working-grid affine.")

    def aff(x):
        a = torch.as_tensor(x.affine, dtype=torch.float64)
        return a[index] if a.ndim == 3 else a

    native_affine = torch.as_tensor(batch["fixed_original_affine"], dtype=torch.float64)
    native_affine = native_affine[index] if native_affine.ndim == 3 else native_affine
    native_shape = torch.as_tensor(batch["fixed_original_shape"])
    native_shape = native_shape[index] if native_shape.ndim == 2 else native_shape
    ndim = moving.ndim - 2
    files: dict[str, str | None] = {}
    for key in _KEYS:
        name = None
        if key in batch:
            meta = getattr(batch[key], "meta", {}) or {}
            names = meta.get("filename_or_obj")
            name = str(names[index]) if isinstance(names, (list, tuple)) else image_filename(batch[key])
        files[key] = name
    return PairGeometry(
        fixed=Grid(tuple(fixed.shape[2:]), aff(fixed), files["fixed"]),
        moving=Grid(tuple(moving.shape[2:]), aff(moving), files["moving"]),
        fixed_native=Grid(
            tuple(int(s) for s in native_shape.reshape(-1)[:ndim].tolist()), native_affine, files["fixed"]
        ),
        files=files,
    )


def pair_name(geometry: Mapping[str, Any], index: int = 0) -> str:
    """A folder name for a pair: ``<moving stem>_to_<fixed stem>`` (``pair<index>`` without file names)."""

    def stem(path):
        base = os.path.basename(str(path).rstrip("/"))
        for ext in IMAGE_SUFFIXES:
            if base.endswith(ext):
                return base[: -len(ext)]
        return base

    if geometry.get("moving_file") and geometry.get("fixed_file"):
        return f"{stem(geometry['moving_file'])}_to_{stem(geometry['fixed_file'])}"
    return f"pair{index}"


def load_native(path: str, label: bool = False) -> NativeImage:
    """Read an image (or label) file as channel-first data with its own RAS affine
    (:func:`~monai_avsm.data.image_io.read_image`: nibabel for NIfTI, MONAI/ITK for the rest)."""
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"load_native: file {path!r} does not exist.")
    return read_image(path, label=label, caller="load_native")


def sample_at_points(
    image: Any, points: torch.Tensor, label: bool = False, device: torch.device | str | None = None
) -> torch.Tensor:
    """An image read from its file (:func:`load_native`) sampled at world points ``(D, *S)`` (RAS mm): linearly as
    float32, or a label map with nearest neighbour (values kept). Computed on ``device`` (default: the image's)."""
    data = image.as_tensor() if device is None else image.as_tensor().to(device)
    affine = torch.as_tensor(image.affine, dtype=torch.float64)
    if label:
        return resample_world(data, affine, points, mode="nearest")
    return resample_world(data.to(torch.float32), affine, points, mode="bilinear")


class NativeResampler:
    """Bring a registration result for one pair onto the native grids, reading each input file at most once.

    Args:
        geometry: the pair's :class:`PairGeometry`.
        device: where to compute (default: CPU).
        images: the pair's images already read (:class:`~monai_avsm.data.image_io.NativeImage` by key ``moving``,
            ``fixed``, ``moving_label``, ``fixed_label``); the others are read from ``geometry``'s files on first use
            and kept.
    """

    def __init__(
        self,
        geometry: PairGeometry | Mapping[str, Any],
        device: torch.device | str | None = None,
        images: Mapping[str, NativeImage | None] | None = None,
    ) -> None:
        self.g = geometry
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._images: dict[str, NativeImage | None] = dict(images or {})
        self._points: tuple[tuple, torch.Tensor] | None = None

    def image(self, key: str) -> NativeImage | None:
        """The input ``key`` as read from its file (read once, then kept), or ``None`` without a file."""
        if key not in _KEYS:
            raise KeyError(f"NativeResampler.image: 'key' must be one of {_KEYS}, got {key!r}.")
        if key not in self._images:
            path = self.g.get(f"{key}_file")
            self._images[key] = load_native(path, label=key.endswith("label")) if path else None
        return self._images[key]

    def points(self, phi: torch.Tensor) -> torch.Tensor:
        """World points ``(D, *native_shape)`` (RAS mm) of the moving image pulled by ``phi`` (working-grid map).

        The last result is kept: the writer and the Dice of the same map share one computation."""
        key = (phi.device, phi.data_ptr(), tuple(phi.shape), tuple(phi.stride()), phi.dtype, phi._version)
        if self._points is not None and self._points[0] == key:
            return self._points[1]
        g = self.g
        out = map_to_world_points(
            phi.to(self.device, torch.float64),
            g["fixed_affine"],
            g["moving_affine"],
            g["moving_shape"],
            target_affine=g["native_affine"],
            target_shape=g["native_shape"],
        )
        self._points = (key, out)
        return out

    def identity_points(self) -> torch.Tensor:
        """World points of the fixed native voxels (no registration: the images as they lie in world space)."""
        return voxel_world_points(self.g["native_affine"], self.g["native_shape"]).to(self.device)

    def affine_points(self, theta: torch.Tensor) -> torch.Tensor:
        """World points of the affine part alone: ``T p`` with the exact world matrix (no map sampling)."""
        return apply_affine_points(self.world_affine(theta), self.identity_points())

    def world_affine(self, theta: torch.Tensor) -> torch.Tensor:
        """RAS world matrix (fixed world point -> moving world point) of the affine part ``theta`` (D, D+1)."""
        g = self.g
        return theta_to_world_affine(
            theta.to(torch.float64), g["fixed_affine"], g["fixed_shape"], g["moving_affine"], g["moving_shape"]
        )

    def displacement(self, points: torch.Tensor) -> torch.Tensor:
        """World displacement ``(D, *native_shape)`` (RAS mm) of ``points`` from the fixed native voxels."""
        return world_displacement(points, self.g["native_affine"])

    def moving(self, label: bool = False) -> NativeImage | None:
        """The moving image (or label) as read from its file, or ``None`` without a file."""
        return self.image("moving_label" if label else "moving")

    def fixed_label(self) -> NativeImage | None:
        return self.image("fixed_label")

    def warp(self, points: torch.Tensor, label: bool = False) -> torch.Tensor | None:
        """The moving image (linear) or label (nearest) from its file, sampled at ``points``."""
        img = self.moving(label)
        return None if img is None else sample_at_points(img, points, label, self.device)
