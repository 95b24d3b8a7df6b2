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
"""The fast mode's guard (:func:`monai_avsm.apps.registration.keep_better_than_input`): the network's result is kept
only when it scores better than its pre-aligned input (by a relative margin in ``register --fast``), on the real T1
with known answers."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.apps.registration import keep_better_than_input
from monai_avsm.functional import identity_map, inverse_map, warp_image
from monai_avsm.transforms import RandSyntheticDeformation
from tests.utils import real_volume


def _pair():
    """``fixed = moving o phi`` for a known smooth deformation of the real T1 crop: ``(moving, fixed, phi)``."""
    moving = real_volume()[:, :, :32, :40, :24].contiguous()
    t = RandSyntheticDeformation(rotation_deg=0, scale=0, translation_mm=0, displacement_mm=5.0, smoothness=0.2)
    t.set_random_state(0)
    fixed = t(moving[0], spacing=(2.0, 2.0, 2.0))[None].float()
    return moving, fixed, t.deformation.maps(moving.shape[2:])[0][None].float()


def _result(phi: torch.Tensor) -> dict:
    theta = torch.cat([torch.eye(3), torch.zeros(3, 1)], dim=1)[None]
    return {"map": phi, "affine": theta, "velocities": [torch.zeros(1, 3, 4, 4, 4)]}


class TestKeepBetterThanInput(unittest.TestCase):
    def test_a_good_result_is_kept(self):
        moving, fixed, phi = _pair()
        pred = _result(phi)
        out, record = keep_better_than_input(pred, moving, fixed)
        self.assertIs(out, pred)
        self.assertEqual(record["kept"], "network")
        self.assertLess(record["scores"]["network"], record["scores"]["prealignment"])

    def test_a_worse_result_is_replaced_by_the_input(self):
        """A map that moves the image 3 voxels away is worse than the (already aligned) input: the result becomes the
        identity, with an identity affine and no vSVF steps, so its inverse is the identity too."""
        moving, _, _ = _pair()
        shifted = identity_map(moving.shape[2:]).clone()
        shifted[:, 0] += 3 * 2.0 / (moving.shape[2] - 1)
        out, record = keep_better_than_input(_result(shifted), moving, moving)
        self.assertEqual(record["kept"], "prealignment")
        self.assertLess(record["scores"]["prealignment"], record["scores"]["network"])
        torch.testing.assert_close(out["map"], identity_map(moving.shape[2:]))
        torch.testing.assert_close(out["affine"], torch.cat([torch.eye(3), torch.zeros(3, 1)], dim=1)[None])
        self.assertEqual(out["velocities"], [])
        torch.testing.assert_close(warp_image(moving, out["map"]), moving, atol=1e-5, rtol=0)
        torch.testing.assert_close(inverse_map(out), identity_map(moving.shape[2:]), atol=1e-6, rtol=0)

    def test_mask_restricts_the_score(self):
        moving, fixed, phi = _pair()
        mask = (fixed > 0.1).float()
        _, record = keep_better_than_input(_result(phi), moving, fixed, mask)
        self.assertEqual(record["kept"], "network")
        _, unmasked = keep_better_than_input(_result(phi), moving, fixed)
        print(f"\n[fast selection] prealignment score masked {record['scores']['prealignment']:.5f}, "
              f"unmasked {unmasked['scores']['prealignment']:.5f}")  # fmt: skip
        self.assertGreater(abs(record["scores"]["prealignment"] - unmasked["scores"]["prealignment"]), 1e-3)

    def test_margin(self):
        """A tenth of the true deformation lowers the loss a little: kept without a margin, replaced by the input
        when the margin is above its relative improvement, kept when below; the record states both."""
        moving, fixed, phi = _pair()
        ident = identity_map(moving.shape[2:])
        small = ident + 0.1 * (phi - ident)
        _, free = keep_better_than_input(_result(small), moving, fixed)
        self.assertEqual(free["kept"], "network")
        rel = free["improvement"]
        s_in, s_net = free["scores"]["prealignment"], free["scores"]["network"]
        self.assertAlmostEqual(rel, (s_in - s_net) / abs(s_in), places=12)
        self.assertGreater(rel, 0.0)
        _, full = keep_better_than_input(_result(phi), moving, fixed)
        self.assertGreater(full["improvement"], 2 * rel)  # the whole deformation gains more
        _, strict = keep_better_than_input(_result(small), moving, fixed, min_improvement=2 * rel)
        self.assertEqual(strict["kept"], "prealignment")
        self.assertEqual(strict["min_improvement"], 2 * rel)
        _, loose = keep_better_than_input(_result(small), moving, fixed, min_improvement=rel / 2)
        self.assertEqual(loose["kept"], "network")
        _, whole = keep_better_than_input(_result(phi), moving, fixed, min_improvement=2 * rel)
        self.assertEqual(whole["kept"], "network")

    def test_margin_is_checked(self):
        moving, fixed, phi = _pair()
        for bad in (-0.1, 1.0, float("nan"), True, "0.02"):
            with self.assertRaisesRegex(ValueError, "min_improvement"):
                keep_better_than_input(_result(phi), moving, fixed, min_improvement=bad)


if __name__ == "__main__":
    unittest.main()
