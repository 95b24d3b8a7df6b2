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
"""FoldingMetric and compute_folds (monai_avsm.metrics.folding) with known answers: a reflection folds every voxel,
an affine map with det < 0 in voxel DDF form, the diagonal variant."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import affine_to_map, identity_map, map_to_ddf
from monai_avsm.metrics import FoldingMetric, compute_folds


def reflection_map(shape):
    """Reflection along axis 0: det J = -1 everywhere."""
    phi = identity_map(shape, dtype=torch.float64)
    phi[:, 0] = -phi[:, 0]
    return phi


class TestFoldingMetric(unittest.TestCase):
    @parameterized.expand([[(6, 7)], [(4, 5, 6)]])
    def test_accumulates_and_reduces(self, shape):
        n = math.prod(shape)
        metric = FoldingMetric(statistic="count")
        metric(y_pred=torch.cat([identity_map(shape, dtype=torch.float64), reflection_map(shape)]))
        metric(y_pred=reflection_map(shape))
        self.assertAlmostEqual(float(metric.aggregate()), 2 * n / 3)
        torch.testing.assert_close(metric.aggregate("none").flatten().double(), torch.tensor([0.0, n, n]).double())
        frac = FoldingMetric(statistic="fraction", margin=1)
        frac(y_pred=reflection_map(shape))
        self.assertAlmostEqual(float(frac.aggregate()), 1.0)

    def test_voxel_ddf_and_diagonal_variant(self):
        A = torch.tensor([[[1.0, 2.0], [2.0, 1.0]]], dtype=torch.float64)
        phi = affine_to_map(A, torch.zeros(1, 2, dtype=torch.float64), (5, 6))
        self.assertEqual(float(compute_folds(map_to_ddf(phi), space="voxel")["count"][0]), 30.0)
        self.assertEqual(float(compute_folds(phi, variant="diagonal")["count"][0]), 0.0)
        self.assertAlmostEqual(float(compute_folds(phi)["mean_abs"][0]), 3.0)

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "NaN"):
            compute_folds(torch.full((1, 2, 4, 4), float("nan")))
        with self.assertRaisesRegex(ValueError, "statistic|count"):
            FoldingMetric(statistic="folds")
        with self.assertRaisesRegex(ValueError, "normalised maps only"):
            compute_folds(torch.zeros(1, 2, 4, 4), space="voxel", variant="diagonal")


if __name__ == "__main__":
    unittest.main()
