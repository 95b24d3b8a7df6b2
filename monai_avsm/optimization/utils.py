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
r"""Parts shared by the per-pair optimisation baselines (method spec §8): input checks, the image pyramid and the one
coarse-to-fine loop over it (:func:`run_pyramid`, used by ``affine_opt``, ``vsvf_opt``, ``refine`` and
``deformable_opt``), the similarity per scale, the vSVF step in displacement-increment form, best-iterate tracking,
early stopping and seeding (the progress report is :class:`monai_avsm.utils.progress.Progress`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from monai_avsm.functional.jacobian import fold_mask, jacobian_determinant
from monai_avsm.functional.maps import resample_map, warp_image
from monai_avsm.functional.windows import default_lncc_settings, paper_lncc_stride
from monai_avsm.losses.mk_lncc import MKLNCCLoss
from monai_avsm.utils.validation import (
    check_finite,
    check_map,
    check_same_spatial_shape,
    check_spatial_tensor,
    ensure_spacing,
)

__all__ = [
    "Similarity",
    "check_pair",
    "batched_field",
    "check_schedule",
    "per_scale",
    "check_pyramid_arguments",
    "spacing_for",
    "scale_shape",
    "scaled_spacing",
    "downsample_image",
    "gaussian_filter_axis",
    "downsample_mask",
    "PyramidLevel",
    "run_pyramid",
    "default_similarity",
    "masked_default_similarity",
    "per_sample_similarity",
    "momentum_shape",
    "vsvf_increment_step",
    "initial_map_low",
    "fold_count",
    "fold_backoff",
    "BestIterate",
    "EarlyStopping",
    "seeded",
]

logger = logging.getLogger("monai_avsm.optimization")

#: a two-argument image loss ``(pred, target) -> scalar or (B,)``, e.g. :class:`~monai_avsm.losses.MKLNCCLoss`
Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: smallest size of an axis at a coarse scale (the paper's LNCC rule and the half-resolution momentum need >= 4)
MIN_SCALE_SIZE = 4


def check_pair(moving: torch.Tensor, fixed: torch.Tensor, caller: str) -> int:
    """Check a (moving, fixed) pair: ``(B, C, *S)`` floating tensors, same shape, finite. Return the spatial dims."""
    ndim = check_spatial_tensor(moving, "moving", caller)
    if check_spatial_tensor(fixed, "fixed", caller, channels=moving.shape[1]) != ndim:
        raise ValueError(
            f"{caller}: 'moving' {tuple(moving.shape)} and 'fixed' {tuple(fixed.shape)} must have the same number of "
            f"spatial dims."
        )
    check_same_spatial_shape(moving, fixed, ("moving", "fixed"), caller)
    if moving.shape[0] != fixed.shape[0]:
        raise ValueError(f"{caller}: 'moving' and 'fixed' batch sizes differ: {moving.shape[0]} and {fixed.shape[0]}.")
    if min(moving.shape[2:]) < MIN_SCALE_SIZE:
        raise ValueError(
            f"{caller}: every spatial size must be >= {MIN_SCALE_SIZE}, got 'moving' shape {tuple(moving.shape)}."
        )
    check_finite(moving, "moving", caller)
    check_finite(fixed, "fixed", caller)
    return ndim


def batched_field(x: torch.Tensor, name: str, batch: int, ndim: int, caller: str, shape=None) -> torch.Tensor:
    """Check a map/momentum ``(B or 1, D, *s)`` (on ``shape`` if given), finite; expand it to the batch."""
    if check_map(x, name, caller) != ndim:
        raise ValueError(f"{caller}: '{name}' must have {ndim} spatial dims, got shape {tuple(x.shape)}.")
    if x.shape[0] not in (1, batch):
        raise ValueError(f"{caller}: '{name}' must have batch size {batch} or 1, got shape {tuple(x.shape)}.")
    if shape is not None and tuple(x.shape[2:]) != tuple(shape):
        raise ValueError(
            f"{caller}: '{name}' must be on the images' grid {tuple(shape)}, got shape {tuple(x.shape)}; "
            f"use monai_avsm.functional.resample_map first."
        )
    check_finite(x, name, caller)
    return x.expand(batch, *x.shape[1:])


def check_schedule(
    scales: Sequence[float], iterations: Sequence[int] | int, caller: str
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Check the multi-scale schedule: scales in ``(0, 1]``, non-decreasing (coarse to fine), one iteration count
    (an int ``>= 0``) per scale; an int ``iterations`` applies to every scale."""
    try:
        sc = tuple(float(s) for s in scales)
    except TypeError as err:
        raise TypeError(f"{caller}: 'scales' must be a sequence of numbers, got {scales!r}.") from err
    if len(sc) == 0 or any(not (0 < s <= 1) or not math.isfinite(s) for s in sc):
        raise ValueError(f"{caller}: 'scales' must be a non-empty sequence of numbers in (0, 1], got {sc}.")
    if any(a > b for a, b in zip(sc, sc[1:])):
        raise ValueError(f"{caller}: 'scales' must run coarse to fine (non-decreasing), got {sc}.")
    its = (iterations,) * len(sc) if isinstance(iterations, int) else tuple(iterations)
    if len(its) != len(sc):
        raise ValueError(f"{caller}: 'iterations' needs one entry per scale ({len(sc)} scales {sc}), got {tuple(its)}.")
    if any(isinstance(n, bool) or int(n) != n or n < 0 for n in its):
        raise ValueError(f"{caller}: 'iterations' must be integers >= 0, got {tuple(its)}.")
    return sc, tuple(int(n) for n in its)


