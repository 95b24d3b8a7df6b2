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
"""Shared base of the per-sample metrics in this package (the ``aggregate`` of MONAI's ``RegressionMetric``)."""

from __future__ import annotations

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = ["PerSampleMetric"]


class PerSampleMetric(CumulativeIterationMetric):
    """A cumulative metric whose ``_compute_tensor`` returns ``(B, C)`` values (one per batch item and channel, e.g.
    ``C = 1`` for a fold count, one per label for Dice), reduced by :meth:`aggregate`.

    Args:
        reduction: MONAI ``MetricReduction`` applied over not-NaN values (default mean).
        get_not_nans: whether :meth:`aggregate` also returns the not-NaN count.
    """

    def __init__(self, reduction: MetricReduction | str = MetricReduction.MEAN, get_not_nans: bool = False) -> None:
        super().__init__()
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    def aggregate(self, reduction: MetricReduction | str | None = None):
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"{type(self).__name__}: nothing to aggregate; call the metric on a batch first.")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f
