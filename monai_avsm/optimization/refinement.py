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
r"""Test-time refinement (instance optimisation) of an :class:`~monai_avsm.networks.nets.AVSMNet` result
(method spec §8: the optimisation baselines "are also useful as test-time refinement of the network's output")."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from monai_avsm.functional.maps import map_to_ddf, warp_image
from monai_avsm.losses.utils import masked_similarity
from monai_avsm.losses.vsvf import MomentumRegularizationLoss
from monai_avsm.networks.blocks.vsvf_warp import VSVFWarp
from monai_avsm.optimization.utils import (
    EarlyStopping,
    PyramidLevel,
    Similarity,
    batched_field,
    check_pair,
    default_similarity,
    fold_backoff,
    fold_count,
    masked_default_similarity,
    momentum_shape,
    per_sample_similarity,
    run_pyramid,
    seeded,
    spacing_for,
)
from monai_avsm.optimization.vsvf import check_lbfgs_settings, optimize_momentum, vsvf_warp_for
from monai_avsm.utils.progress import Progress
from monai_avsm.utils.validation import check_binary_mask

__all__ = ["refine"]

_STEP_KEYS = ("momenta", "velocities", "maps", "warped_steps")


def refine(
    net_output: dict,
    moving: torch.Tensor | None = None,
    fixed: torch.Tensor | None = None,
    iterations: int = 20,
    momentum_reg_weight: float = 10.0,
    warp: VSVFWarp | None = None,
    similarity: Similarity | None = None,
    spacing: Sequence[float] | torch.Tensor | None = None,
    lr: float = 1.0,
    history_size: int = 10,
    max_line_search: int = 20,
    tolerance: float = 1e-6,
    patience: int = 5,
    seed: int | None = None,
    progress: bool = True,
    mask: torch.Tensor | None = None,
    fold_safeguard: bool = True,
) -> dict:
    r"""Refine an ``AVSMNet`` output by optimising one more vSVF step per pair, starting at the network's result.

    The network's final map :math:`\Phi_{net}` (affine and vSVF steps composed) is kept fixed and a momentum
    :math:`m` on the half-resolution grid (as the network's) is optimised with L-BFGS at full resolution:

    .. math::
        \min_m\ \mathrm{Sim}\big(I_0 \circ \Phi(m), I_1\big) + \lambda_{vr} \langle m, K \star m \rangle,
        \qquad \Phi(m) = \Phi_{net} + \mathrm{up}\big(\Phi_{low}(1) - \Phi_{net,low}\big)

    the advection of :math:`\Phi_{net}` under :math:`v = K \star m` in the displacement-increment form of
    :func:`~monai_avsm.optimization.utils.vsvf_increment_step`. The start :math:`m = 0` is **exactly** the network's
    map and warped image, whose objective is the network's similarity (the regulariser is 0 there). Per pair the best
    evaluated iterate is kept, and a pair whose objective did not strictly improve gets the network's map back
    unchanged, so the returned objective is never above the network's. The affine part is not changed (a smooth
    vSVF step absorbs small residual affine errors; for large ones run :func:`affine_opt` first).

    With a fixed-image ``mask`` (a project extension) the similarity is the masked one,
    :math:`\mathrm{Sim}(I_0 \circ \Phi(m), I_1; M)`: for the default mk-LNCC only the windows with at least half of
    their voxels in the mask count, and fixed-image values outside the mask never enter it (see
    :class:`~monai_avsm.losses.MKLNCCLoss`). The "never worse" guarantee then holds for this masked objective, and
    ``"loss"``/``"initial_loss"`` are masked values.

    Fold safeguard (``fold_safeguard=True``, a project addition, as in
    :func:`~monai_avsm.optimization.deformable_opt`): a refined map with more voxels of :math:`\det J \le 0` than
    the network's has its momentum scaled by 0.8 until it has no more (at most 10 times,
    :func:`~monai_avsm.optimization.utils.fold_backoff`); a pair still above, or whose objective is then no longer
    below the network's, keeps the network's result. (On the scanner-space brains, 20 iterations without it left up
    to 32 folding voxels.)

    Args:
        net_output: the dict of :class:`~monai_avsm.networks.nets.AVSMNet` (or ``VSVFNet``/``MultiStepAffineNet``):
            ``"map"`` ``(B, D, *S)`` is required; ``"moving"``/``"fixed"`` are used when the arguments are omitted.
        moving, fixed: ``(B, C, *S)`` (default: the dict's).
        iterations: L-BFGS iterations (0 returns the network's result).
        momentum_reg_weight: :math:`\lambda_{vr}` (the paper's 10).
        warp: the :class:`~monai_avsm.networks.blocks.VSVFWarp` whose smoother and integrator to use, e.g. the
            network's own ``net.vsvf_net.warp`` (as :class:`~monai_avsm.engines.RefineInferer` passes it); default
            ``VSVFWarp(D)`` (``VSVFNet``'s defaults).
        similarity: ``(warped, fixed) -> scalar or (B,)``; default mk-LNCC with the paper's kernel rule (the
            network's training similarity); with a ``mask``, the same rule for the mask's bounding box with
            contiguous windows (:func:`~monai_avsm.optimization.utils.masked_default_similarity`). With a ``mask``
            it is called as ``similarity(warped, fixed, mask=mask)`` and must accept that keyword.
        spacing: voxel spacing of ``S`` (for ``normalization="isotropic"`` with anisotropic voxels).
        lr, history_size, max_line_search: L-BFGS settings, as :func:`vsvf_opt`.
        tolerance, patience: stop when the relative loss change is ``<= tolerance`` for ``patience`` iterations.
        seed, progress: as :func:`vsvf_opt`.
        mask: ``None`` or a binary fixed-image mask on the images' grid, ``(B, 1, *S)`` or ``(1, 1, *S)`` (bool,
            integer or floating with values 0 and 1 only), restricting the similarity to it.
        fold_safeguard: apply the momentum back-off above.

    Returns:
        a new dict with the keys of ``net_output`` (the ``"_ts"`` target->source keys are dropped: only the
        source->target direction is refined) and

        - ``"map"``, ``"warped"``, ``"ddf"`` (MONAI voxel DDF of the map): the refined result;
        - ``"momenta"``, ``"velocities"``, ``"maps"``, ``"warped_steps"``: the network's per-step lists with the
          refinement step appended (zero momentum for pairs that kept the network's map);
        - ``"affine"``, ``"affine_map"``, ... unchanged; ``"moving"``, ``"fixed"``: the inputs;
        - ``"loss"`` and ``"initial_loss"`` ``(B,)``: the objective after refinement and at the network's result,
          ``"improved"`` ``(B,)`` bool, ``"history"`` (the batch-mean objective at the start and after every
          iteration), ``"iterations"``, ``"fold_backoff_steps"`` (the safeguard's) and ``"seconds"``.

    Raises:
        TypeError: ``net_output`` is not a dict (e.g. ``AVSMNet(output="warped")``), non-tensor inputs.
        KeyError: no ``"map"`` (or no ``"moving"``/``"fixed"`` when not passed).
        ValueError: shapes that do not match, NaN/Inf inputs, bad settings; a ``mask`` of the wrong shape, not
            binary, or selecting no voxel of a pair; with the default similarity, a mask too small for its
            windows (no window with half of its voxels in the mask).
        TypeError: a ``mask`` with a ``similarity`` that has no ``mask`` keyword.
    """
    caller = "refine"
    start_time = time.perf_counter()
    if not isinstance(net_output, dict):
        raise TypeError(
            f"{caller}: 'net_output' must be the dict returned by AVSMNet (output='dict'), got "
            f"{type(net_output).__name__}."
        )
    for key, value in (("map", None), ("moving", moving), ("fixed", fixed)):
        if value is None and key not in net_output:
            raise KeyError(
                f"{caller}: 'net_output' has no {key!r} (and it was not passed); keys: {sorted(net_output)}."
            )
    moving = net_output["moving"] if moving is None else moving
    fixed = net_output["fixed"] if fixed is None else fixed
    ndim = check_pair(moving, fixed, caller)
    sp = spacing_for(spacing, ndim, caller)
    if mask is not None:
        mask = check_binary_mask(mask, fixed, "mask", caller)
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 0:
        raise ValueError(f"{caller}: 'iterations' must be an integer >= 0, got {iterations}.")
    if not lr > 0:
        raise ValueError(f"{caller}: 'lr' must be > 0, got {lr}.")
    check_lbfgs_settings(history_size, max_line_search, caller)
    stopper = EarlyStopping(tolerance, patience, caller)
    batch, full_shape = moving.shape[0], tuple(moving.shape[2:])
    dtype = torch.promote_types(moving.dtype, torch.float32)
    base = batched_field(net_output["map"].detach(), "net_output['map']", batch, ndim, caller, full_shape).to(dtype)
    warp = vsvf_warp_for(warp, ndim, caller)
    regularizer = MomentumRegularizationLoss(
        momentum_reg_weight, normalization=warp.smoother.normalization, reduction="none"
    )
    if similarity is not None:
        sim = similarity
    elif mask is not None:  # checked above
        sim = masked_default_similarity(ndim, mask)
    else:
        sim = default_similarity(ndim, full_shape, True)
    sim = masked_similarity(sim, mask, caller, "mask")
    mov, fix = moving.detach().to(dtype), fixed.detach().to(dtype)
    zeros = torch.zeros(batch, ndim, *momentum_shape(full_shape), dtype=dtype, device=moving.device)

    with seeded(seed, moving.device), torch.no_grad():
        given = net_output.get("warped")
        if isinstance(given, torch.Tensor) and given.shape == moving.shape:  # the network's own warped image
            base_warped = given.detach().to(dtype)
        else:
            base_warped = warp_image(mov, base)
        initial = per_sample_similarity(sim, base_warped, fix, caller)  # the regulariser is 0 at m = 0
    start = {"momentum": zeros, "velocity": zeros, "map": base, "warped": base_warped}  # m = 0: the network's
    state = dict(start)
    final, history, done, fold_steps = initial, [float(initial.mean())], 0, 0
    if iterations > 0:
        found: dict = {}

        def step(level: PyramidLevel) -> tuple[list[float], int]:  # one level: the images' own grid
            bar = Progress(level.iterations, f"refine {full_shape}", progress)
            found["best"], losses, n_done = optimize_momentum(
                warp, regularizer, sim, zeros, base, level.moving, level.fixed, level.spacing, level.iterations, lr,
                history_size, max_line_search, stopper, bar, caller,
            )  # fmt: skip
            return losses, n_done

        with seeded(seed, moving.device):
            levels = run_pyramid(mov, fix, (1.0,), (iterations,), step, spacing=sp)
        best, history, done = found["best"], levels["history"][0], levels["iterations"][0]
        improved = best.values < initial
        for key, value in best.state.items():
            mask = improved.reshape(-1, *([1] * (value.ndim - 1)))
            state[key] = torch.where(mask, value, state[key])
        final = torch.where(improved, best.values, initial)
        start_folds = fold_count(base) if fold_safeguard and bool(improved.any()) else None
        if start_folds is not None and bool((fold_count(state["map"]) > start_folds).any()):
            safe = fold_backoff(warp, state["momentum"], base, mov, sp, initial_folds=start_folds)
            values = per_sample_similarity(sim, safe["warped"], fix, caller)
            values = values + regularizer(safe["momentum"], safe["velocity"], safe["low_spacing"])
            keep = improved & (safe["folds"] <= start_folds) & (values < initial)
            for key, value in start.items():
                state[key] = torch.where(keep.reshape(-1, *([1] * (value.ndim - 1))), safe[key], value)
            final = torch.where(keep, values, initial)
            fold_steps = safe["steps"]
    improved = final < initial

    out = {k: v for k, v in net_output.items() if not k.endswith("_ts")}
    phi, warped = state["map"].detach(), state["warped"].detach().to(moving.dtype)
    out["map"], out["warped"], out["ddf"] = phi, warped, map_to_ddf(phi)
    step = {"momenta": state["momentum"], "velocities": state["velocity"], "maps": phi, "warped_steps": warped}
    for key in _STEP_KEYS:
        out[key] = [*net_output.get(key, []), step[key].detach()]
    out["moving"], out["fixed"] = moving, fixed
    out.update(
        loss=final.detach(),
        initial_loss=initial.detach(),
        improved=improved,
        history=history,
        iterations=done,
        fold_backoff_steps=fold_steps,
        seconds=time.perf_counter() - start_time,
    )
    return out