def per_scale(value: float | Sequence[float], n: int, name: str, caller: str) -> tuple[float, ...]:
    """A number for every scale: a single number is repeated, a sequence must have ``n`` entries, all > 0."""
    values = (float(value),) * n if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if len(values) != n or any(not (v > 0) or not math.isfinite(v) for v in values):
        raise ValueError(f"{caller}: '{name}' must be a positive number or {n} positive numbers, got {value!r}.")
    return values


def check_pyramid_arguments(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    scales: Sequence[float],
    iterations: Sequence[int] | int,
    lr: float | Sequence[float],
    spacing,
    tolerance: float,
    patience: int,
    caller: str,
) -> tuple[int, tuple[float, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...], EarlyStopping]:
    """The arguments every coarse-to-fine optimiser (:func:`~monai_avsm.optimization.affine_opt`,
    :func:`~monai_avsm.optimization.vsvf_opt`) starts by checking, in this order: the image pair
    (:func:`check_pair`), the schedule (:func:`check_schedule`), the learning rate per scale (:func:`per_scale`), the
    spacing (:func:`spacing_for`) and the early stop (:class:`EarlyStopping`).

    Returns:
        ``(ndim, scales, iterations, lrs, spacing, stopper)``.
    """
    ndim = check_pair(moving, fixed, caller)
    scales, iterations = check_schedule(scales, iterations, caller)
    lrs = per_scale(lr, len(scales), "lr", caller)
    sp = spacing_for(spacing, ndim, caller)
    return ndim, scales, iterations, lrs, sp, EarlyStopping(tolerance, patience, caller)


def scale_shape(spatial_shape: Sequence[int], scale: float) -> tuple[int, ...]:
    """The grid of a pyramid level: ``round(N * scale)`` per axis, at least :data:`MIN_SCALE_SIZE` (and at most N)."""
    return tuple(min(int(n), max(MIN_SCALE_SIZE, int(round(n * scale)))) for n in spatial_shape)


def scaled_spacing(spacing: Sequence[float], full_shape: Sequence[int], shape: Sequence[int]) -> tuple[float, ...]:
    """Voxel spacing of a grid of ``shape`` spanning the same domain as ``full_shape``: ``s (N - 1) / (n - 1)``."""
    return tuple(s * (n - 1) / (k - 1) for s, n, k in zip(spacing, full_shape, shape))


def gaussian_filter_axis(image: torch.Tensor, axis: int, sigma: float, truncated: float = 3.0) -> torch.Tensor:
    r"""Gaussian smoothing of ``image`` ``(B, C, *S)`` along spatial ``axis``: the normalised sampled kernel
    :math:`k_i \propto e^{-i^2 / 2\sigma^2}`, :math:`|i| \le \lfloor \max(3\sigma, 0.5) + 0.5 \rfloor`, replicate
    padding.

    The same as MONAI's ``separable_filtering(image, [gaussian_1d(sigma, 3.0, "sampled", normalize=True)],
    "replicate")`` along one axis (tested equal), written with ``conv1d`` so that the optimisation imports no MONAI
    (its import costs about 3 s on 2 CPU cores; see :mod:`monai_avsm.utils.options`).
    """
    tail = int(max(float(sigma) * truncated, 0.5) + 0.5)
    x = torch.arange(-tail, tail + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 / (float(sigma) ** 2) * x**2)
    kernel = (kernel / kernel.sum()).to(dtype=image.dtype, device=image.device)
    dim = axis + 2
    moved = image.movedim(dim, -1)
    shape = moved.shape
    flat = moved.reshape(-1, 1, shape[-1])
    out = F.conv1d(F.pad(flat, (tail, tail), mode="replicate"), kernel.reshape(1, 1, -1))
    return out.reshape(shape).movedim(-1, dim)


