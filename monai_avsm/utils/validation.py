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
"""Input checks shared by the package: every error names the function, the argument, the expected and the
received value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "check_spatial_tensor",
    "check_map",
    "check_same_spatial_shape",
    "check_finite",
    "ensure_spacing",
    "check_image_pair",
    "check_binary_mask",
    "to_numpy",
]


def check_spatial_tensor(x: torch.Tensor, name: str, caller: str, channels: int | None = None) -> int:
    """Check that ``x`` is a ``(B, C, *S)`` floating tensor with 2 or 3 spatial dims; return the number of them."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{caller}: '{name}' must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim not in (4, 5):
        raise ValueError(
            f"{caller}: '{name}' must have shape (B, C, H, W) or (B, C, H, W, D) (2 or 3 spatial dims), "
            f"got shape {tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise TypeError(f"{caller}: '{name}' must be a floating point tensor, got dtype {x.dtype}.")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{caller}: '{name}' must have {channels} channels, got shape {tuple(x.shape)}.")
    return x.ndim - 2


def check_map(phi: torch.Tensor, name: str, caller: str) -> int:
    """Check that ``phi`` is a map or displacement field ``(B, D, *S)`` with ``D = len(S)`` and every size >= 2."""
    ndim = check_spatial_tensor(phi, name, caller)
    if phi.shape[1] != ndim:
        raise ValueError(
            f"{caller}: '{name}' must have shape (B, {ndim}, *S) for {ndim} spatial dims (one channel per axis), "
            f"got shape {tuple(phi.shape)}."
        )
    if min(phi.shape[2:]) < 2:
        raise ValueError(f"{caller}: every spatial size of '{name}' must be >= 2, got shape {tuple(phi.shape)}.")
    return ndim


def check_same_spatial_shape(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], caller: str) -> None:
    """Check that two ``(B, C, *S)`` tensors have the same spatial shape."""
    if a.shape[2:] != b.shape[2:]:
        raise ValueError(
            f"{caller}: '{names[0]}' and '{names[1]}' must have the same spatial shape, "
            f"got {tuple(a.shape[2:])} and {tuple(b.shape[2:])}."
        )


def check_finite(x: torch.Tensor, name: str, caller: str) -> None:
    """Raise a ``ValueError`` if ``x`` contains NaN or infinite values (one device sync: use at entry points)."""
    if not bool(torch.isfinite(x).all()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{caller}: '{name}' contains {n_nan} NaN and {n_inf} infinite values.")


def ensure_spacing(spacing: Sequence[float] | torch.Tensor | float | None, ndim: int, caller: str) -> tuple[float, ...]:
    """Return the voxel spacing as a tuple of ``ndim`` positive floats (``None`` means 1 on every axis).

    A ``(B, ndim)`` tensor is accepted when all rows are equal (one grid per batch)."""
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, torch.Tensor):
        s = spacing.detach().to("cpu", torch.float64)
        if s.ndim == 2:
            if not bool((s == s[:1]).all()):
                raise ValueError(f"{caller}: 'spacing' must be the same for every batch item, got {s.tolist()}.")
            s = s[0]
        values = tuple(float(v) for v in s.reshape(-1).tolist())
    elif isinstance(spacing, (int, float)):
        values = (float(spacing),) * ndim
    else:
        values = tuple(float(v) for v in spacing)
    if len(values) != ndim:
        raise ValueError(f"{caller}: 'spacing' must have {ndim} values (one per spatial axis), got {values}.")
    if any(not v > 0 for v in values):
        raise ValueError(f"{caller}: 'spacing' must be positive, got {values}.")
    return values


def check_image_pair(pred: torch.Tensor, target: torch.Tensor, caller: str) -> None:
    """Check that ``pred`` and ``target`` are floating tensors of the same shape ``(B, C, *S)`` (any number of spatial
    axes >= 1), as the similarities of :mod:`monai_avsm.functional` take them."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{caller}: '{name}' must be a torch.Tensor, got {type(t).__name__}.")
        if not t.is_floating_point():
            raise TypeError(f"{caller}: '{name}' must be a floating point tensor, got dtype {t.dtype}.")
    if pred.ndim < 3:
        raise ValueError(f"{caller}: 'pred' must have shape (B, C, *S), got shape {tuple(pred.shape)}.")
    if pred.shape != target.shape:
        raise ValueError(
            f"{caller}: 'pred' and 'target' must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}."
        )


def check_binary_mask(mask: torch.Tensor, reference: torch.Tensor, name: str, caller: str) -> torch.Tensor:
    """Check a binary mask on the grid of ``reference`` ``(B, C, *S)`` (the fixed image) and return it as a bool
    tensor on the device of ``reference``.

    The mask must have shape ``(B, 1, *S)`` or ``(1, 1, *S)``, be bool, integer or floating with values 0 and 1 only
    (no NaN), and select at least one voxel of every sample. It is detached (no gradient flows to a mask).

    Raises:
        TypeError: if ``mask`` is not a tensor or is complex.
        ValueError: for a wrong shape, values other than 0 and 1, NaN, or a sample with no voxel selected.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{caller}: '{name}' must be a torch.Tensor or None, got {type(mask).__name__}.")
    batch, spatial = reference.shape[0], tuple(reference.shape[2:])
    if (
        mask.ndim != reference.ndim
        or mask.shape[1] != 1
        or mask.shape[0] not in (1, batch)
        or mask.shape[2:] != spatial
    ):
        grid = ", ".join(str(n) for n in spatial)
        raise ValueError(
            f"{caller}: '{name}' must have shape ({batch}, 1, {grid}) or (1, 1, {grid}) (one channel on the grid of "
            f"the fixed image, broadcast over the channels), got shape {tuple(mask.shape)}."
        )
    if mask.is_complex():
        raise TypeError(f"{caller}: '{name}' must be a bool, integer or real floating tensor, got dtype {mask.dtype}.")
    m = mask.detach()
    if m.dtype != torch.bool:
        if m.is_floating_point():
            n_nan = int(torch.isnan(m).sum())
            if n_nan:
                raise ValueError(f"{caller}: '{name}' contains {n_nan} NaN values; it must be binary (0 or 1).")
        binary = (m == 0) | (m == 1)
        if not bool(binary.all()):
            bad = torch.unique(m[~binary])[:5].tolist()
            raise ValueError(
                f"{caller}: '{name}' must be binary (values 0 and 1 only, or bool), got other values, e.g. {bad}."
            )
        m = m != 0
    m = m.to(reference.device)
    counts = m.flatten(1).sum(dim=1)
    if not bool((counts > 0).all()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        which = "" if m.shape[0] == 1 else f" for sample(s) {empty}"
        raise ValueError(f"{caller}: '{name}' is all zero{which}: the mask selects no voxel.")
    return m


def to_numpy(x: Any, name: str, caller: str) -> np.ndarray:
    """``x`` (a tensor, MONAI ``MetaTensor`` or array-like) as a numpy array on the CPU (detached).

    Raises:
        TypeError: ``x`` cannot be converted.
    """
    if isinstance(x, torch.Tensor):
        x = x.as_tensor() if hasattr(x, "as_tensor") else x
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # pragma: no cover - unusual inputs
        raise TypeError(f"{caller}: '{name}' must be a tensor or an array, got {type(x).__name__}.") from e
