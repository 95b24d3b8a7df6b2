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
"""Tests of monai_avsm.functional.windows: the paper's window rule, settings validation, fit checks."""

from __future__ import annotations

import unittest

from parameterized import parameterized

from monai_avsm.functional.windows import (
    default_lncc_settings,
    paper_lncc_stride,
    parse_lncc_settings,
    resolve_lncc_settings,
)


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

    def test_paper_stride(self):
        self.assertEqual([paper_lncc_stride(k) for k in (1, 2, 3, 4, 7, 8, 20, 37, 40)], [1, 1, 1, 1, 2, 2, 5, 9, 10])


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


if __name__ == "__main__":
    unittest.main()
