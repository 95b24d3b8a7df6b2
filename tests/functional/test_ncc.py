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
"""Tests of monai_avsm.functional.ncc: the global NCC against its formula, its sign, and its optional mask (a project
extension): the NCC of cropped images for a box mask, and an ill mask."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.functional.ncc import global_ncc
from monai_avsm.losses import GlobalNCCLoss
from tests.utils import correlated_pair as _pair


class TestGlobalNCC(unittest.TestCase):
    def test_matches_formula(self):
        g = torch.Generator().manual_seed(4)
        p = torch.rand(2, 3, 7, 8, dtype=torch.float64, generator=g)
        t = p + torch.rand(p.shape, dtype=torch.float64, generator=g)
        x = p.flatten(2) - p.flatten(2).mean(-1, keepdim=True)
        y = t.flatten(2) - t.flatten(2).mean(-1, keepdim=True)
        expected = (x * y).mean(-1) / ((x * x).mean(-1).sqrt() * (y * y).mean(-1).sqrt() + 1e-5)
        torch.testing.assert_close(global_ncc(p, t), expected)

    def test_sign(self):
        p = torch.rand(1, 1, 9, 9, dtype=torch.float64)
        self.assertAlmostEqual(global_ncc(p, 2 * p + 1, smooth_dr=0.0).item(), 1.0, places=12)
        self.assertAlmostEqual(global_ncc(p, -p, smooth_dr=0.0).item(), -1.0, places=12)


class TestGlobalNCCMask(unittest.TestCase):
    def test_box_mask_equals_cropped_images(self):
        p, t = _pair((2, 2, 10, 12, 9), seed=15)
        box = (Ellipsis, slice(2, 8), slice(1, 10), slice(3, 9))
        mask = torch.zeros(1, 1, 10, 12, 9)
        mask[box] = 1
        t_bad = t.clone()
        t_bad[..., 0, :, :] = -100.0
        expected = global_ncc(p[box], t[box])
        torch.testing.assert_close(global_ncc(p, t_bad, mask=mask), expected, rtol=0, atol=1e-12)
        loss = GlobalNCCLoss(reduction="none")(p, t_bad, mask)
        torch.testing.assert_close(loss, 1.0 - expected.mean(1), rtol=0, atol=1e-12)
        torch.testing.assert_close(global_ncc(p, t, mask=torch.ones(2, 1, 10, 12, 9)), global_ncc(p, t))
        x = p.clone().requires_grad_(True)
        self.assertTrue(torch.autograd.gradcheck(lambda z: global_ncc(z, t, mask=mask), (x,), fast_mode=True))

    def test_ill_mask(self):
        with self.assertRaisesRegex(ValueError, "global_ncc: 'mask' must be binary"):
            global_ncc(torch.rand(1, 1, 6, 6), torch.rand(1, 1, 6, 6), mask=torch.full((1, 1, 6, 6), 0.5))


if __name__ == "__main__":
    unittest.main()
