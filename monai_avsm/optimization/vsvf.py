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
r"""vSVF-opt: the vSVF momentum optimised per pair with L-BFGS, coarse to fine (method spec §8, paper Table 1)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch

from monai_avsm.functional.maps import identity_map, resample_map
from monai_avsm.losses.vsvf import MomentumRegularizationLoss
from monai_avsm.networks.blocks.vsvf_warp import VSVFWarp
from monai_avsm.optimization.utils import (
    BestIterate,
    EarlyStopping,
    PyramidLevel,
    Similarity,
    batched_field,
    check_pyramid_arguments,
    default_similarity,
    initial_map_low,
    momentum_shape,
    per_sample_similarity,
    run_pyramid,
    seeded,
    vsvf_increment_step,
)
from monai_avsm.utils.progress import Progress

__all__ = ["vsvf_opt", "optimize_momentum", "vsvf_warp_for", "check_lbfgs_settings"]


def check_lbfgs_settings(history_size: int, max_line_search: int, caller: str) -> None:
    """Check the L-BFGS settings of :func:`optimize_momentum`: integers ``>= 1``."""
    if isinstance(history_size, bool) or int(history_size) != history_size or history_size < 1:
        raise ValueError(f"{caller}: 'history_size' must be an integer >= 1, got {history_size}.")
    if isinstance(max_line_search, bool) or int(max_line_search) != max_line_search or max_line_search < 1:
        raise ValueError(f"{caller}: 'max_line_search' must be an integer >= 1, got {max_line_search}.")


def vsvf_warp_for(warp: VSVFWarp | None, ndim: int, caller: str) -> VSVFWarp:
    """``warp`` checked for ``ndim`` spatial dims, or, for ``None``, ``VSVFWarp(ndim)`` (``VSVFNet``'s defaults)."""
    if warp is None:
        return VSVFWarp(ndim)
    if not isinstance(warp, VSVFWarp) or warp.spatial_dims != ndim:
        raise ValueError(f"{caller}: 'warp' must be a VSVFWarp for {ndim} spatial dims, got {warp!r}.")
    return warp


def optimize_momentum(
    warp: VSVFWarp,
    regularizer: MomentumRegularizationLoss,
    similarity: Similarity,
    momentum: torch.Tensor,
    initial_map: torch.Tensor,
    moving: torch.Tensor,
    fixed: torch.Tensor,
    spacing: Sequence[float],
    iterations: int,
    lr: float,
    history_size: int,
    max_line_search: int,
    stopper: EarlyStopping,
    progress: Progress,
    caller: str,
) -> tuple[BestIterate, list[float], int]:
    r"""Minimise :math:`\mathrm{Sim}(I_0 \circ \Phi(m), I_1) + \lambda_{vr} \langle m, K \star m \rangle` over the
    momentum ``m`` on one grid with ``torch.optim.LBFGS`` (strong-Wolfe line search, one iteration per ``step``).

    :math:`\Phi(m)` is :func:`~monai_avsm.optimization.utils.vsvf_increment_step` from ``initial_map``. Every
    evaluated point (line-search trials included) is offered to the per-pair best-iterate tracker. The closure caches
    the last point, so the evaluation that ``LBFGS.step`` makes at its start costs nothing after a line search.

    Returns:
        ``(best, history, iterations)``: the tracker (state ``"momentum"``, ``"velocity"``, ``"map"``, ``"warped"``;
        values the per-pair objective), the batch-mean objective at the start and after every iteration, and the
        number of iterations run.
    """
    param = momentum.detach().clone().requires_grad_(True)
    # one iteration per step; max_eval bounds the line search (torch passes max_ls = max_eval - 1, and the default
    # max_eval = max_iter * 5 // 4 = 1 would leave the strong-Wolfe search a single trial step); stopping is ours
    optimizer = torch.optim.LBFGS(
        [param], lr=lr, max_iter=1, max_eval=1 + max_line_search, history_size=history_size,
        line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
    )  # fmt: skip
    best = BestIterate()
    cache: dict[str, torch.Tensor] = {}
    phi0_low = initial_map_low(initial_map, momentum.shape[2:])  # constant over the iterations

    def closure() -> torch.Tensor:
        if "x" in cache and torch.equal(cache["x"], param.detach()):
            param.grad = cache["grad"].clone()
            return cache["loss"]
        optimizer.zero_grad(set_to_none=True)
        velocity, phi, warped, low_spacing = vsvf_increment_step(warp, param, initial_map, moving, spacing, phi0_low)
        values = per_sample_similarity(similarity, warped, fixed, caller) + regularizer(param, velocity, low_spacing)
        best.update(values, {"momentum": param, "velocity": velocity, "map": phi, "warped": warped})
        loss = values.mean()
        loss.backward()
        cache.update(x=param.detach().clone(), grad=param.grad.detach().clone(), loss=loss.detach())
        return cache["loss"]

    history: list[float] = []
    stopper.reset()
    done = 0
    for it in range(iterations):
        loss = float(optimizer.step(closure))  # the objective at the start of this iteration
        history.append(loss)
        done = it + 1
        progress.update(it, loss)
        if not math.isfinite(loss) or stopper(loss):
            break
    with torch.enable_grad():
        history.append(float(closure()))  # the final point (cached when the line search ended there)
    progress.close(done, history[-1])
    return best, history, done


def vsvf_opt(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    initial_map: torch.Tensor | None = None,
    initial_momentum: torch.Tensor | None = None,
    scales: Sequence[float] = (0.25, 0.5, 1.0),
    iterations: Sequence[int] | int = (60, 60, 60),
    momentum_reg_weight: float = 10.0,
    warp: VSVFWarp | None = None,
    similarity: Similarity | None = None,
    spacing: Sequence[float] | torch.Tensor | None = None,
    lr: float | Sequence[float] = 1.0,
    history_size: int = 10,
    max_line_search: int = 20,
    tolerance: float = 1e-6,
    patience: int = 5,
    seed: int | None = None,
    progress: bool = True,
) -> dict:
    r"""vSVF-opt: optimise the initial momentum :math:`m_0` of a vSVF registration for every pair, coarse to fine.

    At each scale :math:`s` (images sampled on :math:`\mathrm{round}(s N)` voxels per axis, the initial map resampled
    to that grid with :func:`~monai_avsm.functional.resample_map`) the momentum lives on the half-resolution grid
    :math:`\lceil sN/2 \rceil` (as the network's, for :class:`~monai_avsm.networks.blocks.VSVFWarp`) and

    .. math::
        \min_{m_0}\ \mathrm{Sim}\big(I_0 \circ \Phi^{-1}(1), I_1\big) + \lambda_{vr} \langle m_0, v_0 \rangle,
        \qquad v_0 = K \star m_0,\quad \partial_t \Phi^{-1} + D\Phi^{-1} v_0 = 0,\quad
        \Phi^{-1}(0) = \Phi^{-1}_{init}

    is minimised with ``torch.optim.LBFGS`` (history ``history_size``, strong-Wolfe line search, one iteration per
    step, as mermaid's ``lbfgs_ls`` takes one iteration per call). The result is up-sampled linearly to the next
    scale's momentum grid: the multi-Gaussian kernel is normalised to unit sum on every grid, so the same momentum
    field gives the same velocity at every resolution, and :math:`\langle m, v \rangle` is an integral over the
    domain (:class:`~monai_avsm.losses.MomentumRegularizationLoss`). The smoother and the RK4 integrator are those of
    a :class:`~monai_avsm.networks.blocks.VSVFWarp` (``warp``; by default ``VSVFNet``'s); the map is assembled
    as a displacement increment on the initial map (:func:`~monai_avsm.optimization.utils.vsvf_increment_step`), so
    zero momentum returns the initial map exactly. Per pair, the best evaluated iterate of every scale is kept.

    Defaults follow the spec (§8) and ``VSVFNet``: scales ``(0.25, 0.5, 1.0)``, 60 iterations each,
    :math:`\lambda_{vr} = 10`, the paper's kernel, 10 RK4 steps; mk-LNCC with one window of half the smallest size at
    the coarse scales and the paper's rule at full scale. ``lr=1`` is L-BFGS's natural step (the line search adapts
    it). The authors' vSVF-opt used ``dopri5``; fixed-step RK4 keeps it identical to the network's integrator.

    Args:
        moving, fixed: ``(B, C, *S)``, 2D or 3D.
        initial_map: ``(B or 1, D, *S)`` pull-back map to start from, e.g. ``affine_opt(...)["map"]`` (default: the
            identity).
        initial_momentum: ``(B or 1, D, *s)`` on any grid (resampled to each momentum grid); default zero.
        scales, iterations: the pyramid, coarse to fine, and L-BFGS iterations per scale (0 skips a scale).
        momentum_reg_weight: :math:`\lambda_{vr}`.
        warp: the :class:`~monai_avsm.networks.blocks.VSVFWarp` whose smoother and integrator to use (its settings
            are stated once, there: e.g. ``VSVFWarp(3, num_steps=20)``, or a network's ``net.vsvf_net.warp``);
            default ``VSVFWarp(D)``, the paper's kernel and 10 RK4 steps as ``VSVFNet``.
        similarity: a two-argument image loss ``(warped, fixed) -> scalar or (B,)`` used at every scale instead of the
            default mk-LNCC.
        spacing: voxel spacing of ``S`` (for ``normalization="isotropic"`` with anisotropic voxels; default 1).
        lr: L-BFGS step scale (one, or one per scale).
        history_size: L-BFGS memory.
        max_line_search: most objective evaluations of one strong-Wolfe line search.
        tolerance, patience: stop a scale when the relative loss change is ``<= tolerance`` for ``patience``
            consecutive iterations.
        seed: seed of torch's generators during the call (the caller's RNG state is restored); the algorithm itself
            draws no random numbers. CPU runs are bitwise reproducible; CUDA's ``grid_sample`` backward may differ
            in the last bits.
        progress: a progress bar (``tqdm`` if installed, else ``logging`` info lines); ``False`` is silent.

    Returns:
        dict with ``"map"`` ``(B, D, *S)``, ``"warped"`` ``(B, C, *S)``, ``"momentum"`` and ``"velocity"``
        ``(B, D, *ceil(S/2))``, ``"initial_map"``, ``"loss"`` ``(B,)`` (the full-scale objective of the result),
        ``"history"`` (per scale, the batch-mean objective at the start and after every iteration), ``"iterations"``
        and ``"seconds"``. Outputs are detached.

    Raises:
        ValueError: shapes that differ, NaN/Inf inputs, a bad schedule, ``initial_map`` not on the images' grid.
        TypeError: non-tensor or non-floating inputs.
    """
    caller = "vsvf_opt"
    start_time = time.perf_counter()
    ndim, scales, iterations, lrs, sp, stopper = check_pyramid_arguments(
        moving, fixed, scales, iterations, lr, spacing, tolerance, patience, caller
    )
    check_lbfgs_settings(history_size, max_line_search, caller)
    batch, full_shape = moving.shape[0], tuple(moving.shape[2:])
    dtype = torch.promote_types(moving.dtype, torch.float32)
    if initial_map is None:
        phi_init = identity_map(full_shape, dtype=dtype, device=moving.device).expand(batch, ndim, *full_shape)
    else:
        phi_init = batched_field(initial_map, "initial_map", batch, ndim, caller, full_shape).to(dtype)
    momentum = None
    if initial_momentum is not None:
        momentum = batched_field(initial_momentum, "initial_momentum", batch, ndim, caller).to(dtype)
    warp = vsvf_warp_for(warp, ndim, caller)
    regularizer = MomentumRegularizationLoss(
        momentum_reg_weight, normalization=warp.smoother.normalization, reduction="none"
    )
    full_sim = similarity if similarity is not None else default_similarity(ndim, full_shape, True)

    state: dict = {"momentum": momentum, "result": None}  # "result": the best state of a full-resolution level

    def step(level: PyramidLevel) -> tuple[list[float], int]:
        phi0 = resample_map(phi_init, level.shape)
        mshape = momentum_shape(level.shape)
        m0 = (
            resample_map(state["momentum"], mshape)
            if state["momentum"] is not None
            else torch.zeros(batch, ndim, *mshape, dtype=dtype, device=moving.device)
        )
        sim = similarity if similarity is not None else default_similarity(ndim, level.shape, level.full)
        bar = Progress(level.iterations, f"vsvf_opt scale {level.scale:g} {level.shape}", progress)
        best, losses, n_done = optimize_momentum(
            warp, regularizer, sim, m0, phi0, level.moving, level.fixed, level.spacing, level.iterations,
            lrs[level.index], history_size, max_line_search, stopper, bar, caller,
        )  # fmt: skip
        state["momentum"] = best.state["momentum"]
        state["result"] = best if level.full else None
        return losses, n_done

    with seeded(seed, moving.device):
        levels = run_pyramid(moving, fixed, scales, iterations, step, spacing=sp)
        history, done = levels["history"], levels["iterations"]
        momentum, result = state["momentum"], state["result"]
        if result is not None:  # the last optimised scale was the full resolution: its best evaluated state
            state, final = result.state, result.values
            phi, warped, velocity = state["map"], state["warped"].to(moving.dtype), state["velocity"]
        else:
            with torch.no_grad():
                mshape = momentum_shape(full_shape)
                m = (
                    resample_map(momentum, mshape)
                    if momentum is not None
                    else torch.zeros(batch, ndim, *mshape, dtype=dtype, device=moving.device)
                )
                velocity, phi, warped, low_spacing = vsvf_increment_step(warp, m, phi_init, moving.to(dtype), sp)
                final = per_sample_similarity(full_sim, warped, fixed.to(dtype), caller)
                final = final + regularizer(m, velocity, low_spacing)
                warped = warped.to(moving.dtype)
                momentum = m
    return {
        "map": phi.detach(),
        "warped": warped.detach(),
        "momentum": momentum.detach(),
        "velocity": velocity.detach(),
        "initial_map": phi_init,
        "loss": final.detach(),
        "history": history,
        "iterations": done,
        "seconds": time.perf_counter() - start_time,
    }
