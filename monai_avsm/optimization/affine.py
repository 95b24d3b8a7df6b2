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
r"""affine-opt: the affine parameters optimised per pair, coarse to fine (method spec §8, paper Table 1)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from monai_avsm.functional.affine import affine_from_theta, affine_to_map, identity_affine, theta_from_affine
from monai_avsm.functional.maps import warp_image
from monai_avsm.losses.affine import AffineRegularizationLoss
from monai_avsm.optimization.adam import Adam, PlateauHalving
from monai_avsm.optimization.utils import (
    BestIterate,
    PyramidLevel,
    Similarity,
    check_pyramid_arguments,
    default_similarity,
    per_sample_similarity,
    run_pyramid,
    seeded,
)
from monai_avsm.utils.progress import Progress
from monai_avsm.utils.validation import check_finite

__all__ = ["affine_opt"]


def _check_theta(theta: torch.Tensor, batch: int, ndim: int, caller: str) -> torch.Tensor:
    if not isinstance(theta, torch.Tensor) or not theta.is_floating_point():
        raise TypeError(f"{caller}: 'initial_theta' must be a floating point torch.Tensor, got {type(theta).__name__}.")
    if theta.ndim == 2:
        theta = theta.unsqueeze(0)
    if theta.shape[1:] != (ndim, ndim + 1) or theta.shape[0] not in (1, batch):
        raise ValueError(
            f"{caller}: 'initial_theta' must have shape ({batch} or 1, {ndim}, {ndim + 1}), got {tuple(theta.shape)}."
        )
    check_finite(theta, "initial_theta", caller)
    return theta.expand(batch, ndim, ndim + 1)


def affine_opt(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    scales: Sequence[float] = (0.25, 0.5, 1.0),
    iterations: Sequence[int] | int = (200, 200, 50),
    lr: float | Sequence[float] = 1e-2,
    initial_theta: torch.Tensor | None = None,
    similarity: Similarity | None = None,
    affine_reg_weight: float = 0.0,
    spacing: Sequence[float] | torch.Tensor | None = None,
    tolerance: float = 1e-6,
    patience: int = 20,
    lr_patience: int = 10,
    seed: int | None = None,
    progress: bool = True,
) -> dict:
    r"""affine-opt: optimise :math:`\theta = [A \mid b]` of :math:`\phi(x) = A x + b` for every pair, coarse to fine.

    At each scale :math:`s` both images are sampled on a grid of :math:`\mathrm{round}(s N)` voxels per axis spanning
    the same domain (Gaussian anti-aliasing, then linear interpolation, ``align_corners=True``), and

    .. math::
        \min_{A, b}\ \mathrm{Sim}\big(I_0^{(s)} \circ \phi_{A,b},\ I_1^{(s)}\big)
        + \lambda_{ar} \left(\|A - I\|_F^2 + \|b\|_2^2\right)

    is minimised from the previous scale's result (the parameters act on normalised coordinates, so they carry over
    between scales unchanged). The objective is the batch mean of independent per-pair terms; per pair the best
    iterate of every scale is kept.

    Choices (method spec §8; the authors' mermaid settings in ``avsm-reference-code.md`` §6.1):

    - scales ``(0.25, 0.5, 1.0)`` with ``(200, 200, 50)`` iterations, as the authors;
    - similarity (``similarity=None``): mk-LNCC with one window of half the smallest size at the coarse scales and
      the paper's kernel rule at full scale (:func:`~monai_avsm.optimization.utils.default_similarity`);
    - optimiser: **Adam** (lr ``1e-2`` on the normalised parameters) with the step halved when the loss has not
      improved for ``lr_patience`` iterations (``ReduceLROnPlateau``'s rule, as mermaid's plateau scheduler; both
      written out in :mod:`monai_avsm.optimization.adam`, equal to torch's). The spec's
      plain SGD with lr 1e-4 (mermaid: Nesterov SGD, lr 5e-5 to 5e-4) moves the parameters by about ``lr * |grad|``
      per step; mk-LNCC gradients w.r.t. :math:`\theta` are O(0.1-1) and vary by orders of magnitude with image size
      and content, so SGD with a fixed step either barely moves in 450 iterations or oscillates. Adam's steps are
      about ``lr`` whatever the gradient scale, so one setting works across sizes, 2D/3D and similarities;
    - no regulariser by default (``affine_reg_weight=0``): mermaid's affine model has none, and any weight biases
      the result towards the identity; a small weight (e.g. ``1e-3``) only helps on pairs with little overlap.

    Args:
        moving: source image :math:`I_0` ``(B, C, *S)``, 2D or 3D.
        fixed: target image :math:`I_1` ``(B, C, *S)``.
        scales: pyramid factors in ``(0, 1]``, coarse to fine.
        iterations: Adam iterations per scale (an int for all scales); 0 skips a scale.
        lr: Adam learning rate, one for all scales or one per scale.
        initial_theta: ``(B or 1, D, D + 1)`` start (default: the identity).
        similarity: a two-argument image loss ``(warped, fixed) -> scalar or (B,)`` used at every scale instead of
            the default mk-LNCC (e.g. MONAI's ``GlobalMutualInformationLoss`` for multi-modal pairs).
        affine_reg_weight: :math:`\lambda_{ar}`.
        spacing: voxel spacing of ``S`` (kept for a common signature with :func:`vsvf_opt`; the affine objective does
            not use it).
        tolerance, patience: stop a scale when the relative loss change is ``<= tolerance`` for ``patience``
            consecutive iterations.
        lr_patience: iterations without improvement before the learning rate is halved (0 disables).
        seed: seed of torch's generators during the call (the caller's RNG state is restored). The algorithm draws
            no random numbers; the seed is for similarities that do. CPU runs are bitwise reproducible; on CUDA,
            ``grid_sample``'s backward accumulates with atomics and may differ in the last bits.
        progress: a progress bar (``tqdm`` if installed, else ``logging`` info lines); ``False`` is silent.

    Returns:
        dict with ``"affine"`` :math:`\theta` ``(B, D, D + 1)``, ``"map"`` ``(B, D, *S)`` (the full-resolution
        pull-back map), ``"warped"`` ``(B, C, *S)``, ``"loss"`` ``(B,)`` (the full-scale objective of the result),
        ``"history"`` (per scale, the batch-mean objective at the start and after every iteration),
        ``"iterations"`` (iterations run per scale) and ``"seconds"`` (wall time). Outputs are detached.

    Raises:
        ValueError: shapes that differ, NaN/Inf inputs, a bad schedule or ``initial_theta`` shape.
        TypeError: non-tensor or non-floating inputs.
    """
    caller = "affine_opt"
    start_time = time.perf_counter()
    ndim, scales, iterations, lrs, _, stopper = check_pyramid_arguments(
        moving, fixed, scales, iterations, lr, spacing, tolerance, patience, caller
    )
    if isinstance(lr_patience, bool) or int(lr_patience) != lr_patience or lr_patience < 0:
        raise ValueError(f"{caller}: 'lr_patience' must be an integer >= 0, got {lr_patience}.")
    regularizer = AffineRegularizationLoss(weight=affine_reg_weight, reduction="none")
    batch, full_shape = moving.shape[0], tuple(moving.shape[2:])
    dtype = torch.promote_types(moving.dtype, torch.float32)
    if initial_theta is None:
        theta = theta_from_affine(*identity_affine(batch, ndim, dtype=dtype, device=moving.device))
    else:
        theta = _check_theta(initial_theta, batch, ndim, caller).to(dtype=dtype, device=moving.device).clone()

    def objective(th: torch.Tensor, mov: torch.Tensor, fix: torch.Tensor, sim: Similarity) -> torch.Tensor:
        A, b = affine_from_theta(th)
        warped = warp_image(mov, affine_to_map(A, b, mov.shape[2:]))
        values = per_sample_similarity(sim, warped, fix, caller)
        return values + regularizer(A, b) if regularizer.weight > 0 else values

    state = {"theta": theta}

    def step(level: PyramidLevel) -> tuple[list[float], int]:
        mov, fix, n_iter = level.moving, level.fixed, level.iterations
        sim = similarity if similarity is not None else default_similarity(ndim, level.shape, level.full)
        param = state["theta"].detach().clone().requires_grad_(True)
        optimizer = Adam(param, lr=lrs[level.index])
        scheduler = PlateauHalving(optimizer, factor=0.5, patience=lr_patience) if lr_patience > 0 else None
        best, losses = BestIterate(), []
        bar = Progress(n_iter, f"affine_opt scale {level.scale:g} {level.shape}", progress)
        stopper.reset()
        it = 0
        for it in range(n_iter + 1):  # n_iter updates, the last pass only evaluates the final parameters
            optimizer.zero_grad()
            values = objective(param, mov, fix, sim)
            loss = values.mean()
            best.update(values, {"theta": param})
            losses.append(float(loss.detach()))
            converged = stopper(losses[-1])
            if it == n_iter or not torch.isfinite(loss) or converged:
                break
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step(losses[-1])
            bar.update(it, losses[-1])
        bar.close(it, losses[-1])
        state["theta"] = best.state["theta"]
        return losses, it

    with seeded(seed, moving.device):
        levels = run_pyramid(moving, fixed, scales, iterations, step)
        history, done, theta = levels["history"], levels["iterations"], state["theta"]
        with torch.no_grad():
            A, b = affine_from_theta(theta)
            phi = affine_to_map(A, b, full_shape)
            warped = warp_image(moving.to(dtype), phi)
            sim = similarity if similarity is not None else default_similarity(ndim, full_shape, True)
            final = per_sample_similarity(sim, warped, fixed.to(dtype), caller)
            warped = warped.to(moving.dtype)
            if regularizer.weight > 0:
                final = final + regularizer(A, b)
    return {
        "affine": theta.detach(),
        "map": phi.detach(),
        "warped": warped.detach(),
        "loss": final.detach(),
        "history": history,
        "iterations": done,
        "seconds": time.perf_counter() - start_time,
    }
