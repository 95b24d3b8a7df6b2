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
"""Tests of the per-pair optimisation baselines (affine-opt, vSVF-opt) and of the test-time refinement of an AVSMNet
output, on real T1 anatomy with known deformations: parameter recovery, Dice and mk-LNCC improvement, no folds,
exact starts, never-worse refinement, determinism, errors, progress logging, CUDA."""

from __future__ import annotations

import math
import unittest

import torch
import torch.nn.functional as F

from monai_avsm.functional import affine_to_map, identity_map, map_to_ddf, warp_image, warp_label
from monai_avsm.losses import MKLNCCLoss
from monai_avsm.metrics.folding import compute_folds
from monai_avsm.networks.nets import AVSMNet, MultiStepAffineNet, VSVFNet
from monai_avsm.optimization import affine_opt, refine, vsvf_opt
from monai_avsm.transforms import RandSyntheticDeformation
from monai_avsm.transforms.functional import physical_affine_to_normalized, rotation_matrix
from tests.utils import real_slice, real_volume, tissue_labels

SHAPE_2D = (32, 40)
SHAPE_3D = (24, 28, 20)


def _slice() -> torch.Tensor:
    return real_slice(SHAPE_2D)


def _crop() -> torch.Tensor:
    """A 24x28x20 crop of the real T1 (33x41x25) around the head."""
    return real_volume()[:, :, 4:28, 6:34, 2:22].contiguous()


def _theta(angles_deg, scales, shift_voxels, shape) -> torch.Tensor:
    """A known affine (rotation, scaling, translation in voxels, about the centre) as normalised ``theta``."""
    matrix = rotation_matrix([math.radians(a) for a in angles_deg]) @ torch.diag(torch.tensor(scales).double())
    A, b = physical_affine_to_normalized(matrix, torch.tensor(shift_voxels).double(), shape, (1.0,) * len(shape))
    return torch.cat([A, b[:, None]], dim=1).float()[None]


def _dice(a: torch.Tensor, b: torch.Tensor, num_classes: int = 3) -> float:
    """Mean Dice over the non-background labels."""
    scores = [2.0 * ((a == c) & (b == c)).sum() / ((a == c).sum() + (b == c).sum()) for c in range(1, num_classes)]
    return float(torch.stack(scores).mean())


def _smooth_pair(image: torch.Tensor, seed: int = 0, displacement: float = 3.0):
    """``fixed = moving o phi`` for a known smooth (displacement only) deformation, and the labels of both."""
    transform = RandSyntheticDeformation(
        rotation_deg=0, scale=0, translation_mm=0, displacement_mm=displacement, smoothness=0.15
    )
    transform.set_random_state(seed)
    ndim = image.ndim - 2
    fixed = transform(image[0], spacing=(1.0,) * ndim)[None].float()
    labels = tissue_labels(image)
    fixed_labels = transform(labels[0], mode="nearest", randomize=False)[None]
    return fixed, labels, fixed_labels


class TestAffineOpt(unittest.TestCase):
    def _check_recovery(self, moving, theta_true, out, start, tag):
        err = (out["affine"] - theta_true).abs()
        err_a, err_b = err[..., :-1].amax(dim=(1, 2)), err[..., -1].amax(dim=1)
        start_err = (start - theta_true).abs().amax(dim=(1, 2))
        print(f"\n[{tag}] max|A-A*| {err_a.tolist()} max|b-b*| {err_b.tolist()} start error {start_err.tolist()}")
        self.assertLess(float(err_a.max()), 0.03)
        self.assertLess(float(err_b.max()), 0.03)
        self.assertTrue(bool((err.amax(dim=(1, 2)) < 0.5 * start_err).all()))
        self.assertEqual(out["map"].shape, (moving.shape[0], moving.ndim - 2, *moving.shape[2:]))
        self.assertEqual(out["warped"].shape, moving.shape)

    def test_recovers_known_affine_2d(self):
        moving = _slice()
        theta_true = _theta([6.0], [1.05, 0.96], [2.0, -1.5], SHAPE_2D)
        fixed = warp_image(moving, affine_to_map(theta_true[..., :-1], theta_true[..., -1], SHAPE_2D))
        start = torch.eye(2, 3).repeat(2, 1, 1)  # batch item 0: identity; item 1: a perturbed start
        start[1] += torch.tensor([[0.05, -0.04, 0.06], [0.04, 0.05, -0.05]])
        out = affine_opt(
            moving.expand(2, -1, -1, -1), fixed.expand(2, -1, -1, -1), scales=(0.5, 1.0), iterations=(120, 40),
            initial_theta=start, progress=False,
        )  # fmt: skip
        self._check_recovery(moving.expand(2, -1, -1, -1), theta_true, out, start, "affine 2D")
        self.assertEqual(len(out["history"]), 2)
        self.assertEqual(len(out["history"][0]), out["iterations"][0] + 1)
        self.assertLess(out["history"][-1][-1], 0.2 * out["history"][0][0])

    def test_recovers_known_affine_3d(self):
        moving = _crop()
        theta_true = _theta([4.0, -5.0, 6.0], [1.05, 0.97, 1.03], [1.5, -1.0, 1.0], SHAPE_3D)
        fixed = warp_image(moving, affine_to_map(theta_true[..., :-1], theta_true[..., -1], SHAPE_3D))
        start = torch.eye(3, 4).repeat(2, 1, 1)
        start[1] += torch.tensor([[0.04, 0.03, -0.04, 0.05], [-0.03, 0.04, 0.03, -0.05], [0.03, -0.04, 0.04, 0.05]])
        out = affine_opt(
            moving.expand(2, -1, -1, -1, -1), fixed.expand(2, -1, -1, -1, -1), scales=(0.5, 1.0),
            iterations=(100, 30), initial_theta=start, progress=False,
        )  # fmt: skip
        self._check_recovery(moving.expand(2, -1, -1, -1, -1), theta_true, out, start, "affine 3D")


