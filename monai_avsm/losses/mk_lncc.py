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
r"""``MKLNCCLoss``: the multi-kernel localized NCC similarity of AVSM (paper eq. 2-3, method spec §4).

A MONAI-style loss (``_Loss``, ``reduction``) over :func:`monai_avsm.functional.lncc.mk_lncc`, which its ``forward``
calls with the resolved windows; usable in any MONAI registration pipeline in place of
``LocalNormalizedCrossCorrelationLoss``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.modules.loss import _Loss

from monai_avsm.functional.box_sums import IntOrTuple
from monai_avsm.functional.lncc import check_mask_fraction, mk_lncc
from monai_avsm.functional.windows import LNCCSettings, check_rule_options, default_lncc_settings, parse_lncc_settings
from monai_avsm.losses.utils import check_smooth, parse_reduction, reduce_loss
from monai_avsm.utils.enums import LossReduction
from monai_avsm.utils.validation import check_image_pair

__all__ = ["MKLNCCLoss"]


class MKLNCCLoss(_Loss):
    r"""Multi-kernel localized normalized cross-correlation loss, mk-LNCC (paper eq. 2-3).

    For each kernel :math:`k` with weight :math:`w_k`, the squared NCC of every valid window :math:`o` (the paper's
    :math:`\kappa_s`, eq. 2, squared as in the authors' code):

    .. math::

        \mathrm{ncc}^2_{k,o} = \frac{\big(\sum (I - \bar I_o)(T - \bar T_o)\big)^2 + \epsilon_{nr}}
        {\sum (I - \bar I_o)^2 \, \sum (T - \bar T_o)^2 + \epsilon_{dr}},
        \qquad
        L = \sum_k w_k \Big( 1 - \frac{1}{C N_k} \sum_{c, o} \mathrm{ncc}^2_{k,c,o} \Big)   \quad \text{(eq. 3)}

    with sums over the :math:`n_k = \prod_a k_a` voxels of window :math:`o` (kernel :math:`k`, stride :math:`s`,
    dilation :math:`d`), :math:`N_k` windows and :math:`C` channels. :math:`L = 0` for identical images (up to
    :math:`\epsilon_{dr}`), :math:`L \le 1` for ``smooth_nr = 0``; :math:`L` is invariant to :math:`aI + b` for any
    :math:`a \ne 0`. Windows where an image is constant give :math:`\mathrm{ncc}^2 = \epsilon_{nr} / \epsilon_{dr}`
    (0 by default), finite with finite gradients.

    The window sums cost :math:`O(\text{voxels})` per kernel whatever the window size (separable prefix sums; see
    :mod:`monai_avsm.functional.box_sums`); statistics are computed in float32 for float16/bfloat16 inputs (float64 for
    float64) with autocast disabled, and the loss is returned in that dtype.

    Defaults (``kernel_sizes=None``): the paper's window rule for the smallest spatial size :math:`S` of the input,
    evaluated at every forward call (:func:`~monai_avsm.functional.windows.default_lncc_settings`, which states it;
    :meth:`settings_for` shows the windows for a size). For 80x192x192: k = 20 (stride 5, dilation 2) and k = 40
    (stride 10, dilation 2), weights 0.3 / 0.7.

    Deviation / notes:
        - The NCC is squared (the authors' code, not the paper's eq. 2): anti-correlated windows count as matches,
          which suits images of different contrast but not a target with inverted contrast where that is a mismatch.
        - Compared with MONAI's ``LocalNormalizedCrossCorrelationLoss``: valid windows only (no zero padding, so no
          border windows), strides and dilations, even and anisotropic kernels, several kernels, rectangular windows
          only, :math:`\epsilon_{dr}` added to the product of the variances (MONAI clamps each variance at
          ``smooth_dr``), and a loss in :math:`[0, 1]` (:math:`1 - \mathrm{ncc}^2`) rather than :math:`[-1, 0]`
          (:math:`-\mathrm{ncc}^2`). With one odd kernel, stride 1 and dilation 1, the per-window
          :math:`\mathrm{ncc}^2` equals MONAI's ``-loss`` map (``reduction="none"``) on the interior voxels, up to
          the epsilons.
        - The authors multiply the loss by the batch size (mermaid) or by it and then divide by it (easyreg); here
          ``reduction`` decides.
        - First derivatives only (no double backward).

    Mask (a project extension, not in the paper): ``forward(pred, target, mask)`` with a binary fixed-image mask
    :math:`m` takes every window statistic over the masked voxels of the window only (the sums above run over
    :math:`\{j \in o : m_j = 1\}` and :math:`n_k` becomes the window's count :math:`n_o = \sum_{j \in o} m_j`), and
    each kernel's mean runs over the counting windows only:

    .. math::
        O_k(m) = \{o : n_o \ge f \textstyle\prod_a k_a\}, \qquad
        L = \sum_k w_k \Big( 1 - \frac{1}{C |O_k(m)|} \sum_{c} \sum_{o \in O_k(m)} \mathrm{ncc}^2_{k,c,o} \Big)

    with :math:`f` = ``mask_fraction``. Values outside the mask never enter any statistic and get no gradient. With
    :math:`f = 1` exactly the windows entirely inside the mask count; for a box mask whose corner is a multiple of
    every stride this is the loss of the images cropped to the box (same explicit windows). With the paper's rule
    (``kernel_sizes=None``) the windows still follow the image size, not the mask's extent.

    Args:
        spatial_dims: number of spatial dims, 1, 2 or 3 (default 3).
        kernel_sizes: ``None`` (default): the paper's rule at forward time; then ``kernel_weights``, ``strides`` and
            ``dilations`` must be ``None``. Otherwise an int (one cubic kernel) or one entry per kernel, each an int
            (cubic) or ``spatial_dims`` ints; even sizes are allowed. ``(9, 21, 41)`` is three cubic kernels;
            ``((9, 21, 41),)`` one anisotropic kernel.
        kernel_weights: one weight per kernel, ``>= 0``, summing to 1 within 1e-6 (not renormalised); ``None``:
            equal weights.
        strides: ``None`` (stride 1: every window position, as MONAI's LNCC; the paper's ``k/4`` stride comes only
            with ``kernel_sizes=None``), an int for all kernels, or one entry per kernel (int or per-axis ints).
        dilations: as ``strides``; ``None`` means dilation 1.
        smooth_nr: added to the squared cross term of each window (default 0).
        smooth_dr: added to the product of the window variances, as sums (default 1e-5, the authors' value).
        reduction: ``"mean"`` (default, over the batch), ``"sum"`` (over the batch) or ``"none"``: the per-sample loss,
            shape ``(B,)`` (as MONAI's ``GlobalMutualInformationLoss``; a per-voxel map as returned by MONAI's LNCC
            does not exist here, the kernels' windows lie on different grids).
        mask_fraction: with a ``mask`` at forward, the smallest fraction :math:`f \in (0, 1]` of a window's voxels
            that must lie in the mask for the window to count (default 0.5); unused without a mask.

    Raises:
        ValueError: invalid ``spatial_dims``, ``kernel_sizes``, ``kernel_weights``, ``strides``, ``dilations`` or
            ``reduction``, or ``mask_fraction`` outside ``(0, 1]`` (at construction); at forward, inputs of different
            shapes or of the wrong number of spatial dims, a dilated kernel larger than the image, an invalid mask
            (shape, not binary, NaN, no voxel selected in a sample), or a kernel with no counting window in a sample.
        TypeError: non-integer kernel sizes, strides or dilations; non-floating inputs; a mask that is not a tensor.

    Example::

        import torch
        from monai_avsm.losses import MKLNCCLoss

        loss_fn = MKLNCCLoss(spatial_dims=3)  # the paper's windows for the input size
        pred = torch.rand(2, 1, 80, 192, 192, requires_grad=True)  # e.g. the warped moving image
        target = torch.rand(2, 1, 80, 192, 192)
        loss = loss_fn(pred, target)  # k=20 (stride 5) and k=40 (stride 10), dilation 2, weights 0.3 / 0.7
        loss.backward()

        # a dense single-kernel LNCC, like MONAI's with kernel_size=9 (but valid windows, loss in [0, 1])
        dense = MKLNCCLoss(spatial_dims=3, kernel_sizes=9)

        # only the windows with at least half of their voxels in a fixed-image mask (B or 1, 1, *S)
        mask = torch.zeros(1, 1, 80, 192, 192, dtype=torch.bool)
        mask[..., 10:70, 20:170, 20:170] = True
        masked = loss_fn(pred, target, mask=mask)
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        kernel_sizes: IntOrTuple | Sequence[IntOrTuple] | None = None,
        kernel_weights: Sequence[float] | None = None,
        strides: IntOrTuple | Sequence[IntOrTuple] | None = None,
        dilations: IntOrTuple | Sequence[IntOrTuple] | None = None,
        smooth_nr: float = 0.0,
        smooth_dr: float = 1e-5,
        reduction: LossReduction | str = LossReduction.MEAN,
        mask_fraction: float = 0.5,
    ) -> None:
        super().__init__(reduction=parse_reduction(reduction, "MKLNCCLoss"))
        if isinstance(spatial_dims, bool) or spatial_dims not in (1, 2, 3):
            raise ValueError(f"MKLNCCLoss: 'spatial_dims' must be 1, 2 or 3, got {spatial_dims!r}.")
        self.spatial_dims = int(spatial_dims)
        self.settings: LNCCSettings | None = None
        if kernel_sizes is None:
            check_rule_options(kernel_weights, strides, dilations, "MKLNCCLoss")
        else:
            self.settings = parse_lncc_settings(
                self.spatial_dims, kernel_sizes, kernel_weights, strides, dilations, caller="MKLNCCLoss"
            )
        self.smooth_nr, self.smooth_dr = check_smooth(smooth_nr, smooth_dr, "MKLNCCLoss")
        self.mask_fraction = check_mask_fraction(mask_fraction, "MKLNCCLoss")

    def settings_for(self, spatial_shape: Sequence[int]) -> LNCCSettings:
        """The windows used for images of ``spatial_shape`` (the paper's rule when ``kernel_sizes`` is ``None``)."""
        if self.settings is not None:
            return self.settings
        return default_lncc_settings(spatial_shape)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            pred: ``(B, C, *S)``, e.g. the warped moving image.
            target: ``(B, C, *S)``, the fixed image.
            mask: ``None`` (every voxel) or a binary fixed-image mask ``(B, 1, *S)`` or ``(1, 1, *S)``, broadcast over
                the channels (bool, integer or floating with values 0 and 1 only; not differentiated).

        Returns:
            a scalar for ``"mean"`` and ``"sum"``, ``(B,)`` for ``"none"``; float32 (float64 for float64 inputs).

        Raises:
            ValueError: if the shapes differ, the number of spatial dims is not ``spatial_dims``, a dilated kernel
                does not fit in ``S``, the mask is invalid (shape, not binary, NaN, empty for a sample), or a kernel
                has no window with at least ``mask_fraction`` of its voxels in the mask for a sample.
        """
        check_image_pair(pred, target, "MKLNCCLoss")
        if pred.ndim - 2 != self.spatial_dims:
            raise ValueError(
                f"MKLNCCLoss: 'pred' must have {self.spatial_dims} spatial dims ('spatial_dims'), i.e. shape "
                f"(B, C, {', '.join('S' + str(i) for i in range(self.spatial_dims))}), got shape {tuple(pred.shape)}."
            )
        loss = mk_lncc(
            pred,
            target,
            smooth_nr=self.smooth_nr,
            smooth_dr=self.smooth_dr,
            mask=mask,
            mask_fraction=self.mask_fraction,
            settings=self.settings_for(pred.shape[2:]),
            caller="MKLNCCLoss",
        )  # (B,)
        return reduce_loss(loss, self.reduction)

    def extra_repr(self) -> str:
        if self.settings is None:
            windows = "kernel_sizes=None (paper rule)"
        else:
            s = self.settings
            windows = (
                f"kernel_sizes={s.kernel_sizes}, kernel_weights={s.kernel_weights}, strides={s.strides}, "
                f"dilations={s.dilations}"
            )
        return (
            f"spatial_dims={self.spatial_dims}, {windows}, smooth_nr={self.smooth_nr}, smooth_dr={self.smooth_dr}, "
            f"reduction={self.reduction!r}, mask_fraction={self.mask_fraction}"
        )
