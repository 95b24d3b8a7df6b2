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
r"""Losses of the vSVF stage (paper §2.2, eq. 9-10; method spec §3).

- :class:`MomentumRegularizationLoss`: :math:`\lambda_{vr} \langle m_0, v_0 \rangle` (eq. 9), the squared
  :math:`L`-norm of the velocity, as an integral over the (unit) image domain;
- :class:`MapSymmetryLoss`: :math:`\lambda_{vs} \|\Phi^{-1} \circ (\Phi^{ts})^{-1} - id\|^2` (eq. 10), with the
  map composition of :func:`monai_avsm.functional.compose_maps`.

MONAI's ``BendingEnergyLoss``/``DiffusionLoss`` regularise DDFs by derivatives; the momentum norm and the
inverse-consistency of maps are new here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.modules.loss import _Loss

from monai_avsm.functional.maps import compose_maps, identity_map
from monai_avsm.functional.smoothing import kernel_unit_spacing
from monai_avsm.losses.utils import check_weight, parse_reduction, reduce_loss
from monai_avsm.utils.enums import KernelNormalization, LossReduction
from monai_avsm.utils.options import look_up_option
from monai_avsm.utils.validation import check_map, ensure_spacing

__all__ = ["MomentumRegularizationLoss", "MapSymmetryLoss"]


class MomentumRegularizationLoss(_Loss):
    r"""Regularity of the vSVF velocity, :math:`\lambda_{vr} \|v_0\|_L^2 = \lambda_{vr} \langle m_0, v_0 \rangle`
    (paper eq. 9), with :math:`v_0 = K \star m_0` (:class:`~monai_avsm.networks.blocks.MultiGaussianSmoother`).

    .. math::
        \langle m_0, v_0 \rangle = \int_\Omega m_0(x) \cdot v_0(x)\, dx
        \approx \prod_d h_d \sum_x \sum_c m_c(x)\, v_c(x)

    The integral runs over the image domain scaled as for the smoother (``normalization``: ``"isotropic"``, the
    longest physical side is 1, or ``"per_axis"``, the unit cube), so :math:`h_d` is the voxel size in those units
    and the value approximates the same integral at every grid resolution (the authors' quadrature, sum times
    :math:`\prod_d h_d`, which converges as :math:`O(1/N)`).

    Args:
        weight: :math:`\lambda_{vr}` (paper and authors' code: 10).
        clamp: clamp every product :math:`m_c(x) v_c(x)` at 0 before summing (the authors' code); off by default,
            which gives the true inner product (non-negative for a positive-definite kernel).
        normalization: domain scaling, as the smoother's (default ``"isotropic"``).
        reduction: ``"mean"`` (default) or ``"sum"`` over the batch (the authors' code sums), ``"none"`` for ``(B,)``.

    ``forward(momentum, velocity, spacing=None)``: both ``(B, D, *s)`` on the same (low-resolution) grid;
    ``spacing`` the voxel spacing of that grid (only for ``"isotropic"``).
    """

    def __init__(
        self,
        weight: float = 1.0,
        clamp: bool = False,
        normalization: KernelNormalization | str = KernelNormalization.ISOTROPIC,
        reduction: LossReduction | str = LossReduction.MEAN,
    ) -> None:
        super().__init__(reduction=parse_reduction(reduction, "MomentumRegularizationLoss"))
        self.weight = check_weight(weight, "weight", "MomentumRegularizationLoss")
        self.clamp = bool(clamp)
        self.normalization = look_up_option(normalization, KernelNormalization)

    def forward(  # type: ignore[override]
        self, momentum: torch.Tensor, velocity: torch.Tensor, spacing: Sequence[float] | torch.Tensor | None = None
    ) -> torch.Tensor:
        ndim = check_map(momentum, "momentum", "MomentumRegularizationLoss")
        if velocity.shape != momentum.shape:
            raise ValueError(
                f"MomentumRegularizationLoss: 'momentum' and 'velocity' must have the same shape, "
                f"got {tuple(momentum.shape)} and {tuple(velocity.shape)}."
            )
        sp = ensure_spacing(spacing, ndim, "MomentumRegularizationLoss")
        unit = kernel_unit_spacing(momentum.shape[2:], sp, self.normalization)
        volume = 1.0
        for h in unit:
            volume *= h
        prod = (
            momentum.float() * velocity.float()
            if momentum.dtype in (torch.float16, torch.bfloat16)
            else momentum * velocity
        )
        if self.clamp:
            prod = prod.clamp_min(0)
        values = prod.reshape(prod.shape[0], -1).sum(dim=1) * volume
        return self.weight * reduce_loss(values, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, clamp={self.clamp}, normalization={self.normalization.value!r}, "
            f"reduction={self.reduction!r}"
        )


class MapSymmetryLoss(_Loss):
    r"""Inverse consistency of the vSVF maps of the two directions (paper eq. 10):

    .. math:: L_{v\text{-}sym} = \lambda_{vs}\ \mathcal{N}_x \big\| \Phi^{-1} \circ (\Phi^{ts})^{-1}(x) - x \big\|^2

    The difference is measured in unit-cube coordinates (every axis ``[0, 1]``; half the ``MapSpace.NORMALIZED``
    difference), as the authors' code does, and :math:`\mathcal{N}_x` is the ``normalization`` over voxels:

    - ``"mean"`` (default): mean over voxels of the squared Euclidean norm, i.e. the integral over the unit cube.
      The authors' code uses this with :math:`\lambda_{vs} = 500` (it also divides by the number of channels;
      multiply our weight by ``1 / D`` to match it exactly).
    - ``"sum"``: sum over voxels, the plain :math:`\|\cdot\|_2^2` of the paper with :math:`\lambda_{vs} = 10^{-4}`
      (for 80x192x192 voxels, ``1e-4 * 2.9e6`` is about the same scale as 500 with the mean).

    Args:
        weight: :math:`\lambda_{vs}`.
        normalization: ``"mean"`` or ``"sum"`` over voxels.
        reduction: ``"mean"`` (default) or ``"sum"`` over the batch, ``"none"`` for ``(B,)``.

    ``forward(phi, phi_ts)``: ``phi`` the source->target map (on the target grid), ``phi_ts`` the target->source
    map (on the source grid), both ``(B, D, *S)``, ``MapSpace.NORMALIZED``, same grid shape. ``phi`` is interpolated
    at the positions ``phi_ts`` gives (border padding).
    """

    def __init__(
        self, weight: float = 1.0, normalization: str = "mean", reduction: LossReduction | str = LossReduction.MEAN
    ) -> None:
        super().__init__(reduction=parse_reduction(reduction, "MapSymmetryLoss"))
        self.weight = check_weight(weight, "weight", "MapSymmetryLoss")
        self.normalization = look_up_option(normalization, ("mean", "sum"))

    def forward(self, phi: torch.Tensor, phi_ts: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        check_map(phi, "phi", "MapSymmetryLoss")
        check_map(phi_ts, "phi_ts", "MapSymmetryLoss")
        if phi.shape[1:] != phi_ts.shape[1:]:
            raise ValueError(
                f"MapSymmetryLoss: 'phi' and 'phi_ts' must have the same shape, got {tuple(phi.shape)} and "
                f"{tuple(phi_ts.shape)}."
            )
        composed = compose_maps(phi, phi_ts)
        ident = identity_map(phi_ts.shape[2:], dtype=composed.dtype, device=composed.device)
        sq = (0.5 * (composed - ident)) ** 2
        per_voxel = sq.sum(dim=1).reshape(sq.shape[0], -1)
        values = per_voxel.mean(dim=1) if self.normalization == "mean" else per_voxel.sum(dim=1)
        return self.weight * reduce_loss(values, self.reduction)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, normalization={self.normalization!r}, reduction={self.reduction!r}"