class TestVSVFOpt(unittest.TestCase):
    def test_smooth_deformation_2d(self):
        moving = _slice()
        fixed, labels, fixed_labels = _smooth_pair(moving)
        out = vsvf_opt(moving, fixed, scales=(0.5, 1.0), iterations=(20, 20), progress=False)
        sim = MKLNCCLoss(2)
        before, after = float(sim(moving, fixed)), float(sim(out["warped"], fixed))
        dice_before = _dice(labels, fixed_labels)
        dice_after = _dice(warp_label(labels, out["map"]), fixed_labels)
        folds = int(compute_folds(out["map"])["count"].sum())
        print(f"\n[vsvf 2D] mk-LNCC {before:.4f} -> {after:.4f}, Dice {dice_before:.4f} -> {dice_after:.4f}", end="")
        print(f", folds {folds}")
        self.assertLess(after, 0.5 * before)
        self.assertGreater(dice_after, dice_before + 0.1)
        self.assertEqual(folds, 0)
        self.assertEqual(out["momentum"].shape, (1, 2, 16, 20))  # half resolution, as VSVFWarp expects
        self.assertEqual(out["velocity"].shape, (1, 2, 16, 20))
        for losses in out["history"]:
            self.assertLessEqual(losses[-1], losses[0])

    def test_smooth_deformation_3d_from_affine_map(self):
        moving = _crop()
        fixed, labels, fixed_labels = _smooth_pair(moving, seed=1, displacement=2.0)
        start = affine_to_map(torch.eye(3)[None] * 1.01, torch.zeros(1, 3), SHAPE_3D)  # a slightly wrong affine start
        out = vsvf_opt(moving, fixed, initial_map=start, scales=(1.0,), iterations=(8,), progress=False)
        sim = MKLNCCLoss(3)
        before, after = float(sim(warp_image(moving, start), fixed)), float(sim(out["warped"], fixed))
        dice_before = _dice(warp_label(labels, start), fixed_labels)
        dice_after = _dice(warp_label(labels, out["map"]), fixed_labels)
        print(f"\n[vsvf 3D] mk-LNCC {before:.4f} -> {after:.4f}, Dice {dice_before:.4f} -> {dice_after:.4f}")
        self.assertLess(after, before)
        self.assertGreater(dice_after, dice_before)
        self.assertEqual(int(compute_folds(out["map"])["count"].sum()), 0)
        self.assertEqual(out["momentum"].shape, (1, 3, 12, 14, 10))

    def test_zero_iterations_return_initial_map_exactly(self):
        moving = _slice()
        fixed, _, _ = _smooth_pair(moving)
        theta = _theta([5.0], [1.02, 0.98], [1.0, 0.5], SHAPE_2D)
        start = affine_to_map(theta[..., :-1], theta[..., -1], SHAPE_2D)
        out = vsvf_opt(moving, fixed, initial_map=start, iterations=(0, 0, 0), progress=False)
        self.assertTrue(torch.equal(out["map"], start))
        self.assertTrue(torch.equal(out["warped"], warp_image(moving, start)))
        self.assertEqual(out["iterations"], [0, 0, 0])
        self.assertFalse(bool(out["momentum"].any()))


