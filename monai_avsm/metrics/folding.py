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
"""Folding of transformation maps: determinant of the Jacobian, fold count and mean |det| over folds (paper §3,
method spec §6), as a function and a MONAI ``CumulativeIterationMetric``. MONAI has no folding metric."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import MetricReduction, look_up_option

from monai_avsm.functional.jacobian import (
    fold_statistics,
    jacobian_determinant,
    jacobian_determinant_ddf,
    jacobian_diagonal_product,
)
from monai_avsm.metrics.base import PerSampleMetric
from monai_avsm.utils.enums import MapSpace
from monai_avsm.utils.validation import check_finite

__all__ = ["compute_folds", "FoldingMetric"]

_VARIANTS = ("determinant", "diagonal")
_STATISTICS = ("count", "fraction", "mean_abs")


def compute_folds(
    field: torch.Tensor,
    space: MapSpace | str = MapSpace.NORMALIZED,
    margin: int | Sequence[int] = 0,
    variant: str = "determinant",
) -> dict[str, torch.Tensor]:
    """Fold statistics of a map or voxel DDF, per batch item.

    Args:
        field: ``(B, D, *S)``: a normalised pull-back map (``space="normalized"``) or a MONAI voxel DDF
            (``space="voxel"``).
        space: :class:`~monai_avsm.utils.enums.MapSpace` of ``field``.
        margin: voxels excluded at both ends of every axis (one value or one per axis); 0 = whole volume.
        variant: ``"determinant"`` (default: the true determinant of the Jacobian) or ``"diagonal"`` (the product of
            the diagonal partial derivatives, what the authors' code reported; maps only).

    Returns:
        ``{"count", "fraction", "mean_abs"}``, each ``(B,)``: voxels with a negative value, their fraction of the
        considered volume, and their mean absolute value (0 where there is no fold).
    """
    space = look_up_option(space, MapSpace)
    variant = look_up_option(variant, _VARIANTS)
    check_finite(field, "field", "compute_folds")
    if variant == "diagonal":
        if space != MapSpace.NORMALIZED:
            raise ValueError(
                "compute_folds: variant='diagonal' is defined for normalised maps only (space='normalized')."
            )
        det = jacobian_diagonal_product(field)
    elif space == MapSpace.NORMALIZED:
        det = jacobian_determinant(field)
    else:
        det = jacobian_determinant_ddf(field)
    return fold_statistics(det, margin)


class FoldingMetric(PerSampleMetric):
    """Folding of predicted maps, accumulated over iterations (a MONAI cumulative metric).

    Args:
        statistic: ``"count"`` (default: voxels with det J <= 0, :func:`~monai_avsm.functional.fold_mask`),
            ``"fraction"`` or ``"mean_abs"`` (mean |det J| over the folded voxels).
        space, margin, variant: as in :func:`compute_folds`.
        reduction, get_not_nans: MONAI metric reduction (default mean over the batch).

    Call with ``y_pred`` = maps ``(B, D, *S)`` (``y`` is ignored); :meth:`aggregate` reduces the ``(B, 1)`` values.

    Example::

        >>> metric = FoldingMetric(margin=5)
        >>> metric(y_pred=phi)
        >>> metric.aggregate()
    """

    def __init__(
        self,
        statistic: str = "count",
        space: MapSpace | str = MapSpace.NORMALIZED,
        margin: int | Sequence[int] = 0,
        variant: str = "determinant",
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction, get_not_nans)
        self.statistic = look_up_option(statistic, _STATISTICS)
        self.space = look_up_option(space, MapSpace)
        self.variant = look_up_option(variant, _VARIANTS)
        self.margin = margin

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        stats = compute_folds(y_pred, self.space, self.margin, self.variant)
        return stats[self.statistic].unsqueeze(1)
