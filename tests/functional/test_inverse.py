"""Inverse of AVSM transformations (negated velocities, inverse affine) and world Jacobians: known answers."""

from __future__ import annotations

import math
import unittest

import torch

from monai_avsm.functional import (
    affine_to_map,
    compose_with_affine,
    identity_map,
    inverse_map,
    invert_velocities,
    jacobian_determinant_ddf,
    map_to_world_points,
    world_jacobian_determinant,
)
from monai_avsm.metrics import compute_inverse_consistency
from monai_avsm.networks.blocks import MapAdvection


def _smooth_velocity(shape, amplitude, seed=0, dtype=torch.float64):
    """A smooth velocity field (normalised units) vanishing near the border: sums of sines times a bump."""
    g = torch.Generator().manual_seed(seed)
    ident = identity_map(shape, dtype=dtype)[0]
    bump = torch.ones(shape, dtype=dtype)
    for c in range(len(shape)):
        bump = bump * torch.cos(ident[c] * math.pi / 2) ** 2
    comps = []
    for c in range(len(shape)):
        k = torch.randint(1, 3, (len(shape),), generator=g).to(dtype)
        phase = torch.rand(1, generator=g, dtype=dtype) * math.pi
        arg = sum(k[a] * ident[a] * math.pi for a in range(len(shape))) + phase
        comps.append(amplitude * torch.sin(arg) * bump)
    return torch.stack(comps).unsqueeze(0)


def _theta(ndim, dtype=torch.float64):
    if ndim == 2:
        A = torch.tensor([[1.08, 0.06], [-0.04, 0.93]], dtype=dtype)
        b = torch.tensor([0.05, -0.03], dtype=dtype)
    else:
        A = torch.tensor([[1.05, 0.03, -0.02], [0.02, 0.96, 0.04], [-0.03, 0.01, 1.02]], dtype=dtype)
        b = torch.tensor([0.04, -0.02, 0.03], dtype=dtype)
    return torch.cat([A, b[:, None]], dim=1).unsqueeze(0)


class TestInverse(unittest.TestCase):
    def test_affine_only_is_exact(self):
        for shape in ((9, 11), (7, 8, 9)):
            theta = _theta(len(shape))
            phi = affine_to_map(theta[..., :-1], theta[..., -1], shape)
            psi = inverse_map({"map": phi, "affine": theta})
            # inverse after forward and forward after inverse are the identity (affine maps compose exactly)
            A, b = theta[0, :, :-1], theta[0, :, -1]
            back = torch.einsum("ij,bj...->bi...", A, psi) + b.reshape(1, -1, *([1] * len(shape)))
            torch.testing.assert_close(back, identity_map(shape, dtype=torch.float64).expand_as(back))

    def test_compose_with_affine_identity_and_translation(self):
        shape = (10, 12, 9)
        theta = _theta(3)
        ident = identity_map(shape, dtype=torch.float64)
        out = compose_with_affine(ident, theta)
        torch.testing.assert_close(out, affine_to_map(theta[..., :-1], theta[..., -1], shape))
        # phi = id + constant shift: phi(Ay + b) = Ay + b + shift, also for points outside the grid
        shift = torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64).reshape(1, 3, 1, 1, 1)
        out = compose_with_affine(ident + shift, theta)
        torch.testing.assert_close(out, affine_to_map(theta[..., :-1], theta[..., -1], shape) + shift)

    def test_negated_velocity_inverts_the_flow(self):
        """Forward: identity advected by v1 then v2 (two vSVF steps, displacements of ~2.7 voxels); inverse: by -v2
        then -v1. The compositions are the identity up to the discretisation (interpolation of the advected maps:
        measured 0.011 voxel mean, 0.26 max, the same for 5 to 40 RK4 steps)."""
        shape = (40, 40, 40)
        v1 = _smooth_velocity(shape, 0.06, seed=1)
        v2 = _smooth_velocity(shape, 0.05, seed=2)
        integ = MapAdvection(10)
        ident = identity_map(shape, dtype=torch.float64)
        phi = integ(integ(ident, v1), v2)  # id o psi^{v1}_{-1} o psi^{v2}_{-1}
        self.assertGreater(((phi - ident) * (shape[0] - 1) / 2).norm(dim=1).max().item(), 2.0)  # voxels
        psi = invert_velocities([v1, v2], integ)
        ic = compute_inverse_consistency(phi, psi, margin=3)  # voxels (identity world matrices)
        for direction in ("forward_inverse", "inverse_forward"):
            self.assertLess(ic[f"{direction}_mean_mm"].item(), 0.02)
            self.assertLess(ic[f"{direction}_max_mm"].item(), 0.4)
        # the steps in the same order, or the velocities not negated, are far from an inverse
        wrong_order = compute_inverse_consistency(phi, invert_velocities([v2, v1], integ), margin=3)
        self.assertGreater(wrong_order["forward_inverse_mean_mm"].item(), 0.05)
        not_negated = integ(integ(ident, v2), v1)
        wrong_sign = compute_inverse_consistency(phi, not_negated, margin=3)
        self.assertGreater(wrong_sign["forward_inverse_mean_mm"].item(), 0.5)

    def test_inverse_map_of_avsm_output(self):
        shape = (24, 28, 24)
        theta = _theta(3)
        v = [_smooth_velocity((12, 14, 12), 0.05, seed=3)]
        integ = MapAdvection(10)
        from monai_avsm.functional import resample_map

        phi0_low = resample_map(affine_to_map(theta[..., :-1], theta[..., -1], shape), (12, 14, 12))
        phi = resample_map(integ(phi0_low, v[0]), shape)
        psi = inverse_map({"map": phi, "affine": theta, "velocities": v}, integ)
        fixed = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))
        moving = fixed.clone()
        moving[:3, 3] = torch.tensor([1.0, -3.0, 2.0], dtype=torch.float64)
        ic = compute_inverse_consistency(phi, psi, fixed, moving, margin=3)
        self.assertLess(ic["forward_inverse_mean_mm"].item(), 0.1)
        self.assertLess(ic["inverse_forward_mean_mm"].item(), 0.1)
        with self.assertRaisesRegex(TypeError, "integrator"):
            inverse_map({"map": phi, "affine": theta, "velocities": v})
        with self.assertRaisesRegex(KeyError, "affine"):
            inverse_map({"map": phi})

    def test_inverse_consistency_units(self):
        """A constant half-voxel shift and its non-inverse (the same shift) give an error of one voxel in mm."""
        shape = (10, 10, 10)
        ident = identity_map(shape, dtype=torch.float64)
        shift = torch.zeros(1, 3, 1, 1, 1, dtype=torch.float64)
        shift[0, 0] = 2.0 / (shape[0] - 1) * 0.5  # half a voxel along axis 0
        aff = torch.diag(torch.tensor([3.0, 1.0, 1.0, 1.0], dtype=torch.float64))  # 3 mm voxels along axis 0
        ic = compute_inverse_consistency(ident + shift, ident + shift, aff, aff, margin=2)
        torch.testing.assert_close(ic["forward_inverse_mean_mm"], torch.tensor([3.0], dtype=torch.float64))
        ic = compute_inverse_consistency(ident + shift, ident - shift, aff, aff, margin=2)
        self.assertLess(ic["forward_inverse_max_mm"].item(), 1e-12)
        with self.assertRaisesRegex(ValueError, "same shape"):
            compute_inverse_consistency(ident, identity_map((10, 10, 9), dtype=torch.float64))


