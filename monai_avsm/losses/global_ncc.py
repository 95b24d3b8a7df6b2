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
r"""``GlobalNCCLoss``: :math:`1 - \mathrm{NCC}` over the whole image, the similarity of the authors' affine warm-up
(reference code §2.4: easyreg ``NCCLoss``, used before mk-LNCC takes over). MONAI 1.6 has no global NCC loss."""

from __future__ import annotations

import torch
from torch.nn.modules.loss import _Loss

from monai_avsm.functional.ncc import global_ncc
from monai_avsm.losses.utils import check_smooth, parse_reduction, reduce_loss
from monai_avsm.utils.enums import LossReduction

__all__ = ["GlobalNCCLoss"]


class GlobalNCCLoss(_Loss):
    r"""Global normalized cross-correlation loss, :math:`1 - \mathrm{NCC}` per sample (the authors' affine warm-up).

    .. math::

        \mathrm{NCC}_{b,c} = \frac{\overline{(I - \bar I)(T - \bar T)} + \epsilon_{nr}}
        {\sqrt{\overline{(I - \bar I)^2}\; \overline{(T - \bar T)^2}} + \epsilon_{dr}},
        \qquad L_b = 1 - \frac{1}{C} \sum_c \mathrm{NCC}_{b,c}

    with means over all voxels of sample :math:`b`, channel :math:`c`. :math:`L \in [0, 2]`: 0 for images equal up to
    :math:`aI + b` with :math:`a > 0`, 1 for uncorrelated images, 2 for inverted contrast (:math:`a < 0`).

    Notes:
        - The NCC is **not** squared, as in the authors' ``NCCLoss`` (easyreg ``losses.py``): globally, inverted
          contrast is a mismatch. :class:`~monai_avsm.losses.MKLNCCLoss` squares its local NCC, as the authors do.
        - The authors add :math:`10^{-7}` to the square root; the default here is 1e-5 (MONAI's ``smooth_dr``); pass
          ``smooth_dr=1e-7`` to match them exactly. They flatten all channels of a sample together; here each channel
          has its own NCC and the channels are averaged (the same for one channel).
        - Statistics in float32 for float16/bfloat16 inputs (float64 for float64), autocast disabled; constant
          images give :math:`\mathrm{NCC} = \epsilon_{nr} / \epsilon_{dr}` with finite gradients.

    Args:
        reduction: ``"mean"`` (default, over the batch), ``"sum"`` or ``"none"`` (per-sample loss ``(B,)``).
        smooth_nr: added to the covariance (default 0).
        smooth_dr: added to the product of the standard deviations (default 1e-5).

    Example::

        import torch
        from monai_avsm.losses import GlobalNCCLoss

        loss = GlobalNCCLoss()(torch.rand(2, 1, 32, 64, 64), torch.rand(2, 1, 32, 64, 64))  # about 1
    """

    def __init__(
        self, reduction: LossReduction | str = LossReduction.MEAN, smooth_nr: float = 0.0, smooth_dr: float = 1e-5
    ) -> None:
        super().__init__(reduction=parse_reduction(reduction, "GlobalNCCLoss"))
        self.smooth_nr, self.smooth_dr = check_smooth(smooth_nr, smooth_dr, "GlobalNCCLoss")

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            pred: ``(B, C, *S)``, e.g. the warped moving image.
            target: ``(B, C, *S)``, the fixed image.
            mask: ``None`` or a binary fixed-image mask ``(B, 1, *S)`` or ``(1, 1, *S)`` (bool, integer or floating
                with values 0 and 1 only): the means run over its voxels only (a project extension, not in the
                authors' code); values outside it never enter.

        Returns:
            a scalar for ``"mean"`` and ``"sum"``, ``(B,)`` for ``"none"``; float32 (float64 for float64 inputs).

        Raises:
            ValueError: if the shapes differ or the inputs have fewer than 3 dims; an invalid mask (shape, not
                binary, NaN, no voxel selected in a sample).
        """
        loss = 1.0 - global_ncc(pred, target, self.smooth_nr, self.smooth_dr, mask=mask).mean(dim=1)  # (B,)
        return reduce_loss(loss, self.reduction)

    def extra_repr(self) -> str:
        return f"smooth_nr={self.smooth_nr}, smooth_dr={self.smooth_dr}, reduction={self.reduction!r}"