class TestIncrementStep(unittest.TestCase):
    def test_precomputed_initial_map_low_is_the_same_step(self):
        """The optimisations pass the initial map's down-sampling once per level: the step, its gradient and the
        warped image are those of the step that down-samples it itself (float64, a curved initial map)."""
        from monai_avsm.optimization.utils import initial_map_low, momentum_shape, vsvf_increment_step
        from monai_avsm.optimization.vsvf import vsvf_warp_for

        g = torch.Generator().manual_seed(0)
        shape = (12, 14, 10)
        phi0 = identity_map(shape, dtype=torch.float64) + 0.03 * torch.randn(1, 3, *shape, generator=g).double()
        source = torch.rand(1, 1, *shape, generator=g, dtype=torch.float64)
        m = (0.1 * torch.randn(1, 3, *momentum_shape(shape), generator=g, dtype=torch.float64)).requires_grad_(True)
        warp = vsvf_warp_for(None, 3, "test").double()
        outs, grads = [], []
        for low in (None, initial_map_low(phi0, m.shape[2:])):
            v, phi, warped, _ = vsvf_increment_step(warp, m, phi0, source, (2.0, 2.0, 2.0), low)
            (grad,) = torch.autograd.grad((warped**2).sum() + (v**2).sum(), m)
            outs.append((v.detach(), phi.detach(), warped.detach()))
            grads.append(grad)
        for a, b in zip(*outs):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
        with self.assertRaisesRegex(ValueError, "initial_map_low"):
            vsvf_increment_step(warp, m, phi0, source, (2.0, 2.0, 2.0), phi0[:, :, ::3, ::3, ::3])


class TestRefine(unittest.TestCase):
    @staticmethod
    def _net() -> AVSMNet:
        vsvf = VSVFNet(2, channels=(4, 4, 8, 8, 8), decoder_channels=(8, 4, 4), num_steps=1)
        return AVSMNet(MultiStepAffineNet(2, num_steps=1), vsvf).eval()

    def test_never_worse_than_the_network(self):
        moving = _slice()
        fixed, _, _ = _smooth_pair(moving)
        net = self._net()
        torch.manual_seed(0)
        with torch.no_grad():  # a random (bad) momentum head: the network's output is a non-trivial, wrong map
            net.vsvf_net.momentum_net.out.conv.weight.normal_(0.0, 0.01)
            pred = net(torch.cat([moving, moving]), torch.cat([fixed, fixed]))
        out = refine(pred, iterations=4, progress=False)
        sim = MKLNCCLoss(2, reduction="none")
        net_loss, refined_sim = sim(pred["warped"], pred["fixed"]), sim(out["warped"], pred["fixed"])
        print(f"\n[refine random net] loss {out['initial_loss'].tolist()} -> {out['loss'].tolist()}")
        self.assertTrue(bool((out["loss"] <= out["initial_loss"]).all()))
        self.assertTrue(torch.allclose(out["initial_loss"], net_loss))
        self.assertTrue(bool((refined_sim <= net_loss).all()))  # the regulariser is >= 0
        self.assertEqual(len(out["maps"]), len(pred["maps"]) + 1)
        self.assertTrue(torch.equal(out["maps"][-1], out["map"]))
        self.assertTrue(torch.equal(out["ddf"], map_to_ddf(out["map"])))
        self.assertTrue(torch.equal(out["affine"], pred["affine"]))
        # a similarity minimised exactly at the network's result: no iterate improves, the input map comes back
        target = pred["warped"].detach()
        kept = refine(
            pred, iterations=3, similarity=lambda w, f: ((w - target) ** 2).flatten(1).mean(1), progress=False
        )
        self.assertFalse(bool(kept["improved"].any()))
        self.assertTrue(torch.equal(kept["map"], pred["map"]))
        self.assertTrue(torch.equal(kept["loss"], kept["initial_loss"]))

    def test_improves_on_an_identity_network(self):
        moving = _slice()
        fixed, labels, fixed_labels = _smooth_pair(moving)
        with torch.no_grad():
            pred = self._net()(moving, fixed)  # untrained: the identity
        self.assertTrue(torch.allclose(pred["map"], identity_map(SHAPE_2D), atol=1e-6))
        same = refine(pred, iterations=0, progress=False)
        self.assertTrue(torch.equal(same["map"], pred["map"]))
        self.assertTrue(torch.equal(same["warped"], pred["warped"]))
        out = refine(pred, iterations=10, progress=False)
        dice_before, dice_after = _dice(labels, fixed_labels), _dice(warp_label(labels, out["map"]), fixed_labels)
        print(f"\n[refine identity net] loss {float(out['initial_loss']):.4f} -> {float(out['loss']):.4f}, "
              f"Dice {dice_before:.4f} -> {dice_after:.4f}")  # fmt: skip
        self.assertLess(float(out["loss"]), 0.7 * float(out["initial_loss"]))
        self.assertTrue(bool(out["improved"].all()))
        self.assertGreater(dice_after, dice_before)


