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
"""Tests of the optional masks of mk-LNCC (MKLNCCLoss, mk_lncc) and of the global NCC (a project extension): an
explicit-loop reference, the loss of cropped images for a box mask, values outside the mask never entering, gradients,
mask dtypes and broadcasting, and every ill-mask error."""

from __future__ import annotations

import itertools
import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional.lncc import mk_lncc
from monai_avsm.functional.ncc import global_ncc
from monai_avsm.losses import GlobalNCCLoss, MKLNCCLoss
from tests.utils import correlated_pair as _pair


def _per_axis(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def brute_force_masked_mk_lncc(p, t, m, kernels, weights, strides, dilations, fraction, nr=0.0, dr=1e-5):
    """Masked mk-LNCC per sample by explicit loops: each window's NCC² over its masked voxels, averaged over the
    windows with at least ``fraction`` of their voxels in the mask (float64)."""
    p, t, m = p.double(), t.double(), m.double().expand(p.shape[0], 1, *p.shape[2:])
    b, c, *shape = p.shape
    n = len(shape)
    loss = torch.zeros(b, dtype=torch.float64)
    for k, w, s, d in zip(kernels, weights, strides, dilations):
        k, s, d = _per_axis(k, n), _per_axis(s, n), _per_axis(d, n)
        counts = [(shape[a] - (k[a] - 1) * d[a] - 1) // s[a] + 1 for a in range(n)]
        for bi in range(b):
            total, windows = 0.0, 0
            for o in itertools.product(*[range(q) for q in counts]):
                idx = tuple(slice(o[a] * s[a], o[a] * s[a] + (k[a] - 1) * d[a] + 1, d[a]) for a in range(n))
                sel = m[bi, 0][idx].reshape(-1) > 0
                if int(sel.sum()) < fraction * math.prod(k) - 1e-9:
                    continue
                windows += 1
                for ci in range(c):
                    i, j = p[bi, ci][idx].reshape(-1)[sel], t[bi, ci][idx].reshape(-1)[sel]
                    i, j = i - i.mean(), j - j.mean()
                    cross = (i * j).sum()
                    total += float((cross * cross + nr) / ((i * i).sum() * (j * j).sum() + dr))
            loss[bi] += w * (1.0 - total / (c * windows))
    return loss


def _random_mask(shape, seed=0, p=0.7):
    """A blobby binary mask ``shape`` (smoothed noise thresholded), float 0/1."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(shape, dtype=torch.float64, generator=g)
    for a in range(2, len(shape)):
        noise = (noise + noise.roll(1, a) + noise.roll(-1, a)) / 3.0
    return (noise < torch.quantile(noise.flatten(), p)).double()


MASKED_CASES = [
    # name, input shape, mask batch, kernel_sizes, kernel_weights, strides, dilations, mask_fraction
    ["2d_dense", (2, 1, 9, 10), 2, (3,), (1.0,), (1,), (1,), 0.5],
    ["2d_strided_dilated", (2, 2, 12, 11), 1, (4, 2), (0.3, 0.7), (2, 1), (2, 3), 0.6],
    ["2d_per_axis_full_windows", (1, 1, 10, 13), 1, ((3, 5), (2, 6)), (0.5, 0.5), ((1, 2), (3, 1)), (1, 1), 1.0],
    ["2d_any_voxel", (2, 1, 8, 9), 2, (3,), (1.0,), (1,), (2,), 0.1],
    ["3d_multi_kernel", (2, 1, 7, 8, 6), 2, (2, 3), (0.25, 0.75), (1, 2), (2, 1), 0.5],
]


class TestMaskedReference(unittest.TestCase):
    @parameterized.expand(MASKED_CASES)
    def test_matches_brute_force(self, _, shape, mask_batch, kernels, weights, strides, dilations, fraction):
        p, t = _pair(shape)
        m = _random_mask((mask_batch, 1, *shape[2:]), seed=len(shape))
        loss_fn = MKLNCCLoss(
            len(shape) - 2, kernels, weights, strides, dilations, reduction="none", mask_fraction=fraction
        )
        loss = loss_fn(p, t, m)
        expected = brute_force_masked_mk_lncc(p, t, m, kernels, weights, strides, dilations, fraction)
        self.assertEqual(loss.shape, (shape[0],))
        torch.testing.assert_close(loss, expected, rtol=0, atol=1e-9)
        functional = mk_lncc(p, t, kernels, weights, strides, dilations, mask=m, mask_fraction=fraction)
        torch.testing.assert_close(functional, loss, rtol=0, atol=0)

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


class TestMaskedProperties(unittest.TestCase):
    def test_values_outside_the_mask_never_enter(self):
        p, t = _pair((2, 1, 12, 11, 10), seed=4)
        mask = _random_mask((2, 1, 12, 11, 10), seed=5).bool()
        loss_fn = MKLNCCLoss(3, kernel_sizes=(3, 4), strides=(1, 2), dilations=(1, 2), reduction="none")
        x = p.clone().requires_grad_(True)
        loss = loss_fn(x, t, mask)
        loss.sum().backward()
        g = torch.Generator().manual_seed(6)
        for scale in (1e-3, 1.0, 1e4):
            p2 = torch.where(mask, p, torch.randn(p.shape, dtype=p.dtype, generator=g) * scale)
            t2 = torch.where(mask, t, torch.randn(t.shape, dtype=t.dtype, generator=g) * scale - 50.0)
            torch.testing.assert_close(loss_fn(p2, t2, mask), loss.detach(), rtol=0, atol=1e-6)
            # float32 too
            torch.testing.assert_close(loss_fn(p2.float(), t2.float(), mask), loss.detach().float(), rtol=0, atol=1e-6)
        self.assertEqual(float(x.grad[~mask.expand_as(x)].abs().max()), 0.0)  # no gradient outside the mask
        self.assertGreater(float(x.grad[mask.expand_as(x)].abs().max()), 0.0)

    @parameterized.expand([[0.1], [0.5], [1.0]])
    def test_all_ones_mask_is_the_unmasked_loss(self, fraction):
        p, t = _pair((2, 2, 10, 12), seed=7)
        kw = dict(kernel_sizes=(3, 5), strides=(1, 2), dilations=(2, 1))
        ones = torch.ones(1, 1, 10, 12)
        torch.testing.assert_close(mk_lncc(p, t, mask=ones, mask_fraction=fraction, **kw), mk_lncc(p, t, **kw))
        # also with the paper's rule
        torch.testing.assert_close(mk_lncc(p, t, mask=ones > 0), mk_lncc(p, t))

    def test_mask_dtypes_and_batch_broadcast(self):
        p, t = _pair((3, 1, 11, 12), seed=8)
        m = _random_mask((1, 1, 11, 12), seed=9)
        loss_fn = MKLNCCLoss(2, kernel_sizes=(3, 4), strides=(1, 2), reduction="none")
        reference = loss_fn(p, t, m)
        for mask in (m.bool(), m.long(), m.to(torch.uint8), m.float(), m.expand(3, 1, 11, 12)):
            torch.testing.assert_close(loss_fn(p, t, mask), reference, rtol=0, atol=0)
        # per-sample masks: each sample as if computed alone
        masks = torch.cat([_random_mask((1, 1, 11, 12), seed=s) for s in range(3)])
        batched = loss_fn(p, t, masks)
        for b in range(3):
            alone = loss_fn(p[b : b + 1], t[b : b + 1], masks[b : b + 1])
            torch.testing.assert_close(batched[b : b + 1], alone, rtol=0, atol=1e-12)
        # reductions
        torch.testing.assert_close(MKLNCCLoss(2, kernel_sizes=(3, 4), strides=(1, 2))(p, t, masks), batched.mean())

    def test_mask_fraction_selects_windows(self):
        # a mask covering the left half: a smaller fraction counts more (partial) windows
        p, t = _pair((1, 1, 12, 12), seed=10)
        mask = torch.zeros(1, 1, 12, 12)
        mask[..., :, :6] = 1
        values = [float(mk_lncc(p, t, 4, mask=mask, mask_fraction=f)) for f in (0.25, 0.5, 1.0)]
        expected = [
            float(brute_force_masked_mk_lncc(p, t, mask, (4,), (1.0,), (1,), (1,), f)) for f in (0.25, 0.5, 1.0)
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
        mask = _random_mask((shape[0], 1, *shape[2:]), seed=12, p=0.75)
        p.requires_grad_(True)
        t.requires_grad_(True)

        def fn(x, y):
            return mk_lncc(x, y, mask=mask, mask_fraction=fraction, **kwargs)

        self.assertTrue(torch.autograd.gradcheck(fn, (p, t)))
        self.assertTrue(torch.autograd.gradcheck(lambda x: fn(x, t.detach()), (p,)))
        loss_fn = MKLNCCLoss(len(shape) - 2, mask_fraction=fraction, **kwargs)
        self.assertTrue(torch.autograd.gradcheck(lambda x: loss_fn(x, t.detach(), mask), (p,), fast_mode=True))

    @parameterized.expand([[torch.float16], [torch.bfloat16]])
    def test_half_precision_inputs(self, dtype):
        p, t = _pair((1, 1, 16, 16, 16), seed=13, dtype=torch.float32)
        mask = _random_mask((1, 1, 16, 16, 16), seed=14).bool()
        p16 = p.to(dtype).requires_grad_(True)
        loss = MKLNCCLoss(kernel_sizes=(3, 5), strides=(1, 2))(p16, t.to(dtype), mask)
        self.assertEqual(loss.dtype, torch.float32)
        expected = MKLNCCLoss(kernel_sizes=(3, 5), strides=(1, 2))(p16.detach().float(), t.to(dtype).float(), mask)
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        loss.backward()
        self.assertEqual(p16.grad.dtype, dtype)
        self.assertTrue(bool(torch.isfinite(p16.grad.float()).all()))

    def test_extra_repr(self):
        self.assertIn("mask_fraction=0.5", repr(MKLNCCLoss()))
        self.assertIn("mask_fraction=1.0", repr(MKLNCCLoss(mask_fraction=1)))


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


class TestMaskErrors(unittest.TestCase):
    def setUp(self):
        self.p, self.t = _pair((2, 1, 10, 10))
        self.loss_fn = MKLNCCLoss(2, kernel_sizes=(3, 5))

    @parameterized.expand(
        [
            ["channels", torch.ones(2, 2, 10, 10), r"MKLNCCLoss: 'mask' must have shape \(2, 1, 10, 10\) or \(1, 1"],
            ["batch", torch.ones(3, 1, 10, 10), r"'mask' must have shape .* got shape \(3, 1, 10, 10\)"],
            ["spatial", torch.ones(2, 1, 10, 9), r"'mask' must have shape"],
            ["ndim", torch.ones(1, 10, 10), r"'mask' must have shape"],
            ["not_binary", torch.full((1, 1, 10, 10), 0.5), r"MKLNCCLoss: 'mask' must be binary .*0\.5"],
            ["integer_2", torch.full((1, 1, 10, 10), 2), r"'mask' must be binary"],
            ["all_zero", torch.zeros(1, 1, 10, 10), r"MKLNCCLoss: 'mask' is all zero: the mask selects no voxel"],
        ]
    )
    def test_ill_mask(self, _, mask, msg):
        with self.assertRaisesRegex(ValueError, msg):
            self.loss_fn(self.p, self.t, mask)

    def test_nan_and_per_sample_empty(self):
        mask = torch.ones(2, 1, 10, 10)
        mask[0, 0, 1, 1] = float("nan")
        with self.assertRaisesRegex(ValueError, "MKLNCCLoss: 'mask' contains 1 NaN"):
            self.loss_fn(self.p, self.t, mask)
        mask = torch.ones(2, 1, 10, 10, dtype=torch.bool)
        mask[1] = False
        with self.assertRaisesRegex(ValueError, r"mk_lncc: 'mask' is all zero for sample\(s\) \[1\]: .*no voxel"):
            mk_lncc(self.p, self.t, 3, mask=mask)
        with self.assertRaisesRegex(TypeError, "'mask' must be a torch.Tensor"):
            self.loss_fn(self.p, self.t, [[1.0]])

    def test_no_counting_window(self):
        mask = torch.zeros(2, 1, 10, 10)
        mask[..., 2:6, 2:6] = 1  # 16 voxels: fits the 3x3 kernel, not the 5x5 one entirely
        self.assertTrue(bool(torch.isfinite(self.loss_fn(self.p, self.t, mask))))  # 5x5 windows >= half inside
        msg = (
            r"MKLNCCLoss: kernel \(5, 5\) .*no window with at least 25 of its 25 voxels in the 'mask' "
            r"\('mask_fraction' 1\) for sample 0, whose mask has 16 voxels; lower 'mask_fraction' or use smaller "
            r"'kernel_sizes'"
        )
        with self.assertRaisesRegex(ValueError, msg):
            MKLNCCLoss(2, kernel_sizes=(3, 5), mask_fraction=1.0)(self.p, self.t, mask)

    @parameterized.expand([[0.0], [-0.5], [1.5], [float("nan")]])
    def test_ill_mask_fraction(self, fraction):
        with self.assertRaisesRegex(ValueError, r"MKLNCCLoss: 'mask_fraction' must be in \(0, 1\]"):
            MKLNCCLoss(mask_fraction=fraction)
        with self.assertRaisesRegex(ValueError, r"mk_lncc: 'mask_fraction' must be in \(0, 1\]"):
            mk_lncc(self.p, self.t, 3, mask=torch.ones(1, 1, 10, 10), mask_fraction=fraction)
        with self.assertRaisesRegex(TypeError, "mask_fraction"):
            MKLNCCLoss(mask_fraction="0.5")


if __name__ == "__main__":
    unittest.main()
