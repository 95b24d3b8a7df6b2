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
"""compute_inverse_consistency (monai_avsm.metrics.inverse_consistency) with known answers: an affine map and its exact
inverse are consistent; a translation paired with itself is off by twice the translation, in voxels and in mm."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.functional import affine_to_map, identity_map, invert_affine
from monai_avsm.metrics import compute_inverse_consistency


class TestInverseConsistency(unittest.TestCase):
    def test_affine_and_its_inverse(self):
        shape = (16, 18, 14)
        A = torch.eye(3, dtype=torch.float64).unsqueeze(0) * 0.9
        A[0, 0, 1] = 0.05
        b = torch.tensor([[0.03, -0.02, 0.01]], dtype=torch.float64)
        phi, phi_inv = affine_to_map(A, b, shape), affine_to_map(*invert_affine(A, b), shape)
        out = compute_inverse_consistency(phi, phi_inv, margin=3)
        self.assertEqual(
            sorted(out), sorted(f"{d}_{s}_mm" for d in ("forward_inverse", "inverse_forward") for s in ("mean", "max"))
        )
        for value in out.values():
            self.assertEqual(value.dtype, torch.float64)
            self.assertLess(float(value), 1e-10)

    def test_known_translation_in_voxels_and_mm(self):
        shape = (20, 22, 18)
        step = 2  # voxels along axis 0: normalised t = 2 * step / (N - 1)
        t = 2.0 * step / (shape[0] - 1)
        phi = identity_map(shape, dtype=torch.float64).clone()
        phi[:, 0] += t  # both "inverses" shift the same way: composed = x + 2 t
        voxels = compute_inverse_consistency(phi, phi, margin=5)  # identity world matrices: voxel units
        for direction in ("forward_inverse", "inverse_forward"):
            self.assertAlmostEqual(float(voxels[f"{direction}_mean_mm"]), 2 * step, places=9)
            self.assertAlmostEqual(float(voxels[f"{direction}_max_mm"]), 2 * step, places=9)
        mm = compute_inverse_consistency(phi, phi, torch.diag(torch.tensor([1.5, 2.0, 3.0, 1.0])), margin=5)
        self.assertAlmostEqual(float(mm["inverse_forward_mean_mm"]), 2 * step * 1.5, places=9)  # fixed grid: 1.5 mm

    def test_float32_matches_float64(self):
        # the writer's precision: a smooth non-affine map and a first-order inverse, errors of ~0.1 mm to report
        shape = (24, 26, 22)
        g = torch.Generator().manual_seed(3)
        coarse = torch.randn(1, 3, 4, 4, 4, generator=g, dtype=torch.float64) * 0.02
        u = torch.nn.functional.interpolate(coarse, size=shape, mode="trilinear", align_corners=True)
        ident = identity_map(shape, dtype=torch.float64)
        aff = torch.diag(torch.tensor([1.2, 1.5, 0.9, 1.0], dtype=torch.float64))
        ref = compute_inverse_consistency(ident + u, ident - u, aff, aff, margin=3)
        low = compute_inverse_consistency((ident + u).float(), (ident - u).float(), aff, aff, margin=3,
                                          dtype=torch.float32)  # fmt: skip
        for key, value in ref.items():
            self.assertGreater(float(value), 1e-3)  # a real error to measure
            self.assertEqual(low[key].dtype, torch.float64)
            self.assertLess(abs(float(low[key]) - float(value)), 1e-4, key)
        with self.assertRaisesRegex(ValueError, "dtype"):
            compute_inverse_consistency(ident, ident, dtype=torch.float16)

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_inverse_consistency(identity_map((5, 6, 7)), identity_map((5, 6, 8)))
        with self.assertRaisesRegex(ValueError, "NaN|finite"):
            compute_inverse_consistency(torch.full((1, 3, 5, 6, 7), float("nan")), identity_map((5, 6, 7)))


if __name__ == "__main__":
    unittest.main()
