"""Jacobian determinant: identity, affine maps and DDFs (voxel and physical units), constructed folds."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import (
    affine_to_map,
    fold_statistics,
    identity_map,
    jacobian_determinant,
    jacobian_determinant_ddf,
    jacobian_diagonal_product,
    jacobian_matrix,
    map_to_ddf,
    matrix_cofactors,
    matrix_determinant,
)


class TestJacobian(unittest.TestCase):
    @parameterized.expand([[(6, 7)], [(5, 6, 7)]])
    def test_identity_is_one(self, shape):
        det = jacobian_determinant(identity_map(shape, dtype=torch.float64))
        torch.testing.assert_close(det, torch.ones(1, 1, *shape, dtype=torch.float64))

    @parameterized.expand([[(6, 7)], [(5, 6, 7)]])
    def test_affine_is_det_a(self, shape):
        ndim = len(shape)
        g = torch.Generator().manual_seed(ndim)
        A = torch.eye(ndim, dtype=torch.float64) + 0.3 * torch.randn(2, ndim, ndim, generator=g, dtype=torch.float64)
        b = torch.randn(2, ndim, generator=g, dtype=torch.float64)
        phi = affine_to_map(A, b, shape)
        expected = torch.linalg.det(A).reshape(2, 1, *([1] * ndim)).expand(2, 1, *shape)
        torch.testing.assert_close(jacobian_determinant(phi), expected)
        # the same determinant from the MONAI voxel DDF, and from a physical DDF with its spacing
        torch.testing.assert_close(jacobian_determinant_ddf(map_to_ddf(phi)), expected)
        spacing = (0.5, 2.0, 1.5)[:ndim]
        ddf_mm = map_to_ddf(phi) * torch.tensor(spacing, dtype=torch.float64).reshape(1, ndim, *([1] * ndim))
        torch.testing.assert_close(jacobian_determinant_ddf(ddf_mm, spacing=spacing), expected)

    def test_constructed_fold(self):
        """phi_0 goes 3,2,1,2,3,...,8 (voxels) along axis 0: the derivative is -1 at i = 0 (one-sided) and
        i = 1 (central), 0 at i = 2 and 1 elsewhere. A fold is det J <= 0: rows 0, 1 (det -1) and 2 (det 0)."""
        f = torch.tensor([3, 2, 1, 2, 3, 4, 5, 6, 7, 8], dtype=torch.float64)
        n0, n1 = 10, 6
        phi = identity_map((n0, n1), dtype=torch.float64)
        phi[0, 0] = (2 * f / (n0 - 1) - 1).reshape(n0, 1).expand(n0, n1)
        det = jacobian_determinant(phi)
        torch.testing.assert_close(det[0, 0, :4, 0], torch.tensor([-1.0, -1.0, 0.0, 1.0], dtype=torch.float64))
        stats = fold_statistics(det)
        self.assertEqual(float(stats["count"][0]), 3 * n1)
        self.assertEqual(int((det < 0).sum()), 2 * n1)  # the paper's count (det J < 0) leaves out the det = 0 row
        self.assertAlmostEqual(float(stats["mean_abs"][0]), 2.0 / 3.0)
        self.assertAlmostEqual(float(stats["fraction"][0]), 3 * n1 / (n0 * n1))
        # an interior margin of 3 on axis 0 excludes the folded rows, a margin of 1 keeps two of them
        self.assertEqual(float(fold_statistics(det, margin=(3, 0))["count"][0]), 0.0)
        self.assertEqual(float(fold_statistics(det, margin=(1, 0))["count"][0]), 2 * n1)

    def test_determinant_differs_from_diagonal_product(self):
        """A = [[1, 2], [2, 1]] folds (det -3) though its diagonal product is 1 (the authors' measure misses it)."""
        A = torch.tensor([[[1.0, 2.0], [2.0, 1.0]]], dtype=torch.float64)
        phi = affine_to_map(A, torch.zeros(1, 2, dtype=torch.float64), (5, 6))
        torch.testing.assert_close(jacobian_determinant(phi), torch.full((1, 1, 5, 6), -3.0, dtype=torch.float64))
        torch.testing.assert_close(jacobian_diagonal_product(phi), torch.ones(1, 1, 5, 6, dtype=torch.float64))

    def test_no_fold_gives_zero_mean(self):
        stats = fold_statistics(torch.ones(2, 1, 4, 4))
        self.assertEqual(stats["count"].tolist(), [0.0, 0.0])
        self.assertEqual(stats["mean_abs"].tolist(), [0.0, 0.0])

    def test_ill_margin(self):
        with self.assertRaisesRegex(ValueError, "margin"):
            fold_statistics(torch.ones(1, 1, 4, 4), margin=2)


if __name__ == "__main__":
    unittest.main()


class TestCofactors(unittest.TestCase):
    def test_cofactors_are_the_derivative_of_the_determinant(self):
        """matrix_cofactors = d det / dJ (autograd of matrix_determinant) = det(J) J^-T, 2x2 and 3x3, float64."""
        g = torch.Generator().manual_seed(0)
        for d in (2, 3):
            jac = torch.randn(2, d, d, 4, 5, generator=g, dtype=torch.float64).requires_grad_(True)
            det = matrix_determinant(jac)
            (grad,) = torch.autograd.grad(det.sum(), jac)
            cof = matrix_cofactors(jac.detach())
            torch.testing.assert_close(cof, grad, rtol=1e-12, atol=1e-12)
            mats = jac.detach().permute(0, 3, 4, 1, 2)  # (B, *S, D, D)
            expected = torch.linalg.det(mats)[..., None, None] * torch.linalg.inv(mats).transpose(-1, -2)
            torch.testing.assert_close(cof.permute(0, 3, 4, 1, 2), expected, rtol=1e-9, atol=1e-9)


class TestJacobianMatrixPaths(unittest.TestCase):
    def test_buffer_path_equals_the_differentiable_path(self):
        """Without a gradient jacobian_matrix writes the differences into its result; the values are those of the
        differentiable path (central_difference + stack) to the bit, 2D and 3D, with and without the identity, and
        a size-2 axis (one-sided differences only)."""
        g = torch.Generator().manual_seed(0)
        for shape in ((5, 7), (4, 2, 6), (6, 7, 8)):
            f = torch.randn(2, len(shape), *shape, generator=g, dtype=torch.float64)
            sp = [0.5 + 0.25 * k for k in range(len(shape))]
            for add_identity in (False, True):
                fast = jacobian_matrix(f, sp, add_identity=add_identity)
                slow = jacobian_matrix(f.clone().requires_grad_(True), sp, add_identity=add_identity).detach()
                self.assertTrue(torch.equal(fast, slow), (shape, add_identity))
                self.assertFalse(fast.requires_grad)
