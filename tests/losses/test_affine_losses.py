"""Affine losses (paper eq. 4, 5, 13): zero at identity / exact inverses, known values, the lambda_ar schedule."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import identity_affine, invert_affine
from monai_avsm.losses import AffineRegularizationLoss, AffineRegularizationWeight, AffineSymmetryLoss


def random_affine(batch, ndim, seed, scale=0.2):
    g = torch.Generator().manual_seed(seed)
    A = torch.eye(ndim, dtype=torch.float64) + scale * torch.randn(batch, ndim, ndim, generator=g, dtype=torch.float64)
    b = scale * torch.randn(batch, ndim, generator=g, dtype=torch.float64)
    return A, b


class TestAffineRegularizationLoss(unittest.TestCase):
    @parameterized.expand([[2], [3]])
    def test_zero_at_identity_and_known_value(self, ndim):
        loss = AffineRegularizationLoss()
        self.assertEqual(float(loss(*identity_affine(3, ndim))), 0.0)
        A, b = random_affine(2, ndim, seed=ndim)
        expected = ((A - torch.eye(ndim, dtype=torch.float64)) ** 2).sum((1, 2)) + (b**2).sum(1)
        torch.testing.assert_close(AffineRegularizationLoss(reduction="none")(A, b), expected)
        torch.testing.assert_close(AffineRegularizationLoss(weight=2.5, reduction="sum")(A, b), 2.5 * expected.sum())
        torch.testing.assert_close(loss(A, b), expected.mean())

    def test_gradcheck(self):
        A, b = random_affine(2, 3, seed=9)
        self.assertTrue(torch.autograd.gradcheck(AffineRegularizationLoss(), (A.requires_grad_(), b.requires_grad_())))

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "weight"):
            AffineRegularizationLoss(weight=-1.0)
        with self.assertRaisesRegex(ValueError, "'A'"):
            AffineRegularizationLoss()(torch.eye(4).unsqueeze(0), torch.zeros(1, 4))
        with self.assertRaisesRegex(ValueError, "reduction|mean"):
            AffineRegularizationLoss(reduction="median")


class TestAffineRegularizationWeight(unittest.TestCase):
    def test_eq13_values(self):
        schedule = AffineRegularizationWeight()  # C_ar = 10, K_ar = 4
        for n in (0, 1, 5, 10, 30, 80):
            self.assertAlmostEqual(schedule(n), 40.0 / (4.0 + math.exp(n / 4.0)))
        self.assertAlmostEqual(schedule(0), 8.0)
        values = [schedule(n) for n in range(60)]
        self.assertTrue(all(a > b for a, b in zip(values, values[1:])))
        self.assertEqual(schedule(10_000), 0.0)
        self.assertEqual(AffineRegularizationWeight(min_weight=1e-3)(200), 1e-3)

    def test_ill_arguments(self):
        with self.assertRaisesRegex(ValueError, "k_ar"):
            AffineRegularizationWeight(k_ar=0)
        with self.assertRaisesRegex(ValueError, "epoch"):
            AffineRegularizationWeight()(-1)


class TestAffineSymmetryLoss(unittest.TestCase):
    @parameterized.expand([[2], [3]])
    def test_zero_for_exact_inverse(self, ndim):
        A, b = random_affine(4, ndim, seed=ndim + 10)
        A_ts, b_ts = invert_affine(A, b)
        self.assertLess(float(AffineSymmetryLoss(weight=10.0)(A, b, A_ts, b_ts)), 1e-20)
        self.assertGreater(float(AffineSymmetryLoss()(A, b, A, b)), 1e-3)

    def test_known_value_against_identity(self):
        """With (A_ts, b_ts) = (I, 0) the loss reduces to ||A - I||_F^2 + ||b||^2."""
        A, b = random_affine(2, 3, seed=3)
        A_id, b_id = identity_affine(2, 3, dtype=torch.float64)
        torch.testing.assert_close(
            AffineSymmetryLoss(reduction="none")(A, b, A_id, b_id), AffineRegularizationLoss(reduction="none")(A, b)
        )

    def test_ill_shapes(self):
        A, b = random_affine(2, 3, seed=4)
        A2, b2 = random_affine(2, 2, seed=5)
        with self.assertRaisesRegex(ValueError, "A_ts"):
            AffineSymmetryLoss()(A, b, A2, b2)


if __name__ == "__main__":
    unittest.main()
