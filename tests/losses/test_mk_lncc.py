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
default windows, reductions and every ill-option error; and its optional mask (a project extension): the brute-force
reference, values outside the mask never entering, mask dtypes and broadcasting, and every ill-mask error."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional.lncc import default_lncc_settings, mk_lncc
from monai_avsm.losses import MKLNCCLoss
from tests.utils import brute_force_mk_lncc, conv_box_sums, per_axis, random_mask
from tests.utils import correlated_pair as _pair


def conv_mk_lncc(p, t, kernels, weights, strides, dilations, dr=1e-5):
    """mk-LNCC with ones-kernel convolutions (strided, dilated), as the authors' code computes it."""
    n = p.ndim - 2
    loss = 0.0
    for k, w, s, d in zip(kernels, weights, strides, dilations):
        k, s, d = per_axis(k, n), per_axis(s, n), per_axis(d, n)
        si, st, sii, stt, sit = (conv_box_sums(q, k, s, d) for q in (p, t, p * p, t * t, p * t))
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
        s = [per_axis(v, n) for v in s]
        d = [per_axis(v, n) for v in d]
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


# masks (a project extension, not in the paper)

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
        m = random_mask((mask_batch, 1, *shape[2:]), seed=len(shape))
        loss_fn = MKLNCCLoss(
            len(shape) - 2, kernels, weights, strides, dilations, reduction="none", mask_fraction=fraction
        )
        loss = loss_fn(p, t, m)
        expected = brute_force_mk_lncc(p, t, kernels, weights, strides, dilations, mask=m, mask_fraction=fraction)
        self.assertEqual(loss.shape, (shape[0],))
        torch.testing.assert_close(loss, expected, rtol=0, atol=1e-9)
        functional = mk_lncc(p, t, kernels, weights, strides, dilations, mask=m, mask_fraction=fraction)
        torch.testing.assert_close(functional, loss, rtol=0, atol=0)


class TestMaskedProperties(unittest.TestCase):
    def test_values_outside_the_mask_never_enter(self):
        p, t = _pair((2, 1, 12, 11, 10), seed=4)
        mask = random_mask((2, 1, 12, 11, 10), seed=5).bool()
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

    def test_mask_dtypes_and_batch_broadcast(self):
        p, t = _pair((3, 1, 11, 12), seed=8)
        m = random_mask((1, 1, 11, 12), seed=9)
        loss_fn = MKLNCCLoss(2, kernel_sizes=(3, 4), strides=(1, 2), reduction="none")
        reference = loss_fn(p, t, m)
        for mask in (m.bool(), m.long(), m.to(torch.uint8), m.float(), m.expand(3, 1, 11, 12)):
            torch.testing.assert_close(loss_fn(p, t, mask), reference, rtol=0, atol=0)
        # per-sample masks: each sample as if computed alone
        masks = torch.cat([random_mask((1, 1, 11, 12), seed=s) for s in range(3)])
        batched = loss_fn(p, t, masks)
        for b in range(3):
            alone = loss_fn(p[b : b + 1], t[b : b + 1], masks[b : b + 1])
            torch.testing.assert_close(batched[b : b + 1], alone, rtol=0, atol=1e-12)
        # reductions
        torch.testing.assert_close(MKLNCCLoss(2, kernel_sizes=(3, 4), strides=(1, 2))(p, t, masks), batched.mean())

    @parameterized.expand([[torch.float16], [torch.bfloat16]])
    def test_half_precision_inputs(self, dtype):
        p, t = _pair((1, 1, 16, 16, 16), seed=13, dtype=torch.float32)
        mask = random_mask((1, 1, 16, 16, 16), seed=14).bool()
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