class TestWorldJacobian(unittest.TestCase):
    def test_affine_determinant_any_grid(self):
        T = torch.tensor([[1.1, 0.2, 0.0, 3.0], [0.0, 0.9, 0.1, -2.0], [0.05, 0.0, 1.2, 1.0], [0, 0, 0, 1.0]])
        T = T.to(torch.float64)
        # an oblique, anisotropic LPS-like grid
        grid = torch.tensor([[-0.8, 0.0, 0.3, 10.0], [0.0, -1.5, 0.0, 5.0], [0.4, 0.0, 2.4, -7.0], [0, 0, 0, 1]])
        grid = grid.to(torch.float64)
        from monai_avsm.functional import voxel_world_points

        p = voxel_world_points(grid, (6, 7, 5))
        q = torch.einsum("ij,j...->i...", T[:3, :3], p) + T[:3, 3].reshape(3, 1, 1, 1)
        det = world_jacobian_determinant(q, grid)
        torch.testing.assert_close(det, torch.full_like(det, float(torch.linalg.det(T[:3, :3]))))
        self.assertEqual(tuple(det.shape), (1, 6, 7, 5))

    def test_oblique_field_equals_the_matrix_product_form(self):
        """det(M + du/dj) / det(M), as computed, equals det(I + (du/dj) M^-1) for a random field on an oblique grid."""
        from monai_avsm.functional.jacobian import jacobian_matrix, matrix_determinant

        g = torch.Generator().manual_seed(0)
        M = torch.tensor([[-0.8, 0.1, 0.3], [0.0, -1.5, 0.2], [0.4, 0.0, 2.4]], dtype=torch.float64)
        u = torch.randn(1, 3, 7, 6, 5, generator=g, dtype=torch.float64) * 0.3
        ours = jacobian_determinant_ddf(u, voxel_axes=M)
        g_ = torch.einsum("zca...,ab->zcb...", jacobian_matrix(u, [1.0] * 3), torch.linalg.inv(M))
        ref = matrix_determinant(g_ + torch.eye(3, dtype=torch.float64).reshape(1, 3, 3, 1, 1, 1))
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)

    def test_analytic_field_and_folds(self):
        """q = p + (a sin(p_0 / s), 0, 0): det J = 1 + a cos(p_0 / s) / s, negative where it folds."""
        aff = torch.diag(torch.tensor([0.5, 1.0, 1.0, 1.0], dtype=torch.float64))
        from monai_avsm.functional import voxel_world_points

        p = voxel_world_points(aff, (200, 4, 4))
        for a, s in ((2.0, 4.0), (6.0, 4.0)):
            q = p.clone()
            q[0] = q[0] + a * torch.sin(p[0] / s)
            det = world_jacobian_determinant(q, aff)[0, 1:-1]
            expected = 1 + a * torch.cos(p[0, 1:-1] / s) / s
            # central differences: error <= (a / s) (h / s)^2 / 6 = 0.0039 for a = 6, s = 4, h = 0.5 mm
            torch.testing.assert_close(det, expected, atol=4e-3, rtol=0)
        self.assertTrue(bool((det < 0).any()))  # a / s > 1 folds

    def test_map_to_world_points_jacobian_of_identity_is_one(self):
        shape = (8, 9, 7)
        aff = torch.tensor([[2.0, 0, 0, 1], [0, 3.0, 0, 2], [0, 0, 1.5, 3], [0, 0, 0, 1]], dtype=torch.float64)
        q = map_to_world_points(identity_map(shape, dtype=torch.float64)[0], aff, aff, shape)
        det = world_jacobian_determinant(q, aff)
        torch.testing.assert_close(det, torch.ones_like(det))
        with self.assertRaisesRegex(ValueError, "points"):
            world_jacobian_determinant(torch.zeros(2, 4, 4, 4), aff)


if __name__ == "__main__":
    unittest.main()
