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
"""Tests of MKLNCCLoss (paper eq. 2-3): brute-force and conv references, invariances, gradients, dtypes, the paper's
default windows, reductions and every ill-option error."""

from __future__ import annotations

import itertools
import math
import unittest

import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_avsm.functional.lncc import default_lncc_settings, mk_lncc
from monai_avsm.losses import MKLNCCLoss
from tests.utils import correlated_pair as _pair


def _per_axis(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def brute_force_mk_lncc(p, t, kernels, weights, strides, dilations, nr=0.0, dr=1e-5):
    """mk-LNCC per sample by explicit Python loops over every window, in float64."""
    p, t = p.double(), t.double()
    b, c, *shape = p.shape
    n = len(shape)
    loss = torch.zeros(b, dtype=torch.float64)
    for k, w, s, d in zip(kernels, weights, strides, dilations):
        k, s, d = _per_axis(k, n), _per_axis(s, n), _per_axis(d, n)
        counts = [(shape[a] - (k[a] - 1) * d[a] - 1) // s[a] + 1 for a in range(n)]
        total = torch.zeros(b, c, dtype=torch.float64)
        for o in itertools.product(*[range(m) for m in counts]):
            idx = (Ellipsis,) + tuple(slice(o[a] * s[a], o[a] * s[a] + (k[a] - 1) * d[a] + 1, d[a]) for a in range(n))
            i, j = p[idx].reshape(b, c, -1), t[idx].reshape(b, c, -1)
            i, j = i - i.mean(-1, keepdim=True), j - j.mean(-1, keepdim=True)
            cross = (i * j).sum(-1)
            total += (cross * cross + nr) / ((i * i).sum(-1) * (j * j).sum(-1) + dr)
        loss += w * (1.0 - total.mean(1) / math.prod(counts))
    return loss


def conv_mk_lncc(p, t, kernels, weights, strides, dilations, dr=1e-5):
    """mk-LNCC with ones-kernel convolutions (strided, dilated), as the authors' code computes it."""
    b, c, *shape = p.shape
    n = len(shape)
    conv = {2: F.conv2d, 3: F.conv3d}[n]
    loss = 0.0
    for k, w, s, d in zip(kernels, weights, strides, dilations):
        k = _per_axis(k, n)
        stack = torch.cat([p, t, p * p, t * t, p * t], 0).reshape(5 * b * c, 1, *shape)
        sums = conv(stack, torch.ones(1, 1, *k, dtype=p.dtype), stride=s, dilation=d).reshape(5, b, c, -1)
        si, st, sii, stt, sit = sums
        vol = math.prod(k)
        cross = sit - si * st / vol
        ncc2 = cross * cross / ((sii - si * si / vol) * (stt - st * st / vol) + dr)
        loss = loss + w * (1.0 - ncc2.flatten(1).mean(1))
    return loss


REFERENCE_CASES = [
    # name, input shape, kernel_sizes, kernel_weights, strides, dilations
    ["2d_odd", (2, 1, 9, 10), (3,), (1.0,), None, None],
    ["2d_even_strided_dilated", (2, 2, 12, 11), (4, 2), (0.3, 0.7), (2, 1), (2, 3)],
    ["2d_per_axis", (1, 3, 10, 13), ((3, 5), (2, 6)), (0.5, 0.5), ((1, 2), (3, 1)), ((2, 1), (1, 2))],
    ["3d_odd", (2, 1, 7, 8, 6), (3,), (1.0,), (2,), (1,)],
    ["3d_even_multi_kernel", (2, 2, 9, 8, 10), (2, 4), (0.25, 0.75), (1, 2), (2, 2)],
    ["3d_per_axis", (1, 2, 8, 9, 7), ((2, 3, 4), (3, 2, 2)), (0.6, 0.4), ((1, 2, 3), 2), ((2, 1, 1), (1, 3, 2))],
]


class TestMKLNCCLossReference(unittest.TestCase):
    @parameterized.expand(REFERENCE_CASES)
    def test_matches_brute_force(self, _, shape, kernels, weights, strides, dilations):
        p, t = _pair(shape)
        loss = MKLNCCLoss(len(shape) - 2, kernels, weights, strides, dilations, reduction="none")(p, t)
        n = len(shape) - 2
        s = strides if strides is not None else (1,) * len(kernels)
        d = dilations if dilations is not None else (1,) * len(kernels)
        expected = brute_force_mk_lncc(p, t, kernels, weights, s, d)
        self.assertEqual(loss.shape, (shape[0],))
        torch.testing.assert_close(loss, expected, rtol=0, atol=1e-6)
        # also against ones-kernel convolutions (per-axis strides and dilations as tuples)
        s = [_per_axis(v, n) for v in s]
        d = [_per_axis(v, n) for v in d]
        torch.testing.assert_close(loss, conv_mk_lncc(p, t, kernels, weights, s, d), rtol=0, atol=1e-6)

    def test_paper_windows_match_conv(self):
        p, t = _pair((1, 1, 64, 70, 66), seed=1, dtype=torch.float32)
        s = default_lncc_settings(p.shape[2:])  # k = 16 / 32, stride 4 / 8, dilation 2
        self.assertEqual([k[0] for k in s.kernel_sizes], [16, 32])
        loss = MKLNCCLoss()(p, t)
        expected = conv_mk_lncc(p.double(), t.double(), *s)
        torch.testing.assert_close(loss.double(), expected[0], rtol=0, atol=1e-5)


class TestMKLNCCLossProperties(unittest.TestCase):
    def test_identical_images_give_zero_loss(self):
        p, _ = _pair((2, 1, 16, 16, 16))
        self.assertLess(MKLNCCLoss(kernel_sizes=(3, 6), strides=(1, 2), dilations=(1, 2))(p, p).item(), 1e-5)
        self.assertLess(MKLNCCLoss(kernel_sizes=5, smooth_dr=1e-12)(p, p).item(), 1e-12)
        self.assertLess(MKLNCCLoss()(p.float(), p.float()).item(), 1e-5)

    @parameterized.expand([[2.5, 3.0], [-0.5, -7.0], [-3.0, 100.0], [1e-3, 0.0]])
    def test_invariant_to_affine_intensity(self, a, b):
        p, t = _pair((2, 2, 10, 11, 9))
        loss_fn = MKLNCCLoss(kernel_sizes=(3, 4), strides=(1, 2), dilations=(1, 2), smooth_dr=0.0)
        torch.testing.assert_close(loss_fn(a * p + b, t), loss_fn(p, t), rtol=0, atol=1e-10)
        torch.testing.assert_close(loss_fn(p, a * t + b), loss_fn(p, t), rtol=0, atol=1e-10)

    def test_range(self):
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            p, t = torch.rand(2, 1, 20, 20, generator=g), torch.rand(2, 1, 20, 20, generator=g)
            loss = MKLNCCLoss(2, reduction="none")(p, t)
            self.assertTrue(bool(((loss >= 0) & (loss <= 1)).all()), loss)
            self.assertGreater(loss.min().item(), 0.5)  # unrelated noise: ncc² is small

    @parameterized.expand(
        [
            [(1, 1, 7, 8), dict(kernel_sizes=(3, 4), strides=(1, 2), dilations=(1, 2))],
            [(2, 2, 6, 7), dict(kernel_sizes=((2, 3),), dilations=((2, 1),))],
            [(1, 1, 4, 5, 6), dict(kernel_sizes=(2, 3), kernel_weights=(0.4, 0.6), strides=(1, 2), dilations=(2, 1))],
            [(1, 1, 6, 7, 6), dict()],  # the paper's rule: k = 3, stride 1, dilation 1
        ]
    )
    def test_gradcheck(self, shape, kwargs):
        p, t = _pair(shape, seed=2)
        p.requires_grad_(True)
        t.requires_grad_(True)
        loss_fn = MKLNCCLoss(len(shape) - 2, **kwargs)
        self.assertTrue(torch.autograd.gradcheck(loss_fn, (p, t)))
        # gradient with respect to one input only (the usual case: the target is fixed)
        self.assertTrue(torch.autograd.gradcheck(lambda x: loss_fn(x, t.detach()), (p,), fast_mode=True))

    def test_constant_regions_are_finite(self):
        p, _ = _pair((1, 1, 12, 12, 12))
        p[..., :6, :, :] = 1.5  # a constant half
        t = torch.full_like(p, 3.0)  # a constant image
        for target in (t, p.detach().clone()):
            x = p.clone().requires_grad_(True)
            y = target.clone().requires_grad_(True)
            loss = MKLNCCLoss(kernel_sizes=(3, 4), strides=(1, 2), dilations=(1, 2))(x, y)
            loss.backward()
            self.assertTrue(bool(torch.isfinite(loss)))
            self.assertTrue(bool(torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()))
        # both constant: no correlation anywhere, the loss is 1
        c = torch.ones(1, 1, 8, 8, requires_grad=True)
        loss = MKLNCCLoss(2, kernel_sizes=3)(c, torch.zeros(1, 1, 8, 8))
        loss.backward()
        self.assertEqual(loss.item(), 1.0)
        self.assertTrue(bool(torch.isfinite(c.grad).all()))

    @parameterized.expand([[torch.float16], [torch.bfloat16]])
    def test_half_precision_inputs_use_float32_statistics(self, dtype):
        p, t = _pair((1, 1, 32, 32, 32), seed=3, dtype=torch.float32)
        p16, t16 = p.to(dtype).requires_grad_(True), t.to(dtype)
        loss = MKLNCCLoss()(p16, t16)
        self.assertEqual(loss.dtype, torch.float32)
        expected = MKLNCCLoss()(p16.detach().float(), t16.float())
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        loss.backward()
        self.assertEqual(p16.grad.dtype, dtype)
        self.assertTrue(bool(torch.isfinite(p16.grad.float()).all()))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            self.assertEqual(MKLNCCLoss()(p, t).dtype, torch.float32)

    def test_float64_stays_float64(self):
        p, t = _pair((1, 1, 16, 16))
        self.assertEqual(MKLNCCLoss(2)(p, t).dtype, torch.float64)

    def test_image_sized_window_is_global_squared_ncc(self):
        # one window as large as the image: the loss is 1 - NCC^2 of the whole image (its speed is in benchmarks)
        p, t = _pair((1, 1, 24, 24, 24), dtype=torch.float32)
        full = MKLNCCLoss(kernel_sizes=24)(p, t)
        x = p.flatten(1) - p.flatten(1).mean(1, keepdim=True)
        y = t.flatten(1) - t.flatten(1).mean(1, keepdim=True)
        ncc2 = (x * y).sum(1) ** 2 / ((x * x).sum(1) * (y * y).sum(1) + 1e-5)
        torch.testing.assert_close(full, 1 - ncc2.mean(), rtol=0, atol=1e-5)


class TestMKLNCCLossOptions(unittest.TestCase):
    @parameterized.expand(
        [
            [(80, 192, 192), (20, 40), (5, 10), (2, 2)],
            [(64, 64), (16, 32), (4, 8), (2, 2)],
            [(32, 40), (16,), (4,), (1,)],
            [(200, 200, 150), (9, 18, 37), (2, 4, 9), (2, 2, 2)],
        ]
    )
    def test_default_windows(self, shape, kernels, strides, dilations):
        s = MKLNCCLoss(len(shape)).settings_for(shape)
        self.assertEqual([k[0] for k in s.kernel_sizes], list(kernels))
        self.assertEqual([v[0] for v in s.strides], list(strides))
        self.assertEqual([v[0] for v in s.dilations], list(dilations))

    def test_default_rule_applied_at_forward(self):
        loss_fn = MKLNCCLoss(2)
        for shape in ((20, 24), (70, 66)):
            p, t = _pair((2, 1, *shape), dtype=torch.float32)
            torch.testing.assert_close(loss_fn(p, t), mk_lncc(p, t, *default_lncc_settings(shape)).mean())

    def test_explicit_defaults(self):
        s = MKLNCCLoss(3, kernel_sizes=(9, (3, 5, 7))).settings
        self.assertEqual(s.kernel_weights, (0.5, 0.5))
        self.assertEqual(s.strides, ((1, 1, 1),) * 2)
        self.assertEqual(s.dilations, ((1, 1, 1),) * 2)

    def test_reductions(self):
        p, t = _pair((3, 2, 12, 12))
        none = MKLNCCLoss(2, kernel_sizes=(3, 5), reduction="none")(p, t)
        self.assertEqual(none.shape, (3,))
        torch.testing.assert_close(MKLNCCLoss(2, kernel_sizes=(3, 5), reduction="sum")(p, t), none.sum())
        torch.testing.assert_close(MKLNCCLoss(2, kernel_sizes=(3, 5))(p, t), none.mean())
        # channels are averaged: one two-channel sample = mean of two one-channel samples
        per_channel = MKLNCCLoss(2, kernel_sizes=(3, 5), reduction="none")(p[0].unsqueeze(1), t[0].unsqueeze(1))
        torch.testing.assert_close(none[0], per_channel.mean())

    def test_extra_repr(self):
        self.assertIn("paper rule", repr(MKLNCCLoss()))
        r = repr(MKLNCCLoss(2, kernel_sizes=(3, 4), kernel_weights=(0.3, 0.7), strides=2, dilations=(1, 2)))
        self.assertIn("kernel_sizes=((3, 3), (4, 4))", r)
        self.assertIn("strides=((2, 2), (2, 2))", r)
        self.assertIn("dilations=((1, 1), (2, 2))", r)
        self.assertIn("reduction='mean'", r)

    def test_no_state(self):
        self.assertEqual(len(MKLNCCLoss(kernel_sizes=5).state_dict()), 0)

    @parameterized.expand(
        [
            [dict(spatial_dims=4), "spatial_dims"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(0.3, 0.6)), "kernel_weights"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(1.2, -0.2)), "kernel_weights"],
            [dict(kernel_sizes=(3, 5), kernel_weights=(1.0,)), "kernel_weights"],
            [dict(kernel_weights=(1.0,)), "kernel_sizes"],
            [dict(strides=2), "kernel_sizes"],
            [dict(kernel_sizes=(0,)), "kernel_sizes"],
            [dict(kernel_sizes=((3, 3),)), "kernel_sizes"],
            [dict(kernel_sizes=(3,), strides=(0,)), "strides"],
            [dict(kernel_sizes=(3, 4), strides=(1, 2, 3)), "strides"],
            [dict(kernel_sizes=(3,), dilations=((1, 2),)), "dilations"],
            [dict(smooth_dr=-1.0), "smooth_dr"],
            [dict(reduction="meen"), "reduction"],
        ]
    )
    def test_ill_opts(self, kwargs, name):
        with self.assertRaisesRegex(ValueError, name):
            MKLNCCLoss(**kwargs)

    def test_ill_shape(self):
        loss_fn = MKLNCCLoss(3, kernel_sizes=(3, 5), dilations=(1, 2))
        with self.assertRaisesRegex(ValueError, "'pred' and 'target'"):
            loss_fn(torch.rand(1, 1, 10, 10, 10), torch.rand(1, 1, 10, 10, 9))
        with self.assertRaisesRegex(ValueError, "spatial_dims"):
            loss_fn(torch.rand(1, 1, 10, 10), torch.rand(1, 1, 10, 10))
        with self.assertRaisesRegex(ValueError, r"kernel_sizes' entry 1 .*extent \(9, 9, 9\).*\(10, 8, 10\)"):
            loss_fn(torch.rand(1, 1, 10, 8, 10), torch.rand(1, 1, 10, 8, 10))
        with self.assertRaisesRegex(ValueError, "spatial_shape"):
            MKLNCCLoss(2)(torch.rand(1, 1, 3, 10), torch.rand(1, 1, 3, 10))
        with self.assertRaisesRegex(TypeError, "target"):
            loss_fn(torch.rand(1, 1, 10, 10, 10), torch.ones(1, 1, 10, 10, 10, dtype=torch.long))


if __name__ == "__main__":
    unittest.main()
