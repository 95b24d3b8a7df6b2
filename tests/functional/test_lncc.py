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
"""Tests of monai_avsm.functional.lncc (paper eq. 2-3): per-window NCC² against the brute-force reference, mk_lncc
as the weighted sum of its kernels, the paper's rule, settings=, and the optional mask (a project extension): the loss
of cropped images for a box mask, all-ones masks, mask_fraction and gradients."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional.lncc import lncc_squared, mk_lncc
from monai_avsm.functional.windows import default_lncc_settings, parse_lncc_settings
from monai_avsm.losses import MKLNCCLoss
from tests.utils import brute_force_mk_lncc, brute_force_ncc_squared, random_mask
from tests.utils import correlated_pair as _pair

LNCC_CASES = [
    [(9, 10), (3, 3), (1, 1), (1, 1)],
    [(9, 10), (4, 2), (2, 3), (2, 1)],
    [(7, 8, 9), (2, 4, 3), (1, 2, 3), (2, 1, 2)],
    [(6, 7, 8), (3, 3, 3), (2, 2, 2), (1, 1, 1)],
]


class TestLNCCSquared(unittest.TestCase):
    @parameterized.expand(LNCC_CASES)
    def test_matches_loops(self, shape, k, s, d):
        g = torch.Generator().manual_seed(1)
        p = torch.randn(2, 2, *shape, dtype=torch.float64, generator=g) + 4.0
        t = 0.5 * p + torch.randn(p.shape, dtype=torch.float64, generator=g)
        out = lncc_squared(p, t, k, s, d)
        torch.testing.assert_close(out, brute_force_ncc_squared(p, t, k, s, d)[0], rtol=0, atol=1e-10)

    def test_smooth_terms(self):
        p = torch.rand(1, 1, 8, 8, dtype=torch.float64)
        t = torch.rand(1, 1, 8, 8, dtype=torch.float64)
        out = lncc_squared(p, t, 3, smooth_nr=0.1, smooth_dr=0.2)
        torch.testing.assert_close(out, brute_force_ncc_squared(p, t, (3, 3), (1, 1), (1, 1), 0.1, 0.2)[0])

    def test_float32_statistics_match_float64(self):
        g = torch.Generator().manual_seed(2)
        p = 1000.0 + 100.0 * torch.rand(1, 1, 24, 24, 24, dtype=torch.float64, generator=g)
        t = p + 50.0 * torch.rand(p.shape, dtype=torch.float64, generator=g)
        out32 = lncc_squared(p.float(), t.float(), 8, 2, 2)
        self.assertEqual(out32.dtype, torch.float32)
        torch.testing.assert_close(out32.double(), lncc_squared(p, t, 8, 2, 2), rtol=0, atol=1e-5)


class TestMKLNCC(unittest.TestCase):
    def test_weighted_sum_of_kernels(self):
        g = torch.Generator().manual_seed(3)
        p = torch.randn(3, 2, 10, 11, dtype=torch.float64, generator=g)
        t = p + torch.randn(p.shape, dtype=torch.float64, generator=g)
        a = lncc_squared(p, t, 3, 1, 1).flatten(1).mean(1)
        b = lncc_squared(p, t, (4, 2), (2, 3), (2, 1)).flatten(1).mean(1)
        out = mk_lncc(p, t, (3, (4, 2)), (0.4, 0.6), (1, (2, 3)), (1, (2, 1)))
        self.assertEqual(out.shape, (3,))
        torch.testing.assert_close(out, 0.4 * (1 - a) + 0.6 * (1 - b))

    def test_default_rule(self):
        p = torch.rand(2, 1, 20, 24, dtype=torch.float64)
        t = torch.rand(2, 1, 20, 24, dtype=torch.float64)
        s = default_lncc_settings((20, 24))  # k = 10, stride 2, dilation 1
        torch.testing.assert_close(mk_lncc(p, t), mk_lncc(p, t, *s))

    def test_settings_argument(self):
        g = torch.Generator().manual_seed(5)
        p = torch.randn(2, 2, 10, 11, dtype=torch.float64, generator=g)
        t = p + torch.randn(p.shape, dtype=torch.float64, generator=g)
        windows = ((3, (4, 2)), (0.4, 0.6), (1, (2, 3)), (1, (2, 1)))
        s = parse_lncc_settings(2, *windows)
        torch.testing.assert_close(mk_lncc(p, t, settings=s), mk_lncc(p, t, *windows), rtol=0, atol=0)
        rule = default_lncc_settings(p.shape[2:])
        torch.testing.assert_close(mk_lncc(p, t, settings=rule), mk_lncc(p, t), rtol=0, atol=0)
        mask = torch.ones(1, 1, 10, 11)
        torch.testing.assert_close(mk_lncc(p, t, mask=mask, settings=s), mk_lncc(p, t, *windows, mask=mask))
        with self.assertRaisesRegex(ValueError, r"mk_lncc: 'settings' sets the windows, but 'kernel_sizes'"):
            mk_lncc(p, t, 3, settings=s)
        with self.assertRaisesRegex(TypeError, "mk_lncc: 'settings' must be an LNCCSettings"):
            mk_lncc(p, t, settings=((3,), (1.0,), (1,), (1,)))
        # checked as explicit windows are, with the caller's name
        with self.assertRaisesRegex(ValueError, r"MKLNCCLoss: 'kernel_sizes' entry 0 .*extent \(12, 12\)"):
            mk_lncc(p, t, settings=parse_lncc_settings(2, 12), caller="MKLNCCLoss")

    def test_ill_shapes(self):
        with self.assertRaisesRegex(ValueError, "'pred' and 'target'"):
            mk_lncc(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9), 3)
        with self.assertRaisesRegex(ValueError, "kernel_sizes"):
            mk_lncc(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), 9)
        with self.assertRaisesRegex(TypeError, "pred"):
            mk_lncc(torch.ones(1, 1, 8, 8, dtype=torch.int64), torch.rand(1, 1, 8, 8), 3)


# masks (a project extension, not in the paper)


class TestMKLNCCMask(unittest.TestCase):
    @parameterized.expand(
        [
            # name, shape, box start, box stop, kernels, strides, dilations (box starts are multiples of the strides)
            ["2d", (2, 1, 20, 22), (4, 6), (16, 19), (3, (4, 2)), ((1, 2), 2), (1, (2, 1))],
            ["3d", (1, 2, 16, 18, 14), (2, 4, 4), (14, 16, 12), (3, 4), (2, 1), (1, 2)],
        ]
    )
    def test_box_mask_equals_cropped_images(self, _, shape, start, stop, kernels, strides, dilations):
        # the images agree inside the box and are made to disagree outside: the mask removes the disagreement
        p, t = _pair(shape, seed=3)
        box = (Ellipsis,) + tuple(slice(a, b) for a, b in zip(start, stop))
        g = torch.Generator().manual_seed(9)
        t_bad = torch.rand(shape, dtype=torch.float64, generator=g) * 10.0
        t_bad[box] = t[box]
        mask = torch.zeros(1, 1, *shape[2:], dtype=torch.bool)
        mask[box] = True
        kw = dict(kernel_sizes=kernels, strides=strides, dilations=dilations)
        masked = mk_lncc(p, t_bad, mask=mask, mask_fraction=1.0, **kw)
        cropped = mk_lncc(p[box].contiguous(), t[box].contiguous(), **kw)
        torch.testing.assert_close(masked, cropped, rtol=0, atol=1e-12)
        loss_fn = MKLNCCLoss(len(shape) - 2, reduction="none", mask_fraction=1.0, **kw)
        torch.testing.assert_close(loss_fn(p, t_bad, mask), cropped, rtol=0, atol=1e-12)
        # without the mask the disagreement counts
        self.assertTrue(bool((mk_lncc(p, t_bad, **kw) > cropped + 0.05).all()))
        # float32 inputs: the same up to float32 rounding
        torch.testing.assert_close(
            mk_lncc(p.float(), t_bad.float(), mask=mask, mask_fraction=1.0, **kw), cropped.float(), rtol=0, atol=1e-5
        )

    @parameterized.expand([[0.1], [0.5], [1.0]])
    def test_all_ones_mask_is_the_unmasked_loss(self, fraction):
        p, t = _pair((2, 2, 10, 12), seed=7)
        kw = dict(kernel_sizes=(3, 5), strides=(1, 2), dilations=(2, 1))
        ones = torch.ones(1, 1, 10, 12)
        torch.testing.assert_close(mk_lncc(p, t, mask=ones, mask_fraction=fraction, **kw), mk_lncc(p, t, **kw))
        # also with the paper's rule
        torch.testing.assert_close(mk_lncc(p, t, mask=ones > 0), mk_lncc(p, t))

    def test_mask_fraction_selects_windows(self):
        # a mask covering the left half: a smaller fraction counts more (partial) windows
        p, t = _pair((1, 1, 12, 12), seed=10)
        mask = torch.zeros(1, 1, 12, 12)
        mask[..., :, :6] = 1
        values = [float(mk_lncc(p, t, 4, mask=mask, mask_fraction=f)) for f in (0.25, 0.5, 1.0)]
        expected = [
            float(brute_force_mk_lncc(p, t, (4,), (1.0,), (1,), (1,), mask=mask, mask_fraction=f))
            for f in (0.25, 0.5, 1.0)
        ]
        self.assertEqual(len(set(values)), 3)
        for v, e in zip(values, expected):
            self.assertAlmostEqual(v, e, places=10)

    @parameterized.expand(
        [
            [(1, 1, 7, 8), dict(kernel_sizes=(3, 4), strides=(1, 2), dilations=(1, 2)), 0.5],
            [(2, 2, 6, 5), dict(kernel_sizes=((2, 3),), dilations=((2, 1),)), 0.8],
            [(1, 1, 5, 4, 5), dict(kernel_sizes=(2, 3), kernel_weights=(0.4, 0.6), strides=(1, 2)), 0.3],
        ]
    )
    def test_gradcheck(self, shape, kwargs, fraction):
        p, t = _pair(shape, seed=11)
        mask = random_mask((shape[0], 1, *shape[2:]), seed=12, p=0.75)
        p.requires_grad_(True)
        t.requires_grad_(True)

        def fn(x, y):
            return mk_lncc(x, y, mask=mask, mask_fraction=fraction, **kwargs)

        self.assertTrue(torch.autograd.gradcheck(fn, (p, t)))
        self.assertTrue(torch.autograd.gradcheck(lambda x: fn(x, t.detach()), (p,)))
        loss_fn = MKLNCCLoss(len(shape) - 2, mask_fraction=fraction, **kwargs)
        self.assertTrue(torch.autograd.gradcheck(lambda x: loss_fn(x, t.detach(), mask), (p,), fast_mode=True))


if __name__ == "__main__":
    unittest.main()