def downsample_image(image: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    r"""Sample ``image`` ``(B, C, *S)`` on a coarser grid spanning the same domain, with anti-aliasing.

    A Gaussian of standard deviation :math:`\sigma_a = (f_a - 1) / 2` voxels (:math:`f_a = (N_a - 1) / (n_a - 1)`,
    replicate padding) then linear interpolation at the coarse grid's points with ``align_corners=True``, so that
    coarse voxel ``i`` sits at ``2 i / (n - 1) - 1`` exactly as the maps assume. (``F.interpolate(mode="area")``
    averages cells centred half a coarse voxel off that grid, which biases the translation found at coarse scales.)
    """
    shape = tuple(int(n) for n in spatial_shape)
    full = tuple(image.shape[2:])
    if shape == full:
        return image
    ndim = len(shape)
    factors = [(n - 1) / (k - 1) for n, k in zip(full, shape)]
    mode = "bilinear" if ndim == 2 else "trilinear"
    if not any(f > 1 for f in factors):
        return F.interpolate(image, size=shape, mode=mode, align_corners=True)
    # smoothing along one axis commutes with the linear interpolation along another (both are separable), so each
    # axis is smoothed and then shrunk before the next is smoothed: the later filters run on smaller arrays (the
    # result equals smoothing every axis at full size, then interpolating; tested in float64)
    dtype = torch.promote_types(image.dtype, torch.float32)
    out = image.to(dtype)
    size = list(full)
    for axis, f in enumerate(factors):
        if f > 1:
            out = gaussian_filter_axis(out, axis, max((f - 1) / 2, 1e-3))
        size[axis] = shape[axis]
        if tuple(out.shape[2:]) != tuple(size):
            out = F.interpolate(out, size=tuple(size), mode=mode, align_corners=True)
    return out.to(image.dtype)


def downsample_mask(mask: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """A binary mask ``(B, 1, *S)`` on a coarser grid: :func:`downsample_image` of its float copy, kept where
    ``>= 0.5`` (the same dtype as the input mask)."""
    shape = tuple(int(n) for n in spatial_shape)
    if shape == tuple(mask.shape[2:]):
        return mask
    low = downsample_image(mask.to(torch.float32), shape) >= 0.5
    return low.to(mask.dtype)


@dataclass
class PyramidLevel:
    """One level of :func:`run_pyramid`: its index and scale, its grid ``shape`` (``full`` when it is the images'
    own grid) and voxel ``spacing``, the iterations to run, and the images (and optional mask) sampled on it."""

    index: int
    scale: float
    shape: tuple[int, ...]
    full: bool
    iterations: int
    spacing: tuple[float, ...]
    moving: torch.Tensor
    fixed: torch.Tensor
    mask: torch.Tensor | None = None


def run_pyramid(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    scales: Sequence[float],
    iterations: Sequence[int],
    step: Callable[[PyramidLevel], tuple[list[float], int]],
    spacing: Sequence[float] | None = None,
    mask: torch.Tensor | None = None,
    shapes: Sequence[Sequence[int]] | None = None,
    deadline: float | None = None,
) -> dict:
    r"""The coarse-to-fine loop shared by every per-pair optimisation: for each level :math:`k` (coarse to fine) sample
    both images (and ``mask``) on the level's grid and call ``step(level)``, which optimises from the state that the
    previous levels left (the caller keeps it, e.g. in a closure) and returns ``(losses, iterations_run)``.

    A level with 0 iterations, or reached after ``deadline`` (a ``time.perf_counter()`` value), is skipped (empty
    history, 0 iterations, 0 seconds) and its images are never computed. The grid of level :math:`k` is
    :func:`scale_shape` of ``scales[k]`` unless ``shapes`` gives it; the images' own grid reuses the inputs as is,
    coarser grids use :func:`downsample_image` (:func:`downsample_mask` for the mask). The images are cast to the
    promoted floating type of ``moving`` (at least float32).

    Returns:
        dict with ``"history"`` (per level, the losses ``step`` returned), ``"iterations"``, ``"seconds"`` (per level)
        and ``"shapes"`` (the level grids).
    """
    full_shape = tuple(int(n) for n in moving.shape[2:])
    sp = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * len(full_shape)
    dtype = torch.promote_types(moving.dtype, torch.float32)
    grids = [tuple(int(n) for n in s) for s in shapes] if shapes is not None else None
    history: list[list[float]] = []
    done: list[int] = []
    seconds: list[float] = []
    level_shapes: list[tuple[int, ...]] = []
    for k, (scale, n_iter) in enumerate(zip(scales, iterations)):
        shape = grids[k] if grids is not None else scale_shape(full_shape, scale)
        level_shapes.append(shape)
        if n_iter == 0 or (deadline is not None and time.perf_counter() >= deadline):
            history.append([])
            done.append(0)
            seconds.append(0.0)
            continue
        start = time.perf_counter()
        full = shape == full_shape
        level = PyramidLevel(
            index=k, scale=float(scale), shape=shape, full=full, iterations=int(n_iter),
            spacing=scaled_spacing(sp, full_shape, shape),
            moving=moving.to(dtype) if full else downsample_image(moving.to(dtype), shape),
            fixed=fixed.to(dtype) if full else downsample_image(fixed.to(dtype), shape),
            mask=None if mask is None else downsample_mask(mask, shape),
        )  # fmt: skip
        losses, n_done = step(level)
        history.append(losses)
        done.append(int(n_done))
        seconds.append(time.perf_counter() - start)
    return {"history": history, "iterations": done, "seconds": seconds, "shapes": level_shapes}


def default_similarity(spatial_dims: int, spatial_shape: Sequence[int], full_scale: bool) -> MKLNCCLoss:
    r"""mk-LNCC for one pyramid level (method spec §4 and §8), per-sample values (``reduction="none"``).

    - full scale: the paper's window rule for the image size
      (:func:`~monai_avsm.functional.windows.default_lncc_settings`);
    - coarse scales (spec §8, "single kernel :math:`S_k/2`"): one cubic window of half the smallest size :math:`S_k`
      of that level, weight 1, the rule's stride (:func:`~monai_avsm.functional.windows.paper_lncc_stride`),
      dilation 1. For :math:`S_k < 64` this is what the paper's rule gives anyway.
    """
    if full_scale:
        return MKLNCCLoss(spatial_dims, reduction="none")
    k = max(2, min(int(n) for n in spatial_shape) // 2)
    return MKLNCCLoss(
        spatial_dims, kernel_sizes=[k], kernel_weights=[1.0], strides=[paper_lncc_stride(k)], dilations=[1],
        reduction="none",
    )  # fmt: skip


def masked_default_similarity(spatial_dims: int, mask: torch.Tensor) -> MKLNCCLoss:
    r"""The full-scale default similarity when the similarity counts only inside a fixed-image ``mask``
    ``(B or 1, 1, *S)``: the paper's window rule
    (:func:`~monai_avsm.functional.windows.default_lncc_settings`) for the size of the mask's bounding box (over the
    batch) instead of the image's, each kernel contiguous (dilation 1), per-sample values.

    The rule scales the windows to the object; with a mask the object is the mask. Applied to the whole image, the
    rule's dilated windows of a brain on a 96x112x96 grid span 95 voxels, so none of them has half its voxels in a
    brain mask (``MKLNCCLoss``'s ``mask_fraction``) and the masked loss cannot be evaluated.
    """
    dims = tuple(range(2, 2 + spatial_dims))
    inside = mask.detach().to(torch.bool).any(dim=0).any(dim=0)  # (*S)
    extent = []
    for axis in range(spatial_dims):
        hit = torch.nonzero(inside.any(dim=tuple(a for a in range(spatial_dims) if a != axis))).flatten()
        extent.append(int(hit[-1] - hit[0]) + 1 if hit.numel() else int(mask.shape[dims[axis]]))
    rule = default_lncc_settings(extent)
    return MKLNCCLoss(
        spatial_dims, kernel_sizes=list(rule.kernel_sizes), kernel_weights=list(rule.kernel_weights),
        strides=list(rule.strides), dilations=[1] * len(rule.kernel_sizes), reduction="none",
    )  # fmt: skip


def per_sample_similarity(similarity: Similarity, pred: torch.Tensor, target: torch.Tensor, caller: str):
    """Evaluate ``similarity`` and return per-sample values ``(B,)``; a scalar (batch-reduced) loss is broadcast."""
    value = similarity(pred, target)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{caller}: 'similarity' must return a torch.Tensor, got {type(value).__name__}.")
    batch = pred.shape[0]
    if value.ndim == 0:
        return value.expand(batch)
    if value.ndim >= 1 and value.shape[0] == batch:
        return value.reshape(batch, -1).mean(dim=1)
    raise ValueError(
        f"{caller}: 'similarity' must return a scalar or values with the batch first, got shape {tuple(value.shape)}."
    )


def momentum_shape(spatial_shape: Sequence[int]) -> tuple[int, ...]:
    """The momentum grid for images of ``spatial_shape``: half resolution, ``ceil(N / 2)`` (as ``MomentumUNet``)."""
    return tuple(max(2, math.ceil(int(n) / 2)) for n in spatial_shape)


def vsvf_increment_step(
    warp,
    momentum: torch.Tensor,
    initial_map: torch.Tensor,
    source: torch.Tensor,
    spacing: Sequence[float],
    initial_map_low: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[float, ...]]:
    r"""One vSVF step with the smoother and integrator of a :class:`~monai_avsm.networks.blocks.VSVFWarp`, assembled
    as a displacement increment on the full-resolution initial map:

    .. math::
        v = K \star m, \quad \Phi_{low}(1) = \mathrm{RK4}(\Phi_{0,low}, v), \quad
        \Phi = \Phi_0 + \mathrm{up}\big(\Phi_{low}(1) - \Phi_{0,low}\big), \quad I_{warped} = I_0 \circ \Phi

    with :math:`\Phi_{0,low} = \mathrm{down}(\Phi_0)` on the momentum grid. ``VSVFWarp`` returns
    :math:`\mathrm{up}(\Phi_{low}(1))`, which differs by the interpolation error of :math:`\Phi_0`
    (:math:`\Phi_0 - \mathrm{up}(\mathrm{down}(\Phi_0))`, zero for affine maps up to rounding); the increment form keeps
    every detail of :math:`\Phi_0` and gives :math:`\Phi = \Phi_0` **exactly** for :math:`m = 0`, so an optimisation
    that starts at zero momentum starts exactly at its initial map.

    ``initial_map_low``: :math:`\Phi_{0,low}` when the caller has it (:func:`initial_map_low`; an optimisation calls
    this step many times with one initial map, and its down-sampling on a 3 M-voxel grid is about 20 ms a call).

    Returns:
        ``(velocity, map, warped, low_spacing)``.
    """
    full_shape = tuple(initial_map.shape[2:])
    low_shape = tuple(momentum.shape[2:])
    low_spacing = scaled_spacing(spacing, full_shape, low_shape)
    velocity = warp.smoother(momentum, low_spacing)
    if initial_map_low is None:
        phi0_low = resample_map(initial_map, low_shape)
    elif tuple(initial_map_low.shape) != (*initial_map.shape[:2], *low_shape):
        raise ValueError(
            f"vsvf_increment_step: 'initial_map_low' must have shape {(*initial_map.shape[:2], *low_shape)} "
            f"(the initial map on the momentum grid), got {tuple(initial_map_low.shape)}."
        )
    else:
        phi0_low = initial_map_low
    map_low = warp.integrator(phi0_low, velocity)
    phi = initial_map + resample_map(map_low - phi0_low, full_shape)
    warped = warp_image(source.to(phi.dtype), phi, mode="bilinear", padding_mode="zeros")
    return velocity, phi, warped, low_spacing


def initial_map_low(initial_map: torch.Tensor, momentum_grid: Sequence[int]) -> torch.Tensor:
    r""":math:`\Phi_{0,low} = \mathrm{down}(\Phi_0)`, the initial map on the momentum grid, as
    :func:`vsvf_increment_step` computes it (detached: the initial map is a constant of the optimisation)."""
    return resample_map(initial_map.detach(), tuple(int(n) for n in momentum_grid))


def fold_count(phi: torch.Tensor) -> torch.Tensor:
    r"""Voxels with :math:`\det J \le 0` of a map ``(B, D, *S)`` per batch item, ``(B,)``
    (:func:`~monai_avsm.functional.jacobian_determinant`, :func:`~monai_avsm.functional.fold_mask`)."""
    return fold_mask(jacobian_determinant(phi)).flatten(1).sum(1)


@torch.no_grad()
def fold_backoff(
    warp,
    momentum: torch.Tensor,
    initial_map: torch.Tensor,
    source: torch.Tensor,
    spacing: Sequence[float],
    enabled: bool = True,
    factor: float = 0.8,
    max_steps: int = 10,
    initial_folds: torch.Tensor | None = None,
) -> dict:
    r"""The fold safeguard of the per-pair vSVF optimisations (``deformable_opt``, ``refine``; a project addition).

    While the map :math:`\Phi(s\,m)` of :func:`vsvf_increment_step` has, for some pair, more voxels with
    :math:`\det J \le 0` (:func:`~monai_avsm.functional.jacobian_determinant`) than ``initial_map`` has, the
    momentum scale :math:`s` (from 1) is multiplied by ``factor``, at most ``max_steps`` times (``enabled=False``:
    :math:`s = 1`).
    A smaller momentum gives a smaller, smoother velocity and the RK4 map of a smaller field folds less.

    ``initial_folds``: :func:`fold_count` of ``initial_map`` when the caller has it already.

    Returns:
        ``{"momentum": s m, "velocity", "map", "warped", "low_spacing", "folds" (B,), "initial_folds" (B,),
        "scale": s, "steps"}``.
    """
    if initial_folds is None:
        initial_folds = fold_count(initial_map)
    scale, steps = 1.0, 0
    while True:
        scaled = momentum * scale
        velocity, phi, warped, low_spacing = vsvf_increment_step(warp, scaled, initial_map, source, spacing)
        folds = fold_count(phi)
        if not enabled or bool((folds <= initial_folds).all()) or steps >= max_steps:
            break
        scale *= factor
        steps += 1
    return {"momentum": scaled, "velocity": velocity, "map": phi, "warped": warped, "low_spacing": low_spacing,
            "folds": folds, "initial_folds": initial_folds, "scale": scale, "steps": steps}  # fmt: skip


class BestIterate:
    """Keep, per batch item, the state with the lowest objective seen (non-finite values never win).

    The batch items are independent problems (the objective is a sum of per-item terms), so the best item-wise
    state is a valid state. ``update(values (B,), state)``: every tensor of ``state`` has the batch first.
    """

    def __init__(self) -> None:
        self.values: torch.Tensor | None = None
        self.state: dict[str, torch.Tensor] = {}

    def update(self, values: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        values = values.detach()
        values = torch.where(torch.isfinite(values), values, torch.full_like(values, math.inf))
        if self.values is None:
            self.values = values.clone()
            self.state = {k: v.detach().clone() for k, v in state.items()}
            return
        better = values < self.values
        if not bool(better.any()):
            return
        for k, v in state.items():
            mask = better.reshape(-1, *([1] * (v.ndim - 1)))
            self.state[k] = torch.where(mask, v.detach(), self.state[k])
        self.values = torch.where(better, values, self.values)


class EarlyStopping:
    r"""Stop when :math:`|L_{k-1} - L_k| \le \mathrm{tol} \cdot |L_{k-1}|` for ``patience`` consecutive iterations
    (``patience=0`` or ``tolerance=0`` with changing losses never stop)."""

    def __init__(self, tolerance: float, patience: int, caller: str) -> None:
        if not tolerance >= 0 or not math.isfinite(tolerance):
            raise ValueError(f"{caller}: 'tolerance' must be a finite number >= 0, got {tolerance}.")
        if isinstance(patience, bool) or int(patience) != patience or patience < 0:
            raise ValueError(f"{caller}: 'patience' must be an integer >= 0, got {patience}.")
        self.tolerance, self.patience = float(tolerance), int(patience)
        self.reset()

    def reset(self) -> None:
        self.previous: float | None = None
        self.count = 0

    def __call__(self, loss: float) -> bool:
        if self.previous is not None and abs(self.previous - loss) <= self.tolerance * max(abs(self.previous), 1e-12):
            self.count += 1
        else:
            self.count = 0
        self.previous = loss
        return self.patience > 0 and self.count >= self.patience


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed torch's generators inside the block (``None``: no change) without touching the caller's RNG state."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def spacing_for(spacing, ndim: int, caller: str) -> tuple[float, ...]:
    """:func:`~monai_avsm.utils.validation.ensure_spacing` (``None`` -> 1 per axis)."""
    return ensure_spacing(spacing, ndim, caller)
