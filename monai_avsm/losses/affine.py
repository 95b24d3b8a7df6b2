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
r"""Losses of the multi-step affine network (paper §2.1, eq. 4-5 and 13; method spec §2).

- :class:`AffineRegularizationLoss`: :math:`\lambda_{ar} (\|A - I\|_F^2 + \|b\|_2^2)` (eq. 4);
- :class:`AffineRegularizationWeight`: the epoch-dependent :math:`\lambda_{ar}` of eq. (13), a callable a training
  handler uses to set the loss's ``weight`` every epoch (schedules live in configuration, not in losses);
- :class:`AffineSymmetryLoss`: :math:`\lambda_{as} (\|A^{ts} A - I\|_F^2 + \|A^{ts} b + b^{ts}\|_2^2)` (eq. 5).

Affines are ``A`` ``(B, D, D)`` and ``b`` ``(B, D)`` acting on normalised coordinates
(:mod:`monai_avsm.functional.affine`). MONAI has no affine-parameter losses; these are new.
"""

from __future__ import annotations

import math

import torch
from torch.nn.modules.loss import _Loss

from monai_avsm.functional.affine import check_affine
from monai_avsm.losses.utils import check_weight, parse_reduction, reduce_loss
from monai_avsm.utils.enums import LossReduction

__all__ = ["AffineRegularizationLoss", "AffineRegularizationWeight", "AffineSymmetryLoss"]


class AffineRegularizationLoss(_Loss):
    r"""Deviation of the affine transform from the identity (paper eq. 4):

    .. math:: L_{a\text{-}reg}(A, b) = \lambda_{ar} \left( \|A - I\|_F^2 + \|b\|_2^2 \right)

    Args:
        weight: :math:`\lambda_{ar}`. It is epoch-dependent in the paper (eq. 13): a handler sets ``loss.weight``
            from :class:`AffineRegularizationWeight` every epoch.
        reduction: ``"mean"`` (default) or ``"sum"`` over the batch, ``"none"`` for per-sample values ``(B,)``.

    ``forward(A, b)`` with ``A`` ``(B, D, D)``, ``b`` ``(B, D)``.
    """

    def __init__(self, weight: float = 1.0, reduction: LossReduction | str = LossReduction.MEAN) -> None:
        super().__init__(reduction=parse_reduction(reduction, "AffineRegularizationLoss"))
        self.weight = check_weight(weight, "weight", "AffineRegularizationLoss")

    def forward(self, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ndim = check_affine(A, b, "AffineRegularizationLoss")
        eye = torch.eye(ndim, dtype=A.dtype, device=A.device)
        values = ((A - eye) ** 2).sum(dim=(1, 2)) + (b**2).sum(dim=1)
        return self.weight * reduce_loss(values, self.reduction)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, reduction={self.reduction!r}"


class AffineRegularizationWeight:
    r"""The epoch-dependent affine regularisation factor of paper eq. (13)/(14):

    .. math:: \lambda_{ar}(n) = \frac{C_{ar} K_{ar}}{K_{ar} + e^{n / K_{ar}}}

    Args:
        c_ar: :math:`C_{ar}` (paper: 10).
        k_ar: :math:`K_{ar}`, the decay rate (paper: 4).
        min_weight: lower bound of the factor (paper: 0; the authors' code floors it at 1e-3).

    Example::

        >>> schedule = AffineRegularizationWeight()
        >>> round(schedule(0), 3), round(schedule(20), 4)
        (8.0, 0.2624)
    """

    def __init__(self, c_ar: float = 10.0, k_ar: float = 4.0, min_weight: float = 0.0) -> None:
        if not c_ar >= 0 or not k_ar > 0 or not min_weight >= 0:
            raise ValueError(
                f"AffineRegularizationWeight: need 'c_ar' >= 0, 'k_ar' > 0 and 'min_weight' >= 0, "
                f"got c_ar={c_ar}, k_ar={k_ar}, min_weight={min_weight}."
            )
        self.c_ar, self.k_ar, self.min_weight = float(c_ar), float(k_ar), float(min_weight)

    def __call__(self, epoch: int | float) -> float:
        if epoch < 0:
            raise ValueError(f"AffineRegularizationWeight: 'epoch' must be >= 0, got {epoch}.")
        exponent = epoch / self.k_ar
        if exponent > 700:  # exp overflows float64; the factor is 0 to machine precision
            return self.min_weight
        return max(self.c_ar * self.k_ar / (self.k_ar + math.exp(exponent)), self.min_weight)

    def __repr__(self) -> str:
        return f"AffineRegularizationWeight(c_ar={self.c_ar}, k_ar={self.k_ar}, min_weight={self.min_weight})"


class AffineSymmetryLoss(_Loss):
    r"""Inverse consistency of the affine transforms of the two directions (paper eq. 5):

    .. math:: L_{a\text{-}sym} = \lambda_{as} \left( \|A^{ts} A - I\|_F^2 + \|A^{ts} b + b^{ts}\|_2^2 \right)

    zero exactly when :math:`A^{ts}(A x + b) + b^{ts} = x`, i.e. when :math:`(A^{ts}, b^{ts})` is the inverse of
    :math:`(A, b)`.

    Args:
        weight: :math:`\lambda_{as}` (paper: 10; the authors' code: 1).
        reduction: ``"mean"`` (default) or ``"sum"`` over the batch, ``"none"`` for ``(B,)``.

    ``forward(A, b, A_ts, b_ts)``: source->target ``(A, b)`` and target->source ``(A_ts, b_ts)``, batched alike.
    """

    def __init__(self, weight: float = 1.0, reduction: LossReduction | str = LossReduction.MEAN) -> None:
        super().__init__(reduction=parse_reduction(reduction, "AffineSymmetryLoss"))
        self.weight = check_weight(weight, "weight", "AffineSymmetryLoss")

    def forward(  # type: ignore[override]
        self, A: torch.Tensor, b: torch.Tensor, A_ts: torch.Tensor, b_ts: torch.Tensor
    ) -> torch.Tensor:
        ndim = check_affine(A, b, "AffineSymmetryLoss")
        check_affine(A_ts, b_ts, "AffineSymmetryLoss")
        if A.shape != A_ts.shape:
            raise ValueError(
                f"AffineSymmetryLoss: 'A' and 'A_ts' must have the same shape, got {tuple(A.shape)} and "
                f"{tuple(A_ts.shape)}."
            )
        eye = torch.eye(ndim, dtype=A.dtype, device=A.device)
        values = ((A_ts @ A - eye) ** 2).sum(dim=(1, 2))
        values = values + (((A_ts @ b.unsqueeze(-1)).squeeze(-1) + b_ts) ** 2).sum(dim=1)
        return self.weight * reduce_loss(values, self.reduction)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, reduction={self.reduction!r}"
