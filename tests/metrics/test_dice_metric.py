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
"""DicePerLabelMetric (monai_avsm.metrics.dice_metric): the numbers of MONAI's DiceMetric (include_background=False,
ignore_empty=False) on label maps of different sizes, accumulated and reduced like MONAI's metrics."""

from __future__ import annotations

import unittest

import torch
from monai.metrics import DiceMetric

from monai_avsm.metrics import DicePerLabelMetric


class TestDicePerLabelMetric(unittest.TestCase):
    def test_same_as_monai_on_pairs_of_different_sizes(self):
        g = torch.Generator().manual_seed(0)
        pairs = [
            (torch.randint(0, 3, (1, 9, 8, 7), generator=g), torch.randint(0, 3, (1, 9, 8, 7), generator=g)),
            (torch.randint(0, 3, (1, 5, 6, 4), generator=g), torch.randint(0, 2, (1, 5, 6, 4), generator=g)),
        ]  # the second target lacks label 2: Dice 0 (MONAI's ignore_empty=False)
        ours = DicePerLabelMetric(num_classes=3)
        theirs = DiceMetric(include_background=False, num_classes=3, ignore_empty=False, reduction="mean")
        ours([p for p, _ in pairs], [t for _, t in pairs])  # lists: one channel-first map per pair
        for p, t in pairs:
            theirs(p[None], t[None])
        buffer = ours.get_buffer()
        self.assertEqual(tuple(buffer.shape), (2, 2))
        self.assertEqual(buffer.dtype, torch.float64)
        self.assertEqual(float(buffer[1, 1]), 0.0)
        torch.testing.assert_close(buffer, theirs.get_buffer().double(), atol=1e-6, rtol=0)
        self.assertAlmostEqual(float(ours.aggregate()), float(theirs.aggregate()), places=6)
        ours(pairs[0][0][None], pairs[0][1][None])  # a batch tensor, accumulated
        self.assertEqual(tuple(ours.get_buffer().shape), (3, 2))
        torch.testing.assert_close(ours.aggregate("mean_batch").double(), ours.get_buffer().mean(0))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "'num_classes' must be >= 2"):
            DicePerLabelMetric(num_classes=1)
        with self.assertRaisesRegex(ValueError, "pass the reference label maps as 'y'"):
            DicePerLabelMetric(num_classes=3)(y_pred=torch.zeros(1, 1, 4, 4))
        with self.assertRaisesRegex(ValueError, "outside 0 .. 2"):
            DicePerLabelMetric(num_classes=3)(torch.full((1, 1, 4, 4), 5), torch.zeros(1, 1, 4, 4))


if __name__ == "__main__":
    unittest.main()
