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
"""AVSMLoss with image masks (a project extension): ``mask`` restricts the source->target similarity terms,
``moving_mask`` the target->source ones; the other terms are unchanged; similarities without a mask keyword refuse."""

from __future__ import annotations

import math
import unittest

import torch
from monai.losses import GlobalMutualInformationLoss

from monai_avsm.losses import AVSMLoss, GlobalNCCLoss, MKLNCCLoss
from tests.losses.test_avsm_loss import symmetric_output


def _masks(shape=(20, 24)):
    fixed_mask = torch.zeros(2, 1, *shape, dtype=torch.bool)
    fixed_mask[:, :, 2:16, 3:20] = True
    fixed_mask[1, :, :, :8] = False  # a different mask per sample
    moving_mask = torch.ones(1, 1, *shape)
    moving_mask[..., 12:, 14:] = 0.0  # float, broadcast over the batch
    return fixed_mask, moving_mask


class TestAVSMLossMask(unittest.TestCase):
    def test_vsvf_stage_masked_similarity(self):
        _, out, moving, fixed = symmetric_output()
        fixed_mask, moving_mask = _masks()
        loss = AVSMLoss("vsvf", spatial_dims=2)
        plain = float(loss(out).detach())
        plain_parts = dict(loss.parts)
        total = loss(out, mask=fixed_mask, moving_mask=moving_mask)
        sim = MKLNCCLoss(2)
        expected = sum(
            float(sim(out["warped_steps"][k], fixed, fixed_mask) + sim(out["warped_steps_ts"][k], moving, moving_mask))
            for k in range(2)
        )
        self.assertTrue(math.isclose(loss.parts["similarity"], expected, rel_tol=1e-5), (loss.parts, expected))
        self.assertNotAlmostEqual(loss.parts["similarity"], plain_parts["similarity"], places=4)
        for key in ("momentum_reg", "map_sym", "affine_reg", "affine_sym"):  # the masks only touch the similarity
            self.assertEqual(loss.parts[key], plain_parts[key])
        self.assertTrue(math.isclose(float(total.detach()), sum(loss.parts.values()), rel_tol=1e-6))
        self.assertNotAlmostEqual(float(total.detach()), plain, places=4)
        total.backward()

        # only `mask`: the target->source similarity stays unmasked
        loss(out, mask=fixed_mask)
        expected = sum(
            float(sim(out["warped_steps"][k], fixed, fixed_mask) + sim(out["warped_steps_ts"][k], moving))
            for k in range(2)
        )
        self.assertTrue(math.isclose(loss.parts["similarity"], expected, rel_tol=1e-5))
        # all-ones masks: the unmasked loss
        ones = torch.ones(1, 1, 20, 24)
        self.assertTrue(math.isclose(float(loss(out, mask=ones, moving_mask=ones)), plain, rel_tol=1e-6))

    def test_affine_stage_masked_similarity(self):
        _, out, moving, fixed = symmetric_output(seed=1)
        fixed_mask, moving_mask = _masks()
        for similarity in (MKLNCCLoss(2), GlobalNCCLoss()):
            loss = AVSMLoss("affine", similarity=similarity, affine_reg_weight=2.0)
            loss(out, fixed, moving, mask=fixed_mask, moving_mask=moving_mask)
            expected = similarity(out["affine_warped"], fixed, fixed_mask) + similarity(
                out["affine_warped_ts"], moving, moving_mask
            )
            self.assertTrue(math.isclose(loss.parts["similarity"], float(expected), rel_tol=1e-5))

    def test_similarity_without_mask_keyword(self):
        _, out, _, _ = symmetric_output()
        fixed_mask, moving_mask = _masks()
        mi = AVSMLoss("vsvf", similarity=GlobalMutualInformationLoss())
        self.assertTrue(torch.isfinite(mi(out)))  # no mask: as before
        with self.assertRaisesRegex(
            TypeError, "AVSMLoss: 'mask' was given but the similarity GlobalMutualInformationLoss"
        ):
            mi(out, mask=fixed_mask)
        with self.assertRaisesRegex(TypeError, "AVSMLoss: 'moving_mask' was given .*GlobalMutualInformationLoss"):
            mi(out, moving_mask=moving_mask)

        def plain(pred, target):
            return ((pred - target) ** 2).mean()

        with self.assertRaisesRegex(TypeError, "similarity .*plain does not accept a 'mask' keyword"):
            AVSMLoss("vsvf", similarity=plain)(out, mask=fixed_mask)

        def with_kwargs(pred, target, **kwargs):
            return (((pred - target) ** 2) * kwargs.get("mask", 1.0)).mean()

        self.assertTrue(torch.isfinite(AVSMLoss("vsvf", similarity=with_kwargs)(out, mask=fixed_mask)))

    def test_ill_mask(self):
        _, out, _, _ = symmetric_output()
        with self.assertRaisesRegex(ValueError, "MKLNCCLoss: 'mask' must have shape"):
            AVSMLoss("vsvf", spatial_dims=2)(out, mask=torch.ones(1, 1, 20, 23))
        with self.assertRaisesRegex(ValueError, "MKLNCCLoss: 'mask' is all zero"):
            AVSMLoss("vsvf", spatial_dims=2)(out, moving_mask=torch.zeros(1, 1, 20, 24))


if __name__ == "__main__":
    unittest.main()
