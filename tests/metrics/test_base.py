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
"""PerSampleMetric (monai_avsm.metrics.base): MONAI's reduction of the (B, C) values of every call."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.metrics.base import PerSampleMetric


class _Sum(PerSampleMetric):
    """The sum over the spatial axes of each channel: (B, C)."""

    def _compute_tensor(self, y_pred, y=None, **kwargs):
        return y_pred.flatten(2).sum(-1)


class TestPerSampleMetric(unittest.TestCase):
    def test_accumulates_and_reduces(self):
        metric = _Sum()
        metric(torch.ones(2, 3, 4))
        metric(torch.full((1, 3, 4), 2.0))
        torch.testing.assert_close(metric.aggregate("none"), torch.tensor([[4.0] * 3, [4.0] * 3, [8.0] * 3]))
        self.assertAlmostEqual(float(metric.aggregate()), 16 / 3, places=6)
        torch.testing.assert_close(metric.aggregate("mean_channel"), torch.tensor([4.0, 4.0, 8.0]))
        counting = _Sum(get_not_nans=True)
        counting(torch.ones(1, 2, 3))
        value, not_nans = counting.aggregate()
        self.assertEqual((float(value), float(not_nans)), (3.0, 1.0))  # one item without NaN

    def test_nothing_to_aggregate(self):
        with self.assertRaisesRegex(ValueError, "_Sum: nothing to aggregate"):
            _Sum().aggregate()


if __name__ == "__main__":
    unittest.main()
