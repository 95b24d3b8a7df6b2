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
from collections.abc import Mapping
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage

from monai_avsm.functional.world import (
    apply_affine_points,
    map_to_world_points,
    resample_world,
    theta_to_world_affine,
    voxel_world_points,
    world_displacement,
)

__all__ = ["PairGeometry", "pair_geometry", "load_native", "sample_at_points", "NativeResampler", "pair_name"]


class PairGeometry(dict):
    """Geometry of one pair: working grids (``fixed_affine``/``fixed_shape``, ``moving_affine``/``moving_shape``),
    the fixed native grid (``native_affine``/``native_shape``) and the file names (``moving_file``, ``fixed_file``,
    ``moving_label_file``, ``fixed_label_file``; ``None`` when absent)."""


def _filename(x: Any) -> str | None:
    meta = getattr(x, "meta", None)
    name = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    return str(name) if name else None


def _item(x: Any, index: int) -> Any:
    if isinstance(x, (list, tuple)):
        return x[index]
    return x


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
    if not isinstance(moving, MetaTensor) or not isinstance(fixed, MetaTensor):
        raise KeyError("pair_geometry: 'moving' and 'fixed' must be MetaTensors with their working-grid affine.")

    def aff(x):
        a = torch.as_tensor(x.affine, dtype=torch.float64)
        return a[index] if a.ndim == 3 else a

    native_affine = torch.as_tensor(batch["fixed_original_affine"], dtype=torch.float64)
    native_affine = native_affine[index] if native_affine.ndim == 3 else native_affine
    native_shape = torch.as_tensor(batch["fixed_original_shape"])
    native_shape = native_shape[index] if native_shape.ndim == 2 else native_shape
    ndim = moving.ndim - 2
    g = PairGeometry(
        moving_affine=aff(moving),
        moving_shape=tuple(int(s) for s in moving.shape[2:]),
        fixed_affine=aff(fixed),
        fixed_shape=tuple(int(s) for s in fixed.shape[2:]),
        native_affine=native_affine,
        native_shape=tuple(int(s) for s in native_shape.reshape(-1)[:ndim].tolist()),
    )
    for key in ("moving", "fixed", "moving_label", "fixed_label"):
        name = None
        if key in batch:
            name = _filename(batch[key])
            if name is not None and isinstance(batch[key].meta.get("filename_or_obj"), (list, tuple)):
                name = str(batch[key].meta["filename_or_obj"][index])
        g[f"{key}_file"] = name
    return g


def pair_name(geometry: Mapping[str, Any], index: int = 0) -> str:
    """A folder name for a pair: ``<moving stem>_to_<fixed stem>`` (``pair<index>`` without file names)."""

    def stem(path):
        base = os.path.basename(str(path).rstrip("/"))
        for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".nhdr"):
            if base.endswith(ext):
                return base[: -len(ext)]
        return base

    if geometry.get("moving_file") and geometry.get("fixed_file"):
        return f"{stem(geometry['moving_file'])}_to_{stem(geometry['fixed_file'])}"
    return f"pair{index}"


def load_native(path: str, label: bool = False) -> MetaTensor:
    """Read an image (or label) file as channel-first ``MetaTensor`` with its own RAS affine (MONAI readers)."""
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"load_native: file {path!r} does not exist.")
    img = LoadImage(image_only=True, ensure_channel_first=True)(path)
    if label:
        img = img.round().to(torch.int64) if img.is_floating_point() else img.to(torch.int64)
    return img


def sample_at_points(
    image: MetaTensor, points: torch.Tensor, label: bool = False, device: torch.device | str | None = None
) -> torch.Tensor:
    """An image read from its file (:func:`load_native`) sampled at world points ``(D, *S)`` (RAS mm): linearly as
    float32, or a label map with nearest neighbour (values kept). Computed on ``device`` (default: the image's)."""
    data = image.as_tensor() if device is None else image.as_tensor().to(device)
    affine = torch.as_tensor(image.affine, dtype=torch.float64)
    if label:
        return resample_world(data, affine, points, mode="nearest")
    return resample_world(data.to(torch.float32), affine, points, mode="bilinear")


class NativeResampler:
    """Bring the network's result for one pair onto the fixed image's native grid.

    Args:
        geometry: the pair's :class:`PairGeometry`.
        device: where to compute (default: CPU; the map's device is used when given on CUDA).
    """

    def __init__(self, geometry: Mapping[str, Any], device: torch.device | str | None = None) -> None:
        self.g = geometry
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._moving: dict[bool, MetaTensor] = {}

    def points(self, phi: torch.Tensor) -> torch.Tensor:
        """World points ``(D, *native_shape)`` (RAS mm) of the moving image pulled by ``phi`` (working-grid map)."""
        g = self.g
        return map_to_world_points(
            phi.to(self.device, torch.float64),
            g["fixed_affine"],
            g["moving_affine"],
            g["moving_shape"],
            target_affine=g["native_affine"],
            target_shape=g["native_shape"],
        )

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

    def moving(self, label: bool = False) -> MetaTensor | None:
        """The moving image (or label) as read from its file (cached), or ``None`` without a file."""
        if label not in self._moving:
            path = self.g.get("moving_label_file" if label else "moving_file")
            self._moving[label] = load_native(path, label=label) if path else None
        return self._moving[label]

    def fixed_label(self) -> MetaTensor | None:
        path = self.g.get("fixed_label_file")
        return load_native(path, label=True) if path else None

    def warp(self, points: torch.Tensor, label: bool = False) -> torch.Tensor | None:
        """The moving image (linear) or label (nearest) from its file, sampled at ``points``."""
        img = self.moving(label)
        return None if img is None else sample_at_points(img, points, label, self.device)
