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
"""Tests of ``deformable_opt`` on real T1 anatomy (small grids): the finest level improves on the 1/2 level on a
known-deformation pair, an identical pair stays the identity, the time budget, no folds on a cross-template pair,
mutual information on an inverted-contrast pair, the inverse from the velocities, gradcheck of the fold penalty,
and errors."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.functional import compose_maps, identity_map, invert_velocities, jacobian_determinant, warp_label
from monai_avsm.losses import MKLNCCLoss
from monai_avsm.optimization import PRESETS, DeformablePreset, deformable_opt
from monai_avsm.optimization.deformable import fold_penalty, level_shapes
from monai_avsm.transforms import RandSyntheticDeformation
from tests.utils import real_volume, sample_dataset

SPACING = (2.0, 2.0, 2.0)


def _volume() -> torch.Tensor:
    """A 32x40x24 crop of the real T1 (33x41x25, 2 mm)."""
    return real_volume()[:, :, :32, :40, :24].contiguous()


def _known_pair(image: torch.Tensor, seed: int = 0, displacement: float = 5.0):
    """``fixed = moving o phi`` for a known smooth deformation: ``(fixed, phi_true)``."""
    t = RandSyntheticDeformation(rotation_deg=0, scale=0, translation_mm=0, displacement_mm=displacement,
                                 smoothness=0.12)  # fmt: skip
    t.set_random_state(seed)
    fixed = t(image[0], spacing=SPACING)[None].float()
    return fixed, t.deformation.maps(image.shape[2:])[0][None].float()


def _epe(phi: torch.Tensor, phi_true: torch.Tensor, inside: torch.Tensor) -> float:
    """Mean end-point error in voxels inside ``inside``."""
    scale = torch.tensor([(n - 1) / 2 for n in phi.shape[2:]]).reshape(1, -1, 1, 1, 1)
    err = ((phi - phi_true) * scale).norm(dim=1, keepdim=True)
    return float(err[inside].mean())


#: small settings for 2 mm test volumes: the structure of the "brain" preset with smaller kernels, a weaker
#: regulariser and fewer iterations (the former "brain" values), so that a deformation at an 8 mm scale on this
#: 64x80x48 mm crop is recovered in a few iterations; the shipped preset is tested in ``test_brain_preset_*``
FAST = {
    "sigmas_mm": ((4.0, 8.0, 16.0), (2.0, 4.0, 8.0), (1.5, 3.0, 6.0)),
    "sigma_weights": ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
    "momentum_reg_weight": (1.0, 1.0, 1.0),
    "iterations": (30, 15, 6),
    "lr": (5e-3, 3e-3, 2e-3),
    "work": None,
}


class TestDeformableOpt(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.moving = _volume()
        cls.fixed, cls.phi_true = _known_pair(cls.moving)
        cls.half = deformable_opt(cls.moving, cls.fixed, spacing=SPACING, preset={**FAST, "iterations": (30, 15, 0)})
        cls.full = deformable_opt(cls.moving, cls.fixed, spacing=SPACING, preset=FAST)

    def test_finest_level_improves_on_half_level(self):
        moving, fixed, phi_true, half, full = self.moving, self.fixed, self.phi_true, self.half, self.full
        inside = fixed > 0.1
        e0 = _epe(identity_map(moving.shape[2:]), phi_true, inside)
        e_half, e_full = _epe(half["map"], phi_true, inside), _epe(full["map"], phi_true, inside)
        print(f"\n[deformable] EPE (voxels) start {e0:.3f}, 1/2 level {e_half:.3f}, finest {e_full:.3f}")
        self.assertLess(e_half, 0.7 * e0)
        self.assertLess(e_full, e_half)
        self.assertLess(float(full["loss"]), float(half["loss"]))
        self.assertEqual([r["shape"] for r in full["levels"]], [(8, 10, 6), (16, 20, 12), (32, 40, 24)])
        self.assertEqual(full["momentum"].shape, (1, 3, 16, 20, 12))
        self.assertEqual(full["levels"][2]["iterations"], 6)
        self.assertEqual(int(full["folds"].sum()), 0)
        for level in full["levels"]:
            self.assertLessEqual(level["loss"][1], level["loss"][0])

    def test_brain_preset_recovers_smooth_deformation(self):
        """The shipped ``"brain"`` preset (its own iterations) on a smooth known deformation (5 mm, smoothness 0.25
        of the domain) of the real T1 crop: the end-point error falls below half of the start's, without folds."""
        moving = self.moving
        t = RandSyntheticDeformation(rotation_deg=0, scale=0, translation_mm=0, displacement_mm=5.0, smoothness=0.25)
        t.set_random_state(0)
        fixed = t(moving[0], spacing=SPACING)[None].float()
        phi_true = t.deformation.maps(moving.shape[2:])[0][None].float()
        inside = fixed > 0.1
        out = deformable_opt(moving, fixed, spacing=SPACING, preset="brain")
        e0, e1 = _epe(identity_map(moving.shape[2:]), phi_true, inside), _epe(out["map"], phi_true, inside)
        print(f"\n[deformable] brain preset EPE (voxels) start {e0:.3f}, end {e1:.3f}")
        self.assertLess(e1, 0.5 * e0)
        self.assertEqual(int(out["folds"].sum()), 0)

    def test_initial_map_kept_only_when_better(self):
        """``check_initial_map``: the true map as a start is kept (and the result is at least as close to it as the
        optimisation from the identity); a start shifted by 3 voxels, worse than the identity, is dropped."""
        moving, fixed, phi_true = self.moving, self.fixed, self.phi_true
        inside = fixed > 0.1
        few = {**FAST, "iterations": (5, 3, 2)}
        good = deformable_opt(moving, fixed, initial_map=phi_true, spacing=SPACING, preset=few, check_initial_map=True)
        self.assertTrue(bool(good["initial_map_used"].all()))
        plain = deformable_opt(moving, fixed, spacing=SPACING, preset=few)
        self.assertLess(_epe(good["map"], phi_true, inside), _epe(plain["map"], phi_true, inside))
        bad_start = phi_true.clone()
        bad_start[:, 0] += 3 * 2.0 / (moving.shape[2] - 1)
        bad = deformable_opt(moving, fixed, initial_map=bad_start, spacing=SPACING, preset=few, check_initial_map=True)
        self.assertFalse(bool(bad["initial_map_used"].any()))
        torch.testing.assert_close(bad["initial_map"], identity_map(moving.shape[2:]).expand_as(bad_start))
        torch.testing.assert_close(bad["map"], plain["map"])  # then exactly the optimisation from the identity
        unchecked = deformable_opt(moving, fixed, initial_map=bad_start, spacing=SPACING, preset=few)
        self.assertTrue(bool(unchecked["initial_map_used"].all()))  # without the check the start is used as given

    def test_identical_pair_stays_identity(self):
        moving = _volume()
        out = deformable_opt(moving, moving, spacing=SPACING, preset={**FAST, "iterations": (5, 3, 2)})
        self.assertTrue(torch.allclose(out["map"], identity_map(moving.shape[2:]), atol=1e-6))
        self.assertTrue(torch.allclose(out["warped"], moving, atol=1e-5))

    def test_time_budget(self):
        moving = _volume()
        fixed, _ = _known_pair(moving)
        out = deformable_opt(moving, fixed, spacing=SPACING, preset={**FAST, "iterations": (10000, 10000, 10000),
                             "tolerance": 0.0}, max_seconds=1.0)  # fmt: skip
        print(f"\n[deformable] budget 1 s: {out['seconds']:.2f} s, levels {[r['stopped'] for r in out['levels']]}")
        # the budget is checked before each iteration: the levels may overrun it by about one iteration (timed here,
        # so a loaded machine does not fail the test); the final assembly comes on top of it
        levels = [r for r in out["levels"] if r["iterations"]]
        per_iteration = max(r["seconds"] / r["iterations"] for r in levels)
        self.assertLess(sum(r["seconds"] for r in out["levels"]), 1.0 + 3 * per_iteration + 0.2)
        self.assertIn("time", [r["stopped"] for r in out["levels"]])
        self.assertEqual(out["levels"][-1]["stopped"], "skipped")

    def test_no_folds_on_cross_template_pair(self):
        data = sample_dataset(4.0)
        if data is None:
            self.skipTest("the sample data packages are not installed")
        import nibabel as nib

        def load(folder, name, dtype):
            return torch.as_tensor(nib.load(f"{data}/{folder}/{name}.nii.gz").get_fdata()).to(dtype)[None, None]

        moving, fixed = load("images", "icbm2009a_sym", torch.float32), load("images", "icbm2009c_asym", torch.float32)
        mlab, flab = load("labels", "icbm2009a_sym", torch.long), load("labels", "icbm2009c_asym", torch.long)
        out = deformable_opt(moving, fixed, spacing=(4.0, 4.0, 4.0), preset={**FAST, "iterations": (30, 10, 2)})

        def dice(a, b):
            return float(torch.stack([2 * ((a == c) & (b == c)).sum() / ((a == c).sum() + (b == c).sum())
                                      for c in (1, 2)]).mean())  # fmt: skip

        before, after = dice(mlab, flab), dice(warp_label(mlab, out["map"]), flab)
        det = jacobian_determinant(out["map"])
        sim = MKLNCCLoss(3, kernel_sizes=[5, 9], kernel_weights=[0.5, 0.5])
        sim_before, sim_after = (
            float(sim(moving / moving.max(), fixed / fixed.max())),
            float(sim(out["warped"] / moving.max(), fixed / fixed.max())),
        )
        print(f"\n[deformable] cross-template 4 mm: mk-LNCC {sim_before:.4f} -> {sim_after:.4f}, Dice {before:.4f} -> "
              f"{after:.4f}, min det J {float(det.min()):.3f}")  # fmt: skip
        self.assertLess(sim_after, sim_before)
        self.assertEqual(int((det <= 0).sum()), 0)
        self.assertEqual(int(out["folds"].sum()), 0)

    def test_mutual_information_on_inverted_contrast(self):
        moving = _volume()
        fixed, phi_true = _known_pair(moving, seed=2)
        head = fixed > 0.05
        inverted = torch.where(head, 1.2 - fixed, torch.zeros_like(fixed))  # dark white matter, bright CSF
        out = deformable_opt(moving, inverted, spacing=SPACING, preset={**FAST, "iterations": (30, 15, 0)},
                             similarity="mi")  # fmt: skip
        e0 = _epe(identity_map(moving.shape[2:]), phi_true, head)
        e1 = _epe(out["map"], phi_true, head)
        print(f"\n[deformable MI] inverted contrast: EPE (voxels) {e0:.3f} -> {e1:.3f}")
        self.assertLess(e1, 0.8 * e0)
        self.assertEqual(int(out["folds"].sum()), 0)

    def test_inverse_from_velocities(self):
        out, shape = self.half, self.moving.shape[2:]
        inv = invert_velocities(out["velocities"], out["integrator"], shape)
        ident = identity_map(shape)
        scale = torch.tensor([(n - 1) / 2 for n in shape]).reshape(1, -1, 1, 1, 1)
        err = ((compose_maps(out["map"], inv) - ident) * scale).norm(dim=1)[:, 4:-4, 4:-4, 4:-4]
        disp = ((out["map"] - ident) * scale).norm(dim=1)[:, 4:-4, 4:-4, 4:-4]
        print(f"\n[deformable] inverse: mean |phi o phi^-1 - id| {float(err.mean()):.4f} vox, mean |u| "
              f"{float(disp.mean()):.4f} vox")  # fmt: skip
        self.assertLess(float(err.mean()), 0.1 * float(disp.mean()))

    def test_lbfgs_and_mask(self):
        moving = _volume()
        fixed, phi_true = _known_pair(moving)
        mask = (fixed > 0.05).to(torch.uint8)
        out = deformable_opt(moving, fixed, spacing=SPACING, preset={**FAST, "iterations": (5, 3, 0), "lr": (1, 1, 1)},
                             optimizer="lbfgs", mask=mask)  # fmt: skip
        e0 = _epe(identity_map(moving.shape[2:]), phi_true, mask.bool())
        self.assertLess(_epe(out["map"], phi_true, mask.bool()), e0)


