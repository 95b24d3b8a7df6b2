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
"""SymmetryMetric and compute_symmetry_error (monai_avsm.metrics.symmetry) with known answers: an affine map and its
inverse are symmetric, two equal translations give the squared translation."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import affine_to_map, identity_map, invert_affine
from monai_avsm.metrics import SymmetryMetric, compute_symmetry_error


class TestSymmetryMetric(unittest.TestCase):
    @parameterized.expand([[(24, 26)], [(14, 16, 18)]])
    def test_affine_and_its_inverse_are_symmetric(self, shape):
        ndim = len(shape)
        A = torch.eye(ndim, dtype=torch.float64).unsqueeze(0) * 0.95
        A[0, 0, 1] = 0.05
        b = torch.full((1, ndim), 0.02, dtype=torch.float64)
        phi_ab = affine_to_map(A, b, shape)
        phi_ba = affine_to_map(*invert_affine(A, b), shape)
        mse = compute_symmetry_error(phi_ab, phi_ba, margin=3, log=False)
        self.assertLess(float(mse), 1e-20)

    def test_known_translation_error(self):
        """Both maps translate by t (not inverses): composed = x + 2t; in [0, 1] units the error is |t|^2."""
        shape = (20, 22)
        t = torch.tensor([0.04, -0.02], dtype=torch.float64)
        phi = identity_map(shape, dtype=torch.float64) + t.reshape(1, 2, 1, 1)
        expected = float((t**2).sum())
        metric = SymmetryMetric(margin=3)
        metric(y_pred=phi, y=phi)
        self.assertAlmostEqual(float(metric.aggregate()), math.log(expected), places=5)
        self.assertAlmostEqual(float(compute_symmetry_error(phi, phi, margin=3, log=False)), expected, places=14)

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_symmetry_error(identity_map((5, 6)), identity_map((5, 7)))
        with self.assertRaisesRegex(ValueError, "y"):
            SymmetryMetric()(y_pred=identity_map((5, 6)))


if __name__ == "__main__":
    unittest.main()
