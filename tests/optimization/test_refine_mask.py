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
"""Test-time refinement with a fixed-image mask (a project extension): on a small synthetic 3D pair whose fixed image
is corrupted in one corner, a mask excluding the corner lets the refinement improve the masked objective, which never
increases; a user similarity receives the mask; ill masks and similarities without a mask keyword are refused."""

from __future__ import annotations

import unittest

import torch
from monai.losses import GlobalMutualInformationLoss

from monai_avsm.functional import identity_map
from monai_avsm.losses import MKLNCCLoss
from monai_avsm.optimization import refine

SHAPE = (24, 24, 24)
CORNER = (Ellipsis, slice(0, 10), slice(0, 10), slice(0, 10))


def _blobs(centers, shift=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """A sum of Gaussian blobs ``(1, 1, *SHAPE)``, all moved by ``shift`` voxels."""
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in SHAPE], indexing="ij")
    image = torch.zeros(SHAPE)
    for center, sigma, amplitude in centers:
        r2 = sum((g - c - s) ** 2 for g, c, s in zip(grids, center, shift))
        image += amplitude * torch.exp(-r2 / (2 * sigma * sigma))
    return image[None, None]


def _pair():
    """(moving, fixed with a corrupted corner, mask excluding that corner, the network-like output at identity)."""
    g = torch.Generator().manual_seed(0)
    centers = [
        (
            tuple((torch.rand(3, generator=g) * 14 + 5).tolist()),
            float(torch.rand(1, generator=g) * 2 + 2.5),
            float(torch.rand(1, generator=g) * 0.7 + 0.3),
        )
        for _ in range(8)
    ]
    moving = _blobs(centers)
    fixed = _blobs(centers, shift=(1.5, -1.0, 1.0))
    fixed[CORNER] = torch.rand(1, 1, 10, 10, 10, generator=g) * 2.0  # the images disagree there
    mask = torch.ones(1, 1, *SHAPE, dtype=torch.bool)
    mask[CORNER] = False
    net_output = {"map": identity_map(SHAPE), "moving": moving, "fixed": fixed}
    return moving, fixed, mask, net_output


