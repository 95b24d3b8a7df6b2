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
"""dice_per_label against MONAI's compute_dice (include_background=False, ignore_empty=False) and by hand; stage_dice
per stage of a registration."""

from __future__ import annotations

import unittest

import torch
from monai.metrics import compute_dice
from monai.networks.utils import one_hot

from monai_avsm.metrics import dice_per_label, stage_dice


class TestDice(unittest.TestCase):
    def test_known_answer(self):
        p = torch.tensor([[0, 1, 1, 2]])
        t = torch.tensor([[0, 1, 2, 2]])
        # label 1: |P|=2, |G|=1, overlap 1 -> 2/3; label 2: |P|=1, |G|=2, overlap 1 -> 2/3; label 3: absent from both
        self.assertEqual(dice_per_label(p, t, 4), [2 / 3, 2 / 3, 1.0])
        self.assertEqual(dice_per_label(torch.tensor([3]), torch.tensor([0]), 4)[2], 0.0)  # absent from the target

    def test_same_as_monai(self):
        g = torch.Generator().manual_seed(0)
        for n in (2, 4):
            p = torch.randint(0, n, (1, 9, 8, 7), generator=g)
            t = torch.randint(0, n - 1, (1, 9, 8, 7), generator=g)  # the last label absent from the target
            ref = compute_dice(
                one_hot(p[None], n, dim=1), one_hot(t[None], n, dim=1), include_background=False, ignore_empty=False
            )[0]
            torch.testing.assert_close(torch.tensor(dice_per_label(p, t, n), dtype=ref.dtype), ref)

    def test_stage_dice(self):
        fixed = torch.tensor([[0, 1, 1, 2]])
        stages = {"identity": torch.tensor([[0, 1, 1, 2]]), "affine": torch.tensor([[0, 1, 2, 2]]), "avsm": fixed}
        out = stage_dice(stages, fixed, 3)
        self.assertEqual(list(out), ["identity", "affine", "avsm"])  # the stages' order
        self.assertEqual(out["identity"], [1.0, 1.0])
        self.assertEqual(out["affine"], dice_per_label(stages["affine"], fixed, 3))
        self.assertEqual(out["affine"], [2 / 3, 2 / 3])

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "different sizes"):
            dice_per_label(torch.zeros(3), torch.zeros(4), 2)
        with self.assertRaisesRegex(ValueError, "outside"):
            dice_per_label(torch.tensor([5]), torch.tensor([0]), 2)


if __name__ == "__main__":
    unittest.main()
