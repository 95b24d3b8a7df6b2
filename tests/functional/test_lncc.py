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
"""Tests of monai_avsm.functional.lncc: box sums against conv ones-kernels, per-window NCC² against explicit loops,
the paper's window rule, settings validation, global NCC."""

from __future__ import annotations

import itertools
import unittest

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_avsm.functional.box_sums import box_sums, valid_window_shape
from monai_avsm.functional.lncc import lncc_squared, mk_lncc
from monai_avsm.functional.ncc import global_ncc
from monai_avsm.functional.windows import default_lncc_settings, parse_lncc_settings, resolve_lncc_settings

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def conv_box_sums(x: torch.Tensor, k, s, d) -> torch.Tensor:
    """Window sums with a ones-kernel convolution (the authors' way)."""
    b, c = x.shape[:2]
    ndim = x.ndim - 2
    y = CONV[ndim](x.reshape(b * c, 1, *x.shape[2:]), torch.ones((1, 1, *k), dtype=x.dtype), stride=s, dilation=d)
    return y.reshape(b, c, *y.shape[2:])


def loop_ncc_squared(p: torch.Tensor, t: torch.Tensor, k, s, d, nr=0.0, dr=1e-5) -> torch.Tensor:
    """Squared NCC of every valid window by explicit loops over the windows (float64 reference)."""
    shape = p.shape[2:]
    counts = valid_window_shape(shape, k, s, d)
    out = torch.zeros(*p.shape[:2], *counts, dtype=torch.float64)
    for o in itertools.product(*[range(n) for n in counts]):
        idx = (Ellipsis,) + tuple(slice(oa * sa, oa * sa + (ka - 1) * da + 1, da) for oa, ka, sa, da in zip(o, k, s, d))
        i = p[idx].double().flatten(2)
        j = t[idx].double().flatten(2)
        i, j = i - i.mean(-1, keepdim=True), j - j.mean(-1, keepdim=True)
        cross, vi, vj = (i * j).sum(-1), (i * i).sum(-1), (j * j).sum(-1)
        out[(Ellipsis,) + o] = (cross * cross + nr) / (vi * vj + dr)
    return out


BOX_CASES = [
    # spatial shape, kernel, stride, dilation
    [(11,), (4,), (1,), (1,)],
    [(12,), (3,), (2,), (3,)],
    [(9, 10), (3, 3), (1, 1), (1, 1)],
    [(9, 10), (4, 2), (2, 3), (2, 1)],
    [(13, 7), (6, 1), (5, 1), (2, 1)],
    [(8, 7, 9), (2, 3, 4), (2, 1, 3), (2, 1, 1)],
    [(10, 11, 12), (4, 4, 4), (3, 3, 3), (2, 2, 2)],
    [(6, 6, 6), (6, 6, 6), (1, 1, 1), (1, 1, 1)],
    [(7, 9, 8), (3, 5, 2), (4, 1, 7), (3, 2, 4)],
]


class TestBoxSums(unittest.TestCase):
    @parameterized.expand(BOX_CASES)
    def test_equals_conv_ones_kernel(self, shape, k, s, d):
        x = torch.randn(2, 3, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        out = box_sums(x, k, s, d)
        expected = conv_box_sums(x, k, s, d)
        self.assertEqual(tuple(out.shape[2:]), valid_window_shape(shape, k, s, d))
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)

    def test_int_arguments_mean_every_axis(self):
        x = torch.randn(1, 2, 9, 8, dtype=torch.float64)
        torch.testing.assert_close(box_sums(x, 3, 2, 2), conv_box_sums(x, (3, 3), (2, 2), (2, 2)))

    def test_float32_input_keeps_dtype(self):
        x = torch.rand(1, 1, 16, 16, 16)
        out = box_sums(x, 5, 2, 2)
        self.assertEqual(out.dtype, torch.float32)
        torch.testing.assert_close(out, conv_box_sums(x.double(), (5,) * 3, (2,) * 3, (2,) * 3).float())

    @parameterized.expand([BOX_CASES[1], BOX_CASES[3], [(5, 4, 6), (2, 3, 2), (2, 1, 3), (2, 1, 2)]])
    def test_gradcheck(self, shape, k, s, d):
        x = torch.randn(1, 1, *shape, dtype=torch.float64, requires_grad=True)
        self.assertTrue(torch.autograd.gradcheck(lambda t: box_sums(t, k, s, d), (x,)))
        self.assertTrue(torch.autograd.gradgradcheck(lambda t: box_sums(t, k, s, d), (x,)))

    def test_ill_kernel(self):
        x = torch.rand(1, 1, 8, 8)
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            box_sums(x, (5, 5), 1, (2, 1))  # extent 9 > 8
        with self.assertRaisesRegex(ValueError, "kernel_size"):
            box_sums(x, (3, 3, 3))
        with self.assertRaisesRegex(ValueError, "stride"):
            box_sums(x, 3, 0)
        with self.assertRaisesRegex(ValueError, "'x'"):
            box_sums(torch.rand(4, 4), 3)


