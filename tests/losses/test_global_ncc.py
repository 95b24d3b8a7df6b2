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
"""Tests of GlobalNCCLoss: 1 - NCC (not squared), as the authors' affine warm-up loss."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.losses import GlobalNCCLoss


def authors_ncc_loss(p: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """The authors' NCCLoss as described in the reference notes: per sample, all voxels flattened, 1 - mean NCC."""
    x = p.reshape(p.shape[0], -1)
    y = t.reshape(t.shape[0], -1)
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    ncc = (x * y).mean(1) / (torch.sqrt((x * x).mean(1) * (y * y).mean(1)) + eps)
    return 1 - ncc.mean()


def _pair(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(shape, dtype=dtype, generator=g)
    return p, 0.5 * p + torch.rand(shape, dtype=dtype, generator=g)


class TestGlobalNCCLoss(unittest.TestCase):
    @parameterized.expand([[(2, 1, 9, 10)], [(3, 1, 5, 6, 7)]])
    def test_matches_authors_loss_single_channel(self, shape):
        p, t = _pair(shape)
        torch.testing.assert_close(GlobalNCCLoss(smooth_dr=1e-7)(p, t), authors_ncc_loss(p, t))

    def test_known_values(self):
        p, _ = _pair((2, 1, 12, 12))
        loss_fn = GlobalNCCLoss(smooth_dr=0.0)
        self.assertAlmostEqual(loss_fn(p, 3.0 * p - 1.0).item(), 0.0, places=12)
        self.assertAlmostEqual(loss_fn(p, -2.0 * p + 5.0).item(), 2.0, places=12)
        self.assertLess(GlobalNCCLoss()(p, p).item(), 1e-3)

    def test_channels_are_averaged(self):
        p, t = _pair((2, 3, 8, 8))
        per_channel = GlobalNCCLoss(reduction="none")(p.reshape(6, 1, 8, 8), t.reshape(6, 1, 8, 8)).reshape(2, 3)
        torch.testing.assert_close(GlobalNCCLoss(reduction="none")(p, t), per_channel.mean(1))

    def test_reductions(self):
        p, t = _pair((4, 1, 8, 8))
        none = GlobalNCCLoss(reduction="none")(p, t)
        self.assertEqual(none.shape, (4,))
        torch.testing.assert_close(GlobalNCCLoss(reduction="sum")(p, t), none.sum())
        torch.testing.assert_close(GlobalNCCLoss()(p, t), none.mean())

    def test_gradcheck(self):
        p, t = _pair((2, 2, 5, 6))
        self.assertTrue(torch.autograd.gradcheck(GlobalNCCLoss(), (p.requires_grad_(), t.requires_grad_())))

    def test_constant_image_is_finite(self):
        c = torch.full((1, 1, 8, 8), 2.0, requires_grad=True)
        p, _ = _pair((1, 1, 8, 8), dtype=torch.float32)
        loss = GlobalNCCLoss()(c, p)
        loss.backward()
        self.assertEqual(loss.item(), 1.0)
        self.assertTrue(bool(torch.isfinite(c.grad).all()))

    @parameterized.expand([[torch.float16], [torch.bfloat16]])
    def test_half_precision_inputs_use_float32_statistics(self, dtype):
        p, t = _pair((2, 1, 16, 16), dtype=torch.float32)
        loss = GlobalNCCLoss()(p.to(dtype), t.to(dtype))
        self.assertEqual(loss.dtype, torch.float32)
        torch.testing.assert_close(loss, GlobalNCCLoss()(p.to(dtype).float(), t.to(dtype).float()))

    def test_ill_opts(self):
        with self.assertRaisesRegex(ValueError, "reduction"):
            GlobalNCCLoss(reduction="avg")
        with self.assertRaisesRegex(ValueError, "smooth_dr"):
            GlobalNCCLoss(smooth_dr=-1)
        with self.assertRaisesRegex(ValueError, "'pred' and 'target'"):
            GlobalNCCLoss()(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))

    def test_extra_repr(self):
        self.assertIn("reduction='sum'", repr(GlobalNCCLoss(reduction="sum")))


if __name__ == "__main__":
    unittest.main()