class TestRefineFoldSafeguard(unittest.TestCase):
    def test_refinement_folds_only_without_the_safeguard(self):
        """A weakly regularised refinement with a fine smoother between unrelated noise images folds the map; with
        the safeguard (the default) the momentum is scaled back until it has no more folds than the network's map
        (none here) and the objective is still below the network's."""
        from monai_avsm.functional import jacobian_determinant
        from monai_avsm.networks.blocks import VSVFWarp

        g = torch.Generator().manual_seed(0)
        fixed = F.avg_pool2d(torch.rand(1, 1, 64, 64, generator=g), 2)
        moving = F.avg_pool2d(torch.rand(1, 1, 64, 64, generator=g), 2)
        net = {"map": identity_map((32, 32)).float()}  # (1, 2, 32, 32)
        warp = VSVFWarp(2, sigmas=[0.02, 0.04], weights=[0.5, 0.5])
        kw = dict(iterations=40, momentum_reg_weight=1e-3, warp=warp, progress=False)
        bare = refine(net, moving, fixed, fold_safeguard=False, **kw)
        safe = refine(net, moving, fixed, **kw)
        self.assertGreater(int((jacobian_determinant(bare["map"]) <= 0).sum()), 0)
        self.assertEqual(bare["fold_backoff_steps"], 0)
        self.assertEqual(int((jacobian_determinant(safe["map"]) <= 0).sum()), 0)
        self.assertGreater(safe["fold_backoff_steps"], 0)
        self.assertTrue(bool(safe["improved"][0]))
        self.assertLess(float(safe["loss"][0]), float(safe["initial_loss"][0]))
        self.assertGreaterEqual(float(safe["loss"][0]), float(bare["loss"][0]))  # the price of the safeguard


class TestBehaviour(unittest.TestCase):
    def test_deterministic_with_seed(self):
        moving = _slice()
        fixed, _, _ = _smooth_pair(moving)
        runs = [vsvf_opt(moving, fixed, scales=(1.0,), iterations=(3,), seed=3, progress=False) for _ in range(2)]
        self.assertTrue(torch.equal(runs[0]["map"], runs[1]["map"]))
        self.assertEqual(runs[0]["history"], runs[1]["history"])
        runs = [affine_opt(moving, fixed, scales=(1.0,), iterations=(10,), seed=3, progress=False) for _ in range(2)]
        self.assertTrue(torch.equal(runs[0]["affine"], runs[1]["affine"]))

    def test_early_stopping(self):
        moving = _slice()
        fixed, _, _ = _smooth_pair(moving)
        kwargs = dict(scales=(1.0,), iterations=(25,), progress=False)
        full = vsvf_opt(moving, fixed, tolerance=0.0, patience=0, **kwargs)
        early = vsvf_opt(moving, fixed, tolerance=0.05, patience=2, **kwargs)
        self.assertEqual(full["iterations"], [25])
        self.assertLess(early["iterations"][0], 25)
        self.assertEqual(len(early["history"][0]), early["iterations"][0] + 1)
        self.assertEqual(early["history"][0], full["history"][0][: len(early["history"][0])])

    def test_progress_logs_without_tqdm_bar(self):
        moving = _slice()
        with self.assertLogs("monai_avsm.optimization", level="INFO") as logs:
            vsvf_opt(moving, moving.flip(-1), scales=(1.0,), iterations=(2,), progress=True)
        self.assertTrue(any("vsvf_opt" in line for line in logs.output))

    def test_bad_inputs(self):
        moving = _slice()
        with self.assertRaisesRegex(ValueError, "affine_opt: 'moving' and 'fixed' must have the same spatial shape"):
            affine_opt(moving, moving[..., :-2], progress=False)
        bad = moving.clone()
        bad[0, 0, 3, 4] = float("nan")
        with self.assertRaisesRegex(ValueError, "vsvf_opt: 'fixed' contains 1 NaN"):
            vsvf_opt(moving, bad, progress=False)
        with self.assertRaisesRegex(ValueError, "vsvf_opt: 'iterations' needs one entry per scale"):
            vsvf_opt(moving, moving, scales=(0.5, 1.0), iterations=(5, 5, 5), progress=False)
        with self.assertRaisesRegex(ValueError, "affine_opt: 'scales' must run coarse to fine"):
            affine_opt(moving, moving, scales=(1.0, 0.5), iterations=(5, 5), progress=False)
        with self.assertRaisesRegex(ValueError, "vsvf_opt: 'initial_map' must be on the images' grid"):
            vsvf_opt(moving, moving, initial_map=identity_map((16, 20)), progress=False)
        with self.assertRaisesRegex(ValueError, "affine_opt: 'initial_theta' must have shape"):
            affine_opt(moving, moving, initial_theta=torch.eye(3, 4)[None], progress=False)
        with self.assertRaisesRegex(TypeError, "refine: 'net_output' must be the dict"):
            refine(moving, progress=False)
        with self.assertRaisesRegex(KeyError, "refine: 'net_output' has no 'map'"):
            refine({"moving": moving, "fixed": moving}, progress=False)