class TestRefineMask(unittest.TestCase):
    def test_mask_lets_the_refinement_improve_the_masked_objective(self):
        moving, fixed, mask, net_output = _pair()
        masked_sim = MKLNCCLoss(3, reduction="none")  # the default similarity: the paper's windows for 24^3
        out = refine(net_output, iterations=5, progress=False, mask=mask, seed=0)
        plain = refine(net_output, iterations=5, progress=False, seed=0)
        before = masked_sim(moving, fixed, mask)
        after, after_plain = masked_sim(out["warped"], fixed, mask), masked_sim(plain["warped"], fixed, mask)
        print(
            f"\n[refine mask] masked objective {float(out['initial_loss']):.4f} -> {float(out['loss']):.4f}; masked "
            f"similarity {float(before):.4f} -> {float(after):.4f} (unmasked refinement: {float(after_plain):.4f})"
        )
        # the reported objective is the masked one, and it never increases
        torch.testing.assert_close(out["initial_loss"], before, rtol=0, atol=1e-5)
        self.assertTrue(bool((out["loss"] <= out["initial_loss"]).all()))
        self.assertTrue(bool(out["improved"].all()))
        self.assertLess(float(out["loss"]), 0.7 * float(out["initial_loss"]))
        self.assertLess(float(after), 0.5 * float(before))  # the regulariser is >= 0
        # the masked similarity of the unmasked refinement, which also fits the corrupted corner, is worse
        self.assertLess(float(after), float(after_plain))
        self.assertEqual(len(out["maps"]), 1)
        self.assertTrue(torch.equal(out["fixed"], fixed))

    def test_user_similarity_receives_the_mask_and_never_worse(self):
        moving, fixed, mask, net_output = _pair()
        float_mask = mask.float().expand(2, 1, *SHAPE)
        seen = []

        def sim(warped, target, mask):
            seen.append(mask)
            return (((warped - moving) ** 2) * mask).flatten(1).mean(1)  # minimal at the start (the identity)

        batch = {k: torch.cat([v, v]) for k, v in net_output.items()}
        batch["warped"] = batch["moving"]  # the network's warped image: the objective is exactly 0 at the start
        kept = refine(batch, iterations=2, similarity=sim, progress=False, mask=float_mask)
        self.assertGreater(len(seen), 1)
        self.assertTrue(all(m.dtype == torch.bool and torch.equal(m, float_mask > 0) for m in seen))
        self.assertFalse(bool(kept["improved"].any()))
        self.assertTrue(torch.equal(kept["map"], batch["map"].expand(2, -1, -1, -1, -1)))
        self.assertTrue(torch.equal(kept["loss"], kept["initial_loss"]))

    def test_ill_masks(self):
        _, _, mask, net_output = _pair()
        kwargs = dict(iterations=1, progress=False)
        with self.assertRaisesRegex(ValueError, r"refine: 'mask' must have shape \(1, 1, 24, 24, 24\)"):
            refine(net_output, mask=mask[..., :-1], **kwargs)
        with self.assertRaisesRegex(ValueError, "refine: 'mask' must be binary"):
            refine(net_output, mask=mask * 0.5, **kwargs)
        with self.assertRaisesRegex(ValueError, "refine: 'mask' is all zero: the mask selects no voxel"):
            refine(net_output, mask=torch.zeros_like(mask), **kwargs)
        with self.assertRaisesRegex(TypeError, "refine: 'mask' was given but the similarity GlobalMutualInformation"):
            refine(net_output, similarity=GlobalMutualInformationLoss(), mask=mask, **kwargs)
        with self.assertRaisesRegex(TypeError, "refine: 'mask' was given but the similarity .*<lambda>"):
            refine(net_output, similarity=lambda w, f: (w - f).abs().mean(), mask=mask, **kwargs)
        tiny = torch.zeros_like(mask)
        tiny[..., :4, :4, :4] = True  # 64 voxels: no 12^3 window of the paper's rule for the image is half inside
        with self.assertRaisesRegex(ValueError, r"kernel \(12, 12, 12\).*lower 'mask_fraction'"):
            refine(net_output, similarity=MKLNCCLoss(3, reduction="none"), mask=tiny, **kwargs)
        # the default similarity with a mask takes its windows from the mask's bounding box: the tiny mask works
        out = refine(net_output, mask=tiny, **kwargs)
        self.assertLessEqual(float(out["loss"][0]), float(out["initial_loss"][0]))

    def test_masked_default_similarity_fits_a_brain_mask_on_a_fine_grid(self):
        """On a 96x112x96 grid the paper's rule gives dilated windows spanning 95 voxels: no window has half its
        voxels in a brain-sized mask. The masked default uses the rule for the mask's bounding box, contiguous."""
        from monai_avsm.optimization.utils import masked_default_similarity

        shape = (96, 112, 96)
        grid = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, n) for n in shape], indexing="ij"))
        radii = torch.tensor([0.72, 0.76, 0.72]).view(3, 1, 1, 1)
        mask = ((grid / radii) ** 2).sum(0)[None, None] <= 1  # an ellipsoid: bounding box about 70x86x70 voxels
        image = torch.rand(1, 1, *shape, generator=torch.Generator().manual_seed(0))
        with self.assertRaisesRegex(ValueError, "no window"):
            MKLNCCLoss(3, reduction="none")(image, image, mask=mask)
        sim = masked_default_similarity(3, mask)
        self.assertEqual(sim.settings.dilations, ((1, 1, 1), (1, 1, 1)))
        self.assertEqual(sim.settings.kernel_sizes[1][0], 69 // 2)  # the rule for the box's smallest side (69)
        value = sim(image, image, mask=mask)
        torch.testing.assert_close(value, torch.zeros_like(value), atol=1e-4, rtol=0)  # identical images: 0
        self.assertGreater(float(sim(image.roll(3, -1), image, mask=mask)), float(value) + 0.1)


if __name__ == "__main__":
    unittest.main()
