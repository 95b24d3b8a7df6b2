"""FoldingMetric and SymmetryMetric (MONAI cumulative metrics) with known answers."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import affine_to_map, identity_map, invert_affine, map_to_ddf
from monai_avsm.metrics import FoldingMetric, SymmetryMetric, compute_folds, compute_symmetry_error


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