@unittest.skipUnless(torch.cuda.is_available(), "needs CUDA")
class TestCUDA(unittest.TestCase):
    def test_runs_on_cuda(self):
        moving = _slice().cuda()
        fixed = warp_image(moving, affine_to_map(torch.eye(2)[None].cuda() * 1.03, torch.zeros(1, 2).cuda(), SHAPE_2D))
        aff = affine_opt(moving, fixed, scales=(0.5, 1.0), iterations=(20, 10), progress=False)
        out = vsvf_opt(moving, fixed, initial_map=aff["map"], scales=(1.0,), iterations=(3,), progress=False)
        for value in (aff["affine"], aff["map"], out["map"], out["warped"], out["momentum"]):
            self.assertEqual(value.device.type, "cuda")
        pred = TestRefine._net().cuda()(moving, fixed)
        ref = refine(pred, iterations=3, progress=False)
        self.assertEqual(ref["map"].device.type, "cuda")
        self.assertTrue(bool((ref["loss"] <= ref["initial_loss"]).all()))
        self.assertTrue(bool((F.mse_loss(ref["warped"], fixed) >= 0).all()))


class TestGaussianFilterAxis(unittest.TestCase):
    def test_same_as_monai_separable_filtering(self):
        from monai.networks.layers import gaussian_1d, separable_filtering

        from monai_avsm.optimization.utils import gaussian_filter_axis

        g = torch.Generator().manual_seed(0)
        x = torch.rand(2, 3, 9, 8, 7, generator=g, dtype=torch.float64)
        sigmas = (0.7, 1.5, 2.2)
        ours = x
        for axis, s in enumerate(sigmas):
            ours = gaussian_filter_axis(ours, axis, s)
        kernels = [gaussian_1d(torch.tensor(s), 3.0, "sampled", normalize=True).double() for s in sigmas]
        torch.testing.assert_close(ours, separable_filtering(x, kernels, mode="replicate"))

    def test_downsample_shrinks_axis_by_axis(self):
        """Smoothing and shrinking one axis at a time equals smoothing every axis at full size and then interpolating
        (the two operations act on different axes, so they commute), in 2D and 3D, float64."""
        from monai_avsm.optimization.utils import downsample_image, gaussian_filter_axis

        g = torch.Generator().manual_seed(1)
        for full, shape in (((33, 40, 27), (9, 21, 27)), ((31, 18), (8, 10)), ((20, 17, 15), (20, 9, 4))):
            x = torch.rand(2, 3, *full, generator=g, dtype=torch.float64)
            ref = x
            for axis, (n, k) in enumerate(zip(full, shape)):
                f = (n - 1) / (k - 1)
                if f > 1:
                    ref = gaussian_filter_axis(ref, axis, (f - 1) / 2)
            mode = "bilinear" if len(full) == 2 else "trilinear"
            ref = F.interpolate(ref, size=shape, mode=mode, align_corners=True)
            out = downsample_image(x, shape)
            self.assertEqual(tuple(out.shape), (2, 3, *shape))
            torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        self.assertIs(downsample_image(x, tuple(x.shape[2:])), x)


if __name__ == "__main__":
    unittest.main()
