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
r"""Deformable (vSVF) optimisation at the fixed image's own grid, coarse to fine, with anatomy presets.

:func:`deformable_opt` is the paper's vSVF-opt (§2.2, eq. 7-9; method spec §8) made for native-resolution use after an
affine (or a network's) registration: the momentum at half the resolution of each level, the multi-Gaussian smoother
and the RK4 map advection of :class:`~monai_avsm.networks.blocks.VSVFWarp`, the :math:`\langle m, v \rangle`
regulariser, with per-level settings (smoother sigmas in millimetres, mk-LNCC windows, weights, iterations, step
sizes) held by a named :class:`DeformablePreset`, a fold safeguard, stopping on relative change and a wall-time
budget. The coarse-to-fine loop is :func:`~monai_avsm.optimization.utils.run_pyramid`, shared with
:func:`~monai_avsm.optimization.affine_opt`, :func:`~monai_avsm.optimization.vsvf_opt` and
:func:`~monai_avsm.optimization.refine`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from monai_avsm.functional.finite_differences import central_difference_transpose
from monai_avsm.functional.jacobian import jacobian_matrix, matrix_cofactors, matrix_determinant
from monai_avsm.functional.maps import identity_map, resample_map, warp_image
from monai_avsm.losses.mk_lncc import MKLNCCLoss
from monai_avsm.losses.utils import masked_similarity
from monai_avsm.losses.vsvf import MomentumRegularizationLoss
from monai_avsm.networks.blocks.vsvf_warp import VSVFWarp
from monai_avsm.optimization.adam import Adam
from monai_avsm.optimization.utils import (
    BestIterate,
    EarlyStopping,
    PyramidLevel,
    batched_field,
    check_pair,
    fold_backoff,
    initial_map_low,
    momentum_shape,
    per_sample_similarity,
    run_pyramid,
    scale_shape,
    seeded,
    spacing_for,
    vsvf_increment_step,
)
from monai_avsm.optimization.vsvf import optimize_momentum
from monai_avsm.utils.enums import BoundaryMode, KernelNormalization
from monai_avsm.utils.progress import Progress
from monai_avsm.utils.validation import check_binary_mask, check_map

__all__ = ["DeformablePreset", "PRESETS", "deformable_opt", "fold_penalty", "level_shapes", "GlobalMISimilarity"]


@dataclasses.dataclass(frozen=True)
class DeformablePreset:
    r"""Per-level settings of :func:`deformable_opt`, one entry per pyramid level, coarse to fine.

    When ``deformable_opt`` runs fewer levels than a preset has entries, the *finest* entries are used (a preset of
    three levels run with ``levels=(0.5, 1.0)`` uses its last two entries).

    Attributes:
        sigmas_mm: per level, the standard deviations of the multi-Gaussian kernel :math:`K` (paper eq. 8) in
            millimetres (converted to the smoother's unit, the longest physical side of the fixed grid).
        sigma_weights: per level, the kernel weights (normalised to sum 1).
        lncc_windows: per level, the cubic mk-LNCC windows (paper eq. 2-3) in voxels *of that level*, stride 1,
            dilation 1; sizes larger than the level's grid are clipped to it.
        lncc_weights: per level, the windows' weights (sum 1).
        lncc_strides: per level, the windows' stride (the windows still overlap; stride 2 costs about a tenth of
            stride 1 at 128x149x128).
        momentum_reg_weight: per level, :math:`\lambda_{vr}` of :math:`\lambda_{vr} \langle m, K \star m \rangle`
            (eq. 9; the integral over the unit domain of :class:`~monai_avsm.losses.MomentumRegularizationLoss`).
        fold_weight: per level, :math:`\lambda_J` of the fold penalty :func:`fold_penalty` on the level's map
            :math:`\Phi` (on the level's image grid: a penalty on the coarser momentum grid misses the folds that the
            linear up-sampling of a strongly compressed cell creates).
        fold_strides: per level, the penalty is evaluated on every ``s``-th voxel of the level's map (central
            differences over :math:`2 s` voxels), to save time on fine grids.
        fold_threshold: :math:`\tau` of :func:`fold_penalty` (the penalty acts where :math:`\det J < \tau`).
        iterations: per level, the most optimiser iterations.
        lr: per level, the Adam step (momentum in normalised map units per unit time) or the L-BFGS step scale.
        time_steps: RK4 steps of the map advection (eq. 7).
        tolerance, patience: stop a level when the relative loss change is ``<= tolerance`` for ``patience``
            consecutive iterations.
        work: per level, ``None`` or the least work :math:`W_k` of the level in voxel-iterations: a level of
            :math:`n_k` voxels runs :math:`\min(\max(i_k, \lceil W_k / n_k \rceil), i_{max})` iterations
            (:meth:`level_iterations`), so that an image on a coarse grid (e.g. 4 mm), whose iterations are cheap, gets
            as much optimisation at that level as a 1.5 mm image (a level of 0 iterations stays skipped); ``None``
            for all levels by default.
        max_iterations: :math:`i_{max}`, the most iterations that ``work`` may ask for.
    """

    sigmas_mm: tuple[tuple[float, ...], ...]
    sigma_weights: tuple[tuple[float, ...], ...]
    lncc_windows: tuple[tuple[int, ...], ...]
    lncc_weights: tuple[tuple[float, ...], ...]
    lncc_strides: tuple[int, ...]
    momentum_reg_weight: tuple[float, ...]
    fold_weight: tuple[float, ...]
    fold_strides: tuple[int, ...]
    iterations: tuple[int, ...]
    lr: tuple[float, ...]
    fold_threshold: float = 0.1
    time_steps: int = 5
    tolerance: float = 1e-4
    patience: int = 5
    work: tuple[float | None, ...] | None = None
    max_iterations: int = 60

    def num_levels(self) -> int:
        return len(self.iterations)

    def level_iterations(self, shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
        """The iterations of every level on the grids ``shapes`` (one per level), by ``iterations`` and ``work``."""
        out = []
        for k, shape in enumerate(shapes):
            its = int(self.iterations[k])
            budget = None if self.work is None else self.work[k]
            if budget is not None and its > 0:  # a level of 0 iterations stays skipped
                its = max(its, min(int(self.max_iterations), math.ceil(float(budget) / math.prod(shape))))
            out.append(its)
        return tuple(out)

    def check(self, caller: str) -> DeformablePreset:
        """Check the lengths and values; return ``self``."""
        n = self.num_levels()
        for name in ("sigmas_mm", "sigma_weights", "lncc_windows", "lncc_weights", "lncc_strides",
                     "momentum_reg_weight", "fold_weight", "fold_strides", "lr"):  # fmt: skip
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{caller}: preset field {name!r} needs one entry per level ({n}), got {getattr(self, name)!r}."
                )
        for k in range(n):
            if len(self.sigmas_mm[k]) != len(self.sigma_weights[k]) or any(s <= 0 for s in self.sigmas_mm[k]):
                raise ValueError(f"{caller}: preset level {k}: 'sigmas_mm' must be > 0, one weight each.")
            if len(self.lncc_windows[k]) != len(self.lncc_weights[k]) or any(w < 2 for w in self.lncc_windows[k]):
                raise ValueError(f"{caller}: preset level {k}: 'lncc_windows' must be >= 2, one weight each.")
        if any(int(x) != x or x < 1 for x in self.lncc_strides + self.fold_strides):
            raise ValueError(
                f"{caller}: preset strides must be integers >= 1, got {self.lncc_strides} and {self.fold_strides}."
            )
        if any(w < 0 for w in self.momentum_reg_weight + self.fold_weight) or any(not lr > 0 for lr in self.lr):
            raise ValueError(f"{caller}: preset weights must be >= 0 and 'lr' > 0, got {self!r}.")
        if any(isinstance(i, bool) or int(i) != i or i < 0 for i in self.iterations):
            raise ValueError(f"{caller}: preset 'iterations' must be integers >= 0, got {self.iterations}.")
        if self.work is not None and (
            len(self.work) != n or any(w is not None and not float(w) > 0 for w in self.work)
        ):
            raise ValueError(f"{caller}: preset 'work' must be None or one value > 0 (or None) per level ({n}).")
        if isinstance(self.max_iterations, bool) or int(self.max_iterations) != self.max_iterations:
            raise ValueError(f"{caller}: preset 'max_iterations' must be an integer, got {self.max_iterations}.")
        if int(self.time_steps) != self.time_steps or self.time_steps < 1:
            raise ValueError(f"{caller}: preset 'time_steps' must be an integer >= 1, got {self.time_steps}.")
        return self

    def finest(self, n: int, caller: str) -> DeformablePreset:
        """The preset restricted to its ``n`` finest levels."""
        if n > self.num_levels():
            raise ValueError(
                f"{caller}: {n} levels were asked for but the preset has {self.num_levels()}; pass a preset "
                f"(DeformablePreset or a dict of fields) with one entry per level."
            )
        fields = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            fields[f.name] = value[self.num_levels() - n :] if isinstance(value, tuple) else value
        return DeformablePreset(**fields)


#: named presets of :func:`deformable_opt` (see its docstring for how they were chosen)
PRESETS: dict[str, DeformablePreset] = {
    "brain": DeformablePreset(
        sigmas_mm=((8.0, 16.0, 32.0), (4.0, 8.0, 16.0, 32.0), (3.0, 6.0, 12.0, 24.0)),
        sigma_weights=((1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 2.0), (1.0, 1.0, 1.0, 2.0)),
        lncc_windows=((5, 9), (5, 9), (5, 9)),
        lncc_weights=((0.5, 0.5), (0.5, 0.5), (0.5, 0.5)),
        lncc_strides=(1, 2, 2),
        momentum_reg_weight=(30.0, 30.0, 30.0),
        fold_weight=(100.0, 100.0, 100.0),
        fold_strides=(1, 1, 2),
        iterations=(60, 60, 12),
        lr=(8e-3, 4e-3, 4e-3),
        fold_threshold=0.2,
        time_steps=5,
        tolerance=1e-3,
        work=(None, None, 12 * 3.0e6),
        max_iterations=60,
    ),
}


class _FoldPenalty(torch.autograd.Function):
    r""":func:`fold_penalty` with a hand-written backward that costs nothing where no voxel is below the threshold.

    Forward: :math:`J` by :func:`~monai_avsm.functional.jacobian_matrix`, :math:`\det J` by
    :func:`~monai_avsm.functional.matrix_determinant` (the same operations as
    :func:`~monai_avsm.functional.jacobian_determinant`, so the same values). Backward, with
    :math:`r = \max(\tau - \det J, 0)` and :math:`n` voxels: :math:`\partial P / \partial J_{ij} = -2 r\, C_{ij} / n`
    (:func:`~monai_avsm.functional.matrix_cofactors`), and :math:`\nabla_{\phi_i} = \sum_j D_j^T (\partial P /
    \partial J_{ij})` with :math:`D_j^T` the transposed central difference
    (:func:`~monai_avsm.functional.finite_differences.central_difference_transpose`). In an optimisation the map is
    almost always above the threshold everywhere: the backward then returns no gradient at all (autograd's zero),
    instead of back-propagating zeros through some thirty full-size operations and the strided slice of the caller
    (``docs/benchmarks.md``, "A fold penalty that skips its backward").
    """

    @staticmethod
    def forward(ctx, phi: torch.Tensor, threshold: float) -> torch.Tensor:  # type: ignore[override]
        h = [2.0 / (n - 1) for n in phi.shape[2:]]
        jac = jacobian_matrix(phi.detach(), h)
        r = (threshold - matrix_determinant(jac)).clamp_min_(0.0)  # (B, 1, *S)
        ctx.h, ctx.shape = h, tuple(phi.shape)
        active = bool((r > 0).any())
        ctx.active = active
        if active:
            ctx.save_for_backward(jac, r)
        return r.pow(2).flatten(1).mean(1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        if not ctx.active or not ctx.needs_input_grad[0]:
            return None, None
        jac, r = ctx.saved_tensors
        ndim = len(ctx.h)
        n = math.prod(ctx.shape[2:])
        w = r * (grad.reshape(-1, *([1] * (ndim + 1))) * (-2.0 / n))  # dP/d det, (B, 1, *S)
        g_jac = matrix_cofactors(jac) * w.unsqueeze(1)  # dP/dJ_ij, (B, D, D, *S)
        out = torch.zeros(ctx.shape, dtype=jac.dtype, device=jac.device)
        for j in range(ndim):
            out.add_(central_difference_transpose(g_jac[:, :, j], dim=j + 2, spacing=ctx.h[j]))
        return out, None


def fold_penalty(phi: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    r"""Per-sample fold penalty of a map, :math:`\frac{1}{|\Omega|} \sum_x \max(\tau - \det J_\phi(x), 0)^2`.

    Zero where the map is locally invertible with margin (:math:`\det J \ge \tau`), growing quadratically towards and
    beyond folds (:math:`\det J \le 0`). :math:`\det J` is :func:`~monai_avsm.functional.jacobian_determinant`
    (central differences), differentiable in ``phi`` (once; a hand-written backward, :class:`_FoldPenalty`).

    Args:
        phi: ``(B, D, *S)`` map, ``MapSpace.NORMALIZED``.
        threshold: :math:`\tau \ge 0`.

    Returns:
        ``(B,)``.
    """
    if not threshold >= 0:
        raise ValueError(f"fold_penalty: 'threshold' must be >= 0, got {threshold}.")
    check_map(phi, "phi", "fold_penalty")
    return _FoldPenalty.apply(phi, float(threshold))


def level_shapes(
    spatial_shape: Sequence[int],
    spacing: Sequence[float],
    levels: Sequence[float],
    max_finest_spacing_mm: float | None = None,
    max_voxels: int | None = None,
) -> list[tuple[int, ...]]:
    r"""The grid of every pyramid level: :func:`~monai_avsm.optimization.utils.scale_shape` of each factor, then no
    finer than ``max_finest_spacing_mm`` per axis (:math:`n_a \le \mathrm{round}((N_a - 1) s_a / c) + 1`) and with at
    most ``max_voxels`` voxels (every axis shrunk by the same factor)."""
    full = tuple(int(n) for n in spatial_shape)
    out = []
    for scale in levels:
        shape = list(scale_shape(full, scale))
        if max_finest_spacing_mm is not None:
            shape = [min(n, max(4, int(round((N - 1) * s / max_finest_spacing_mm)) + 1))
                     for n, N, s in zip(shape, full, spacing)]  # fmt: skip
        if max_voxels is not None and math.prod(shape) > max_voxels:
            f = (max_voxels / math.prod(shape)) ** (1.0 / len(shape))
            shape = [max(4, int(math.floor(n * f))) for n in shape]
        out.append(tuple(shape))
    return out


class GlobalMISimilarity(nn.Module):
    r"""Global mutual information for :func:`deformable_opt` (``similarity="mi"``): MONAI's
    ``GlobalMutualInformationLoss`` (Gaussian Parzen windows) on intensities rescaled to :math:`[0, 1]` by fixed
    ranges, on at most ``max_samples`` voxels per sample (every :math:`\lceil n / \text{max} \rceil`-th), optionally
    only inside a fixed-image mask. Returns :math:`-\mathrm{MI}` per sample ``(B,)``.

    Args:
        moving_range, fixed_range: ``(low, high)`` intensity ranges mapped to ``[0, 1]`` (values outside are clamped
            by MONAI's Parzen window).
        num_bins: Parzen bins.
        max_samples: most voxels per sample.
    """

    def __init__(
        self,
        moving_range: tuple[float, float],
        fixed_range: tuple[float, float],
        num_bins: int = 32,
        max_samples: int = 200_000,
    ) -> None:
        super().__init__()
        self.moving_range, self.fixed_range = moving_range, fixed_range
        self.max_samples = int(max_samples)
        from monai.losses import GlobalMutualInformationLoss  # MONAI imported only when MI is asked for

        self.mi = GlobalMutualInformationLoss(num_bins=num_bins, reduction="none")

    @staticmethod
    def _rescale(x: torch.Tensor, rng: tuple[float, float]) -> torch.Tensor:
        return (x - rng[0]) / max(rng[1] - rng[0], 1e-12)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        p = self._rescale(pred, self.moving_range).flatten(1)
        t = self._rescale(target, self.fixed_range).flatten(1)
        if mask is None:
            step = max(1, math.ceil(p.shape[1] / self.max_samples))
            return self.mi(p[:, ::step], t[:, ::step])
        m = mask.expand(pred.shape[0], *pred.shape[1:]).flatten(1).bool()
        values = []
        for b in range(p.shape[0]):
            pb, tb = p[b][m[b]], t[b][m[b]]
            step = max(1, math.ceil(pb.numel() / self.max_samples))
            values.append(self.mi(pb[None, ::step], tb[None, ::step]))
        return torch.cat(values)


def _unit_range(x: torch.Tensor) -> torch.Tensor:
    """``(x - min) / (max - min)`` per sample (a constant image becomes 0)."""
    flat = x.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    shape = (-1,) + (1,) * (x.ndim - 1)
    return (x - lo.reshape(shape)) / scale.reshape(shape)


def _resolve_preset(preset, caller: str) -> DeformablePreset:
    if isinstance(preset, DeformablePreset):
        return preset.check(caller)
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ValueError(f"{caller}: unknown preset {preset!r}; available: {sorted(PRESETS)}.")
        return PRESETS[preset].check(caller)
    if isinstance(preset, Mapping):
        fields = dict(preset)
        base = PRESETS[fields.pop("base", "brain")]
        names = {f.name for f in dataclasses.fields(DeformablePreset)}
        unknown = set(fields) - names
        if unknown:
            raise ValueError(f"{caller}: unknown preset fields {sorted(unknown)}; fields: {sorted(names)}.")
        fields = {k: tuple(tuple(x) if isinstance(x, (list, tuple)) else x for x in v) if isinstance(v, (list, tuple))
                  else v for k, v in fields.items()}  # fmt: skip
        return dataclasses.replace(base, **fields).check(caller)
    raise TypeError(f"{caller}: 'preset' must be a name, a DeformablePreset or a dict, got {type(preset).__name__}.")


def deformable_opt(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    initial_map: torch.Tensor | None = None,
    spacing: Sequence[float] | torch.Tensor | None = None,
    preset: str | DeformablePreset | Mapping = "brain",
    levels: Sequence[float] = (0.25, 0.5, 1.0),
    max_finest_spacing_mm: float | None = None,
    max_voxels: int | None = None,
    optimizer: str = "adam",
    similarity: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "lncc",
    initial_momentum: torch.Tensor | None = None,
    max_seconds: float | None = None,
    mask: torch.Tensor | None = None,
    fold_safeguard: bool = True,
    progress: bool = False,
    seed: int | None = None,
    check_initial_map: bool = False,
) -> dict:
    r"""Deformable vSVF optimisation of a pair on the fixed image's grid, coarse to fine (levels 1/4, 1/2, 1).

    For every level :math:`k` (images sampled on the level's grid :math:`S_k`, the momentum on the half-resolution
    grid :math:`\lceil S_k / 2 \rceil`), starting from the previous level's momentum (linearly up-sampled; the
    multi-Gaussian kernel has unit sum on every grid, so the same momentum gives the same velocity) and from
    ``initial_map`` :math:`\Phi_0` (e.g. a network's map; the identity when ``moving`` is already affinely aligned):

    .. math::
        \min_{m}\ \mathrm{Sim}_k\big(I_0 \circ \Phi(m), I_1\big) + \lambda_{vr,k} \langle m, v \rangle
        + \lambda_{J,k}\, \frac{1}{|\Omega|} \sum_x \max\big(\tau - \det J_{\Phi}(x), 0\big)^2

    with :math:`v = K_k \star m` (eq. 8, the multi-Gaussian kernel of the level's sigmas),
    :math:`\partial_t \Phi_{low} + D\Phi_{low} v = 0`, :math:`\Phi_{low}(0) = \mathrm{down}(\Phi_0)` (eq. 7, RK4) and
    :math:`\Phi = \Phi_0 + \mathrm{up}(\Phi_{low}(1) - \Phi_{low}(0))` (the increment form of
    :func:`~monai_avsm.optimization.utils.vsvf_increment_step`: zero momentum is exactly :math:`\Phi_0`);
    :math:`\langle m, v \rangle` is eq. 9. The last term (:func:`fold_penalty`) is a project addition.

    Optimiser: ``"adam"`` (default; one similarity evaluation per iteration, as FireANTs) or ``"lbfgs"``
    (:func:`~monai_avsm.optimization.vsvf.optimize_momentum`: history 5, strong-Wolfe line search bounded to 5
    evaluations; the fold penalty is not part of its objective, the safeguard still applies). A
    level stops after its iterations, when the relative loss change is ``<= tolerance`` for ``patience`` iterations,
    or when ``max_seconds`` has passed (later levels are then skipped). The best evaluated momentum of each level is
    kept.

    Intensities are first mapped to :math:`[0, 1]` per image (min-max): mk-LNCC and MI do not change, and float32
    window sums of images with values in the hundreds lose the precision that flat background windows need (their
    :math:`\mathrm{ncc}^2` then explodes). ``"warped"`` is the original ``moving`` warped.

    Fold safeguard (``fold_safeguard=True``): after the optimisation, while the full-resolution map has more voxels
    with :math:`\det J \le 0` than ``initial_map`` has, the momentum is scaled by 0.8 (at most 10 times); the factor
    used is returned.

    Presets (:data:`PRESETS`, :class:`DeformablePreset`). ``"brain"``, for skull-stripped T1 brains at 1 to 2 mm:

    ======== ======================= ======== ======== ===== ========== ==========================
    level    sigmas (mm), weights    windows  lambda   Adam  iterations fold penalty
                                     stride   vr       step             lambda_J, tau
    ======== ======================= ======== ======== ===== ========== ==========================
    1/4      8, 16, 32 (1:1:1)       5, 9 s1  30       8e-3  60         100, 0.2
    1/2      4, 8, 16, 32 (1:1:1:2)  5, 9 s2  30       4e-3  60         100, 0.2
    1        3, 6, 12, 24 (1:1:1:2)  5, 9 s2  30       4e-3  12 (*)     100, 0.2 (every 2nd voxel)
    ======== ======================= ======== ======== ===== ========== ==========================

    (*) at least :math:`3.6 \cdot 10^7` voxel-iterations (``work``), at most 60 iterations: 12 on a 3 M-voxel
    1.2-1.5 mm brain grid, 60 on a 2 mm or 4 mm one (whose iterations cost a tenth or less).

    with 5 RK4 steps and stopping at a relative change ``<= 1e-3`` for 5 iterations (an early stop that acts as a
    regulariser: chosen on the scanner-space sets of seeds 1 and 2 against ``1e-4``, ``3e-4`` and ``5e-4``, it lowered
    the end-point error of their known pairs from 1.07x ANTs SyN-CC's to 0.94x and 0.96x, kept their Dice across
    templates above SyN-CC's, +0.002 and +0.003, and halved the optimisation's time on the known pairs;
    ``docs/benchmarks.md``, "An earlier stop"). The starting point was the
    trial reported in issue 14 (mk-LNCC windows 5 and 9 at stride 1, small sigmas, :math:`\lambda_{vr} = 1`; the
    paper's windows :math:`S/4, S/2` were made for knees at 192x192x80 and its sigmas 0.05 to 0.25 of the domain,
    11 to 55 mm for a 222 mm brain grid, over-smooth the cortex); the fold penalty on the level's map, its weight and
    the strides come from a few runs on the 1.5 mm pairs of ``benchmarks/bench_deformable.py`` (folds at the
    full-resolution map with the penalty on the momentum grid; windows at stride 2 cost a tenth of stride 1 at
    128x149x128). The sigmas, kernel weights, :math:`\lambda_{vr}` and the finest level's iterations and step were
    then chosen on the scanner-space set (seed 0) by the end-point error of its known-deformation pairs and the Dice
    of its cross-template pairs (``docs/benchmarks.md``, "Regularisation of the brain preset"): the earlier settings
    (sigmas 1.5 to 16 mm, :math:`\lambda_{vr} = 1`, 8 finest iterations) fitted noise and bias (more iterations or a
    weaker regulariser *raised* the end-point error, 0.87 mm against ANTs SyN-CC's 0.39 mm); 30 times the regulariser
    with a 24 to 32 mm component in the kernel gave 0.39 mm and higher Dice in the same time. A few dozen measured
    settings, not a tuned optimum; the smooth known deformations of that set favour smooth kernels, so they were
    checked on a second set (seed 1) that was not used to choose them.

    Inverse: :math:`\Phi = \Phi_0 \circ \psi^{v}_{-1}` (up to the interpolation of the increment), so
    :math:`\Phi^{-1} = \psi^{-v}_{-1} \circ \Phi_0^{-1}`: keep ``"velocities"`` and ``"integrator"`` and the
    inverse of ``initial_map``; ``monai_avsm.functional.invert_velocities(out["velocities"], out["integrator"], S)``
    is :math:`\psi^{-v}_{-1}` on the grid ``S`` (for an affine :math:`\Phi_0` compose it with its inverse by
    :func:`~monai_avsm.functional.inverse.compose_with_affine`).

    Args:
        moving: source image :math:`I_0` ``(B, C, *S)`` on the fixed grid (e.g. resampled by an initial affine).
        fixed: target image :math:`I_1` ``(B, C, *S)``.
        initial_map: ``(B or 1, D, *S)`` pull-back map to start from (default: the identity).
        spacing: voxel spacing of ``S`` in mm (default 1 mm); the presets' sigmas are in mm.
        preset: a name in :data:`PRESETS`, a :class:`DeformablePreset`, or a dict of fields overriding a named one
            (``{"base": "brain", "iterations": (80, 40, 0)}``).
        levels: pyramid factors in ``(0, 1]``, coarse to fine (at most as many as the preset has levels).
        max_finest_spacing_mm: no level finer than this spacing (e.g. 1.0 for sub-millimetre scans).
        max_voxels: no level with more voxels (a memory budget).
        optimizer: ``"adam"`` or ``"lbfgs"``.
        similarity: ``"lncc"`` (mk-LNCC with the preset's windows), ``"mi"`` (:class:`GlobalMISimilarity`, for other
            contrasts or modalities) or a callable ``(warped, fixed) -> scalar or (B,)`` used at every level (with a
            ``mask`` it must accept ``mask=``).
        initial_momentum: ``(B or 1, D, *s)`` warm start on any grid (default zero).
        max_seconds: wall-time budget of the optimisation; the final assembly (one full-resolution evaluation and the
            fold check) comes on top.
        mask: binary fixed-image mask ``(B or 1, 1, *S)`` restricting the similarity.
        fold_safeguard: apply the momentum back-off above.
        progress: progress bar or log lines.
        seed: seed of torch's generators during the call (the algorithm draws no random numbers).
        check_initial_map: keep ``initial_map`` only for the samples where it scores better than the identity by
            the finest level's similarity at full resolution (so a poor warm start, e.g. a network's map on an image
            unlike its training data, never makes the result start worse); ``initial_map_used`` in the result says
            which samples kept it.

    Returns:
        dict with ``"map"`` ``(B, D, *S)`` (pull-back, normalised, fixed grid), ``"warped"`` ``(B, C, *S)``,
        ``"momentum"`` and ``"velocity"`` (on the finest level's momentum grid), ``"velocities"`` (``[velocity]``),
        ``"integrator"`` (the RK4 :class:`~monai_avsm.networks.blocks.MapAdvection`), ``"initial_map"``, ``"loss"``
        ``(B,)`` (the finest level's objective at the result), ``"folds"`` ``(B,)`` (voxels with
        :math:`\det J \le 0`), ``"momentum_scale"``, ``"levels"`` (per level: ``scale``, ``shape``,
        ``momentum_shape``, ``iterations``, ``seconds``, ``loss`` (start, end), ``stopped``), ``"history"``,
        ``"iterations"``, ``"preset"`` and ``"seconds"``. Outputs are detached.

    Raises:
        ValueError: shapes that differ, NaN/Inf inputs, bad levels, unknown preset/optimizer/similarity, a bad mask.
        TypeError: non-tensor or non-floating inputs, a preset of the wrong type.
    """
    caller = "deformable_opt"
    start_time = time.perf_counter()
    ndim = check_pair(moving, fixed, caller)
    sp = spacing_for(spacing, ndim, caller)
    try:
        levels = tuple(float(s) for s in levels)
    except TypeError as err:
        raise TypeError(f"{caller}: 'levels' must be a sequence of numbers, got {levels!r}.") from err
    if not levels or any(not 0 < s <= 1 for s in levels) or any(a > b for a, b in zip(levels, levels[1:])):
        raise ValueError(f"{caller}: 'levels' must be numbers in (0, 1], coarse to fine, got {levels}.")
    cfg = _resolve_preset(preset, caller).finest(len(levels), caller)
    optimizer = str(optimizer).lower()
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"{caller}: 'optimizer' must be 'adam' or 'lbfgs', got {optimizer!r}.")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"{caller}: 'max_seconds' must be > 0 or None, got {max_seconds}.")
    if max_finest_spacing_mm is not None and not max_finest_spacing_mm > 0:
        raise ValueError(f"{caller}: 'max_finest_spacing_mm' must be > 0 or None, got {max_finest_spacing_mm}.")
    if max_voxels is not None and not (int(max_voxels) == max_voxels and max_voxels >= 4**ndim):
        raise ValueError(f"{caller}: 'max_voxels' must be an integer >= {4**ndim} or None, got {max_voxels}.")
    if mask is not None:
        mask = check_binary_mask(mask, fixed, "mask", caller)
    if isinstance(similarity, str):
        if similarity not in ("lncc", "mi"):
            raise ValueError(f"{caller}: 'similarity' must be 'lncc', 'mi' or a callable, got {similarity!r}.")
    elif not callable(similarity):
        raise TypeError(f"{caller}: 'similarity' must be 'lncc', 'mi' or a callable, got {type(similarity).__name__}.")
    deadline = None if max_seconds is None else start_time + float(max_seconds)

    batch, full_shape = moving.shape[0], tuple(moving.shape[2:])
    dtype = torch.promote_types(moving.dtype, torch.float32)
    device = moving.device
    if initial_map is None:
        phi_init = identity_map(full_shape, dtype=dtype, device=device).expand(batch, ndim, *full_shape)
    else:
        phi_init = batched_field(initial_map, "initial_map", batch, ndim, caller, full_shape).to(dtype).detach()
    momentum = None
    if initial_momentum is not None:
        momentum = batched_field(initial_momentum, "initial_momentum", batch, ndim, caller).to(dtype).detach()
    # intensities to [0, 1] (each image by its own range): mk-LNCC and MI are invariant to it, and the window sums
    # of float32 images with values in the hundreds lose the precision that flat (background) windows need
    moving_n, fixed_n = _unit_range(moving.detach().to(dtype)), _unit_range(fixed.detach().to(dtype))
    shapes = level_shapes(full_shape, sp, levels, max_finest_spacing_mm, max_voxels)
    extent = max((n - 1) * s for n, s in zip(full_shape, sp))  # the smoother's unit length (isotropic), in mm
    mi_sim = GlobalMISimilarity((0.0, 1.0), (0.0, 1.0)) if similarity == "mi" else None

    def level_similarity(k: int, shape: tuple[int, ...], level_mask: torch.Tensor | None):
        if similarity == "lncc":
            windows = [min(int(w), min(shape)) for w in cfg.lncc_windows[k]]
            sim = MKLNCCLoss(ndim, kernel_sizes=windows, kernel_weights=list(cfg.lncc_weights[k]),
                             strides=int(cfg.lncc_strides[k]), reduction="none")  # fmt: skip
        elif similarity == "mi":
            sim = mi_sim
        else:
            sim = similarity
        return masked_similarity(sim, level_mask, caller, "mask")

    def level_warp(k: int) -> VSVFWarp:
        sigmas = tuple(s / extent for s in cfg.sigmas_mm[k])
        return VSVFWarp(ndim, sigmas, cfg.sigma_weights[k], BoundaryMode.ZERO, KernelNormalization.ISOTROPIC,
                        cfg.time_steps)  # fmt: skip

    regularizers = [
        MomentumRegularizationLoss(w, normalization=KernelNormalization.ISOTROPIC, reduction="none")
        for w in cfg.momentum_reg_weight
    ]
    initial_map_used = torch.full((batch,), initial_map is not None, dtype=torch.bool, device=device)
    if initial_map is not None and check_initial_map:
        # a start that is worse than the identity (e.g. a network on an image unlike its training data) is dropped
        with torch.no_grad():
            sim_full = level_similarity(len(levels) - 1, full_shape, mask)
            start = per_sample_similarity(sim_full, warp_image(moving_n, phi_init), fixed_n, caller)
            none = per_sample_similarity(sim_full, moving_n, fixed_n, caller)
        initial_map_used = start < none
        ident = identity_map(full_shape, dtype=dtype, device=device).expand(batch, ndim, *full_shape)
        keep = initial_map_used.reshape(batch, *([1] * (ndim + 1)))
        phi_init = torch.where(keep, phi_init, ident)
    state: dict = {"momentum": momentum, "warp": level_warp(len(levels) - 1), "k": len(levels) - 1}
    records: list[dict] = [{} for _ in levels]
    stopper = EarlyStopping(cfg.tolerance, cfg.patience, caller)

    def objective(k, warp, sim, param, phi0, phi0_low, level):
        velocity, phi, warped, low_sp = vsvf_increment_step(warp, param, phi0, level.moving, level.spacing, phi0_low)
        values = per_sample_similarity(sim, warped, level.fixed, caller)
        values = values + regularizers[k](param, velocity, low_sp)
        if cfg.fold_weight[k] > 0:
            st = int(cfg.fold_strides[k])
            sub = phi if st == 1 else phi[(slice(None), slice(None)) + (slice(None, None, st),) * ndim]
            values = values + cfg.fold_weight[k] * fold_penalty(sub, cfg.fold_threshold)
        return values

    def step(level: PyramidLevel) -> tuple[list[float], int]:
        k = level.index
        warp, sim = level_warp(k), level_similarity(k, level.shape, level.mask)
        phi0 = resample_map(phi_init, level.shape)
        mshape = momentum_shape(level.shape)
        m0 = (
            resample_map(state["momentum"], mshape)
            if state["momentum"] is not None
            else torch.zeros(batch, ndim, *mshape, dtype=dtype, device=device)
        )
        bar = Progress(level.iterations, f"{caller} level {level.scale:g} {level.shape}", progress)
        stopper.reset()
        stopped = "iterations"
        if optimizer == "lbfgs":

            def lbfgs_sim(w, f):  # the fold penalty is not part of the L-BFGS objective
                return per_sample_similarity(sim, w, f, caller)

            best, losses, n_done = optimize_momentum(
                warp, regularizers[k], lbfgs_sim, m0, phi0, level.moving, level.fixed, level.spacing,
                level.iterations, cfg.lr[k], 5, 4, stopper, bar, caller,
            )  # fmt: skip
            best_m = best.state["momentum"]
        else:
            param = m0.detach().clone().requires_grad_(True)
            phi0_low = initial_map_low(phi0, mshape)  # constant over the level's iterations
            opt = Adam(param, lr=cfg.lr[k])
            best, losses, n_done = BestIterate(), [], 0
            for it in range(level.iterations + 1):  # the last pass only evaluates
                opt.zero_grad()
                values = objective(k, warp, sim, param, phi0, phi0_low, level)
                loss = values.mean()
                best.update(values, {"momentum": param})
                losses.append(float(loss.detach()))
                if not math.isfinite(losses[-1]):
                    stopped = "non-finite"
                    break
                if it == level.iterations:
                    break
                if stopper(losses[-1]):
                    stopped = "converged"
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    stopped = "time"
                    break
                loss.backward()
                opt.step()
                n_done = it + 1
                bar.update(it, losses[-1])
            bar.close(n_done, losses[-1])
            best_m = best.state["momentum"]
        state.update(momentum=best_m, warp=warp, k=k)
        records[k] = {"loss": (losses[0], losses[-1]), "stopped": stopped}
        return losses, n_done

    with seeded(seed, device):
        run = run_pyramid(moving_n, fixed_n, levels, cfg.level_iterations(shapes), step, spacing=sp, mask=mask,
                          shapes=shapes, deadline=deadline)  # fmt: skip
        warp, k = state["warp"], state["k"]
        if state["momentum"] is None:  # no level ran
            finest = momentum_shape(shapes[-1])
            state["momentum"] = torch.zeros(batch, ndim, *finest, dtype=dtype, device=device)
        m = state["momentum"]
        with torch.no_grad():
            mov, fix = moving_n, fixed_n
            safe = fold_backoff(warp, m, phi_init, mov, sp, enabled=fold_safeguard)
            mm, velocity, phi, warped = safe["momentum"], safe["velocity"], safe["map"], safe["warped"]
            folds, scale_used = safe["folds"], safe["scale"]
            sim = level_similarity(k, full_shape, mask)
            final = per_sample_similarity(sim, warped, fix, caller) + regularizers[k](mm, velocity, safe["low_spacing"])
            warped_out = warp_image(moving.detach().to(dtype), phi)
    level_records = []
    for j, (scale, shape) in enumerate(zip(levels, run["shapes"])):
        rec = {"scale": scale, "shape": tuple(shape), "momentum_shape": momentum_shape(shape),
               "iterations": run["iterations"][j], "seconds": run["seconds"][j],
               "loss": records[j].get("loss"), "stopped": records[j].get("stopped", "skipped")}  # fmt: skip
        level_records.append(rec)
    return {
        "map": phi.detach(),
        "warped": warped_out.to(moving.dtype),
        "momentum": mm.detach(),
        "velocity": velocity.detach(),
        "velocities": [velocity.detach()],
        "integrator": warp.integrator,
        "initial_map": phi_init,
        "initial_map_used": initial_map_used,
        "loss": final.detach(),
        "folds": folds,
        "momentum_scale": scale_used,
        "levels": level_records,
        "history": run["history"],
        "iterations": run["iterations"],
        "preset": cfg,
        "seconds": time.perf_counter() - start_time,
    }
