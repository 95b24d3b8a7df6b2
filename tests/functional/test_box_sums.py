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
"""Tests of monai_avsm.functional.box_sums: box sums against conv ones-kernels (values, shapes, dtypes, gradients to
second order, errors) and the five window moments."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional.box_sums import box_sums, valid_window_shape, window_moments
from tests.utils import conv_box_sums

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


class TestWindowMoments(unittest.TestCase):
    def test_equals_conv_sums_of_the_centred_quantities(self):
        g = torch.Generator().manual_seed(7)
        p = torch.randn(2, 2, 9, 10, 8, dtype=torch.float64, generator=g) + 3.0
        t = 0.5 * p + torch.randn(p.shape, dtype=torch.float64, generator=g)
        windows = (((3, 4, 2), (1, 2, 3), (2, 1, 2)), ((2, 2, 2), (2, 2, 2), (1, 1, 1)))
        for center in (True, False):
            x = p - p.mean(dim=(2, 3, 4), keepdim=True) if center else p
            y = t - t.mean(dim=(2, 3, 4), keepdim=True) if center else t
            moments = window_moments(p, t, windows, torch.float64, center=center)
            for (k, s, d), m in zip(windows, moments):
                self.assertEqual(tuple(m.shape), (5, 2, 2, *valid_window_shape(p.shape[2:], k, s, d)))
                for q, quantity in enumerate((x, y, x * x, y * y, x * y)):
                    torch.testing.assert_close(m[q], conv_box_sums(quantity, k, s, d), rtol=0, atol=1e-10)

    def test_gradcheck(self):
        g = torch.Generator().manual_seed(8)
        p = torch.randn(1, 1, 6, 7, dtype=torch.float64, generator=g).requires_grad_(True)
        t = torch.randn(1, 1, 6, 7, dtype=torch.float64, generator=g).requires_grad_(True)
        windows = (((3, 2), (1, 2), (2, 1)), ((2, 3), (2, 1), (1, 2)))

        # every moment of every setting, with respect to both images (first derivatives only)
        self.assertTrue(torch.autograd.gradcheck(lambda x, y: window_moments(x, y, windows, torch.float64), (p, t)))


if __name__ == "__main__":
    unittest.main()