class TestDefaultLNCCSettings(unittest.TestCase):
    @parameterized.expand(
        [
            # shape, kernels, weights, strides, dilations (per kernel, cubic)
            [(80, 192, 192), (20, 40), (0.3, 0.7), (5, 10), (2, 2)],
            [(192, 192, 80), (20, 40), (0.3, 0.7), (5, 10), (2, 2)],
            [(64, 64), (16, 32), (0.3, 0.7), (4, 8), (2, 2)],
            [(32, 40), (16,), (1.0,), (4,), (1,)],
            [(63, 100), (31,), (1.0,), (8,), (1,)],
            [(200, 200, 150), (9, 18, 37), (0.1, 0.3, 0.6), (2, 4, 9), (2, 2, 2)],
            [(128, 128), (8, 16, 32), (0.1, 0.3, 0.6), (2, 4, 8), (2, 2, 2)],
            [(4, 4), (2,), (1.0,), (1,), (1,)],
        ]
    )
    def test_paper_rule(self, shape, kernels, weights, strides, dilations):
        s = default_lncc_settings(shape)
        n = len(shape)
        self.assertEqual(s.kernel_sizes, tuple((k,) * n for k in kernels))
        self.assertEqual(s.kernel_weights, weights)
        self.assertEqual(s.strides, tuple((v,) * n for v in strides))
        self.assertEqual(s.dilations, tuple((v,) * n for v in dilations))

    def test_rule_windows_always_fit(self):
        for size in range(4, 400):
            s = default_lncc_settings((size, size + 3))
            for k, d in zip(s.kernel_sizes, s.dilations):
                self.assertLessEqual((k[0] - 1) * d[0] + 1, size)
            resolve_lncc_settings((size, size + 3), None, None, None, None, caller="test")  # no error

    def test_weights_sum_to_one(self):
        for size in (10, 70, 300):
            self.assertAlmostEqual(sum(default_lncc_settings((size,) * 3).kernel_weights), 1.0, places=12)

    def test_ill_shape(self):
        with self.assertRaisesRegex(ValueError, "spatial_shape"):
            default_lncc_settings((3, 64))


class TestParseLNCCSettings(unittest.TestCase):
    def test_int_is_one_cubic_kernel(self):
        s = parse_lncc_settings(3, 9)
        self.assertEqual(s.kernel_sizes, ((9, 9, 9),))
        self.assertEqual(s.kernel_weights, (1.0,))
        self.assertEqual(s.strides, ((1, 1, 1),))
        self.assertEqual(s.dilations, ((1, 1, 1),))

    def test_per_kernel_and_per_axis(self):
        s = parse_lncc_settings(2, (4, (3, 5)), (0.25, 0.75), (2, (1, 3)), ((2, 1), 1))
        self.assertEqual(s.kernel_sizes, ((4, 4), (3, 5)))
        self.assertEqual(s.strides, ((2, 2), (1, 3)))
        self.assertEqual(s.dilations, ((2, 1), (1, 1)))

    def test_default_weights_are_equal(self):
        self.assertEqual(parse_lncc_settings(2, (3, 5, 7, 9)).kernel_weights, (0.25,) * 4)

    @parameterized.expand(
        [
            [dict(kernel_sizes=()), "kernel_sizes"],
            [dict(kernel_sizes=(0,)), "kernel_sizes"],
            [dict(kernel_sizes=((3, 3, 3),)), "kernel_sizes"],
            [dict(kernel_sizes=((1, 1),)), "kernel_sizes"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(0.3, 0.6)), "kernel_weights"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(1.5, -0.5)), "kernel_weights"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(1.0,)), "kernel_weights"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(float("nan"), 1.0)), "kernel_weights"],
            [dict(kernel_sizes=(3, 5), strides=(1, 2, 3)), "strides"],
            [dict(kernel_sizes=(3,), strides=(0,)), "strides"],
            [dict(kernel_sizes=(3,), dilations=((1, 2, 3),)), "dilations"],
        ]
    )
    def test_ill_settings(self, kwargs, name):
        with self.assertRaisesRegex(ValueError, name):
            parse_lncc_settings(2, **kwargs)

    def test_ill_types(self):
        with self.assertRaisesRegex(TypeError, "kernel_sizes"):
            parse_lncc_settings(2, (3.5,))
        with self.assertRaisesRegex(TypeError, "dilations"):
            parse_lncc_settings(2, (3,), dilations=(True,))

    def test_window_larger_than_image(self):
        with self.assertRaisesRegex(ValueError, r"kernel_sizes.*entry 1.*extent \(11, 11\).*\(10, 12\)"):
            resolve_lncc_settings((10, 12), (3, 6), None, None, (1, 2), caller="test")

    def test_none_kernel_sizes_with_other_options(self):
        with self.assertRaisesRegex(ValueError, "kernel_weights"):
            resolve_lncc_settings((10, 12), None, (1.0,), None, None, caller="test")


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
        torch.testing.assert_close(out, loop_ncc_squared(p, t, k, s, d), rtol=0, atol=1e-10)

    def test_smooth_terms(self):
        p = torch.rand(1, 1, 8, 8, dtype=torch.float64)
        t = torch.rand(1, 1, 8, 8, dtype=torch.float64)
        out = lncc_squared(p, t, 3, smooth_nr=0.1, smooth_dr=0.2)
        torch.testing.assert_close(out, loop_ncc_squared(p, t, (3, 3), (1, 1), (1, 1), 0.1, 0.2))

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


if __name__ == "__main__":
    unittest.main()
