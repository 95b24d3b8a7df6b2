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
"""Dice per foreground label as a MONAI cumulative metric (:func:`~monai_avsm.metrics.dice_per_label`, MONAI's
``compute_dice(include_background=False, ignore_empty=False)`` numbers), for label maps of any size: each pair of a
registration evaluation is measured on its own fixed image's native grid, so the items of a batch may differ in
shape (pass lists of channel-first label maps).

A module of its own because it imports MONAI, which :mod:`monai_avsm.metrics.dice` (used by the one-pair command)
must not.
"""

from __future__ import annotations

import torch
from monai.utils import MetricReduction

from monai_avsm.metrics.base import PerSampleMetric
from monai_avsm.metrics.dice import dice_per_label

__all__ = ["DicePerLabelMetric"]


class DicePerLabelMetric(PerSampleMetric):
    """Dice of every foreground label ``1 .. num_classes - 1`` of integer label maps, accumulated over iterations.

    Call with ``y_pred`` and ``y`` label maps ``(B, 1, *S)`` (or lists of ``(1, *S)`` maps of different sizes);
    :meth:`aggregate` reduces the ``(N, num_classes - 1)`` values (default: the mean over pairs and labels, MONAI's
    ``MeanDice``). ``get_buffer()`` (``engine.state.metric_details`` under ignite) holds the value per pair and label.

    Args:
        num_classes: labels including background (0).
        reduction, get_not_nans: MONAI metric reduction.

    Example::

        >>> metric = DicePerLabelMetric(num_classes=3)
        >>> metric(y_pred=warped_moving_label, y=fixed_label)
        >>> metric.aggregate(), metric.get_buffer()  # mean Dice, (pairs, 2)
    """

    def __init__(
        self, num_classes: int, reduction: MetricReduction | str = MetricReduction.MEAN, get_not_nans: bool = False
    ) -> None:
        super().__init__(reduction, get_not_nans)
        if int(num_classes) < 2:
            raise ValueError(
                f"DicePerLabelMetric: 'num_classes' must be >= 2 (background + labels), got {num_classes}."
            )
        self.num_classes = int(num_classes)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        if y is None:
            raise ValueError("DicePerLabelMetric: pass the reference label maps as 'y'.")
        if y_pred.shape[0] != y.shape[0]:
            raise ValueError(
                f"DicePerLabelMetric: 'y_pred' and 'y' must hold the same number of items, got {y_pred.shape[0]} and "
                f"{y.shape[0]}."
            )
        rows = [dice_per_label(p, t, self.num_classes) for p, t in zip(y_pred, y)]
        return torch.tensor(rows, dtype=torch.float64, device=y_pred.device)