class TestPieces(unittest.TestCase):
    def test_fold_penalty_gradcheck(self):
        g = torch.Generator().manual_seed(0)
        phi = identity_map((6, 7), dtype=torch.float64) + 0.3 * torch.rand(1, 2, 6, 7, generator=g,
                                                                                 dtype=torch.float64)  # fmt: skip
        phi.requires_grad_(True)
        self.assertGreater(float(fold_penalty(phi, 0.5)), 0.0)  # some voxels below the threshold
        self.assertTrue(torch.autograd.gradcheck(lambda p: fold_penalty(p, 0.5), (phi,)))
        self.assertEqual(float(fold_penalty(identity_map((6, 7)), 0.5)), 0.0)

    def test_fold_penalty_equals_its_autograd_form(self):
        """The hand-written backward against autograd through max(tau - det J, 0)^2 (jacobian_determinant), float64,
        2D and 3D, a batch of two (one item above the threshold everywhere), on a strided view as the optimisation
        passes it; a map above the threshold everywhere gets no gradient (autograd's zero)."""
        g = torch.Generator().manual_seed(1)
        for shape, amp in (((7, 9), 0.4), ((6, 7, 8), 0.35)):
            ndim = len(shape)
            noise = torch.rand(2, ndim, *shape, generator=g, dtype=torch.float64)
            noise[1] *= 0.01  # the second item: nearly the identity, above the threshold everywhere
            base = identity_map(shape, dtype=torch.float64) + amp * noise
            weights = torch.tensor([0.7, 1.3], dtype=torch.float64)
            results = []
            for fn in (fold_penalty, lambda p, t: torch.relu(t - jacobian_determinant(p)).pow(2).flatten(1).mean(1)):
                phi = base.clone().requires_grad_(True)
                sub = phi[(slice(None), slice(None)) + (slice(None, None, 2),) * ndim] if ndim == 3 else phi
                value = fn(sub, 0.5)
                (value * weights).sum().backward()
                results.append((value.detach(), phi.grad))
            (v, gr), (v_ref, gr_ref) = results
            torch.testing.assert_close(v, v_ref, rtol=0, atol=0)  # the same operations
            self.assertGreater(float(v[0]), 0.0)
            self.assertEqual(float(v[1]), 0.0)
            torch.testing.assert_close(gr, gr_ref, rtol=1e-12, atol=1e-14)
        smooth = identity_map((6, 7, 8), dtype=torch.float64).requires_grad_(True)
        out = fold_penalty(smooth, 0.5)
        self.assertEqual(float(out), 0.0)
        out.sum().backward()
        self.assertIsNone(smooth.grad)  # nothing to back-propagate
        with self.assertRaisesRegex(ValueError, "threshold"):
            fold_penalty(smooth, -1.0)

    def test_level_shapes(self):
        self.assertEqual(level_shapes((128, 149, 128), (1.5,) * 3, (0.25, 0.5, 1.0)),
                         [(32, 37, 32), (64, 74, 64), (128, 149, 128)])  # fmt: skip
        # a 0.75 mm scan capped at 1.5 mm: the finest level is the 1.5 mm grid
        self.assertEqual(level_shapes((255, 297, 255), (0.75,) * 3, (1.0,), max_finest_spacing_mm=1.5),
                         [(128, 149, 128)])  # fmt: skip
        capped = level_shapes((128, 149, 128), (1.5,) * 3, (1.0,), max_voxels=10**6)[0]
        self.assertLessEqual(capped[0] * capped[1] * capped[2], 10**6)

    def test_presets(self):
        self.assertIsInstance(PRESETS["brain"], DeformablePreset)
        two = PRESETS["brain"].finest(2, "test")
        self.assertEqual(two.iterations, PRESETS["brain"].iterations[1:])
        self.assertEqual(two.work, PRESETS["brain"].work[1:])

    def test_level_iterations_by_work(self):
        """``work``: a level on a small grid runs more iterations (ceil(W / n), at most ``max_iterations``), never
        fewer than ``iterations``; a level of 0 iterations stays skipped; ``work=None`` keeps ``iterations``."""
        preset = DeformablePreset(**{**PRESETS["brain"].__dict__, "iterations": (60, 0, 12),
                                     "work": (None, 1e6, 1000.0 * 1000), "max_iterations": 40})  # fmt: skip
        self.assertEqual(preset.check("test").level_iterations([(10, 10, 10), (20, 20, 20), (100, 100, 100)]),
                         (60, 0, 12))  # fmt: skip
        self.assertEqual(preset.level_iterations([(10, 10, 10), (20, 20, 20), (10, 10, 40)]), (60, 0, 40))
        self.assertEqual(preset.level_iterations([(10, 10, 10), (20, 20, 20), (40, 50, 20)]), (60, 0, 25))
        plain = DeformablePreset(**{**preset.__dict__, "work": None})
        self.assertEqual(plain.level_iterations([(4, 4, 4)] * 3), (60, 0, 12))
        brain = PRESETS["brain"]  # 12 finest iterations on a 1.2-1.5 mm brain grid, 60 on a 4 mm one
        self.assertEqual(brain.level_iterations([(34, 35, 40), (69, 70, 80), (138, 141, 159)])[2], 12)
        self.assertEqual(brain.level_iterations([(12, 14, 12), (24, 28, 24), (48, 56, 48)])[2], 60)
        with self.assertRaisesRegex(ValueError, "preset 'work' must be None or one value > 0"):
            DeformablePreset(**{**preset.__dict__, "work": (1.0, -1.0, None)}).check("test")
        with self.assertRaisesRegex(ValueError, "preset 'work' must be None or one value > 0"):
            DeformablePreset(**{**preset.__dict__, "work": (1.0,)}).check("test")

    def test_bad_inputs(self):
        moving = _volume()
        with self.assertRaisesRegex(ValueError, "deformable_opt: unknown preset 'knee'"):
            deformable_opt(moving, moving, preset="knee")
        with self.assertRaisesRegex(ValueError, "deformable_opt: unknown preset fields"):
            deformable_opt(moving, moving, preset={"iteration": (1, 1, 1)})
        with self.assertRaisesRegex(ValueError, "deformable_opt: 'levels' must be numbers in"):
            deformable_opt(moving, moving, levels=(1.0, 0.5))
        with self.assertRaisesRegex(ValueError, "4 levels were asked for but the preset has 3"):
            deformable_opt(moving, moving, levels=(0.125, 0.25, 0.5, 1.0))
        with self.assertRaisesRegex(ValueError, "deformable_opt: 'optimizer' must be"):
            deformable_opt(moving, moving, optimizer="sgd")
        with self.assertRaisesRegex(ValueError, "deformable_opt: 'similarity' must be"):
            deformable_opt(moving, moving, similarity="ncc")
        with self.assertRaisesRegex(ValueError, "deformable_opt: 'max_seconds' must be > 0"):
            deformable_opt(moving, moving, max_seconds=0)
        with self.assertRaisesRegex(ValueError, "deformable_opt: 'moving' and 'fixed' must have the same spatial"):
            deformable_opt(moving, moving[..., :-2])
        with self.assertRaisesRegex(ValueError, "deformable_opt: 'initial_map' must be on the images' grid"):
            deformable_opt(moving, moving, initial_map=identity_map((20, 24, 16)))
        with self.assertRaisesRegex(ValueError, "preset field 'lr' needs one entry per level"):
            deformable_opt(moving, moving, preset={"lr": (1e-3,)})
        with self.assertRaisesRegex(ValueError, "mask"):
            deformable_opt(moving, moving, mask=torch.ones(1, 1, 4, 4, 4))
        with self.assertRaisesRegex(TypeError, "deformable_opt: 'preset' must be"):
            deformable_opt(moving, moving, preset=3)


if __name__ == "__main__":
    unittest.main()
