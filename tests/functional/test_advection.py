"""RK4 map advection: translation, analytic rotation with 4th-order convergence, non-identity initial maps,
the stability clamp, and float64 gradcheck (2D and 3D)."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import advect_map, central_difference, clamp_velocity, compose_maps, identity_map
from monai_avsm.functional.finite_differences import central_difference_transpose


def rotation_field(shape, omega, axes=(0, 1)):
    """v = omega (-x_j, x_i) in the (i, j) plane; its flow is a rotation by omega t about the centre."""
    ident = identity_map(shape, dtype=torch.float64)
    v = torch.zeros_like(ident)
    i, j = axes
    v[:, i] = -omega * ident[:, j]
    v[:, j] = omega * ident[:, i]
    return ident, v


def rotated(ident, angle, axes=(0, 1)):
    """R(angle) x in the (i, j) plane."""
    out = ident.clone()
    i, j = axes
    c, s = math.cos(angle), math.sin(angle)
    out[:, i] = c * ident[:, i] - s * ident[:, j]
    out[:, j] = s * ident[:, i] + c * ident[:, j]
    return out


class TestCentralDifference(unittest.TestCase):
    def test_linear_is_exact_and_quadratic_inside(self):
        x = torch.linspace(0, 1, 11, dtype=torch.float64)
        torch.testing.assert_close(central_difference(3 * x + 1, 0, 0.1), torch.full_like(x, 3.0))
        d = central_difference(x**2, 0, 0.1)
        torch.testing.assert_close(d[1:-1], 2 * x[1:-1])
        torch.testing.assert_close(d[0], (x[1] ** 2 - x[0] ** 2) / 0.1)  # one-sided = linear extrapolation

    @parameterized.expand([[2, 0], [2, 1], [3, 2], [7, 1], [7, 2]])
    def test_transpose_is_adjoint(self, n, dim):
        """<D f, y> = <f, D^T y> for random f, y (the identity the hand-written advection backward relies on)."""
        g = torch.Generator().manual_seed(n + dim)
        shape = [3, 4, 5]
        shape[dim] = n
        f = torch.randn(*shape, generator=g, dtype=torch.float64)
        y = torch.randn(*shape, generator=g, dtype=torch.float64)
        lhs = (central_difference(f, dim, 0.3) * y).sum()
        rhs = (f * central_difference_transpose(y, dim, 0.3)).sum()
        torch.testing.assert_close(lhs, rhs)


class TestAdvection(unittest.TestCase):
    @parameterized.expand([[(12, 15)], [(8, 9, 10)]])
    def test_zero_velocity_returns_initial_map(self, shape):
        phi0 = torch.rand(2, len(shape), *shape, dtype=torch.float64)
        torch.testing.assert_close(advect_map(phi0, torch.zeros_like(phi0)), phi0, rtol=0, atol=0)
        torch.testing.assert_close(advect_map(phi0, torch.rand_like(phi0), num_steps=0), phi0, rtol=0, atol=0)

    @parameterized.expand([[(12, 15), torch.float32], [(8, 9, 10), torch.float32], [(8, 9, 10), torch.float64]])
    def test_constant_velocity_advects_to_translation(self, shape, dtype):
        """For constant v the pull-back map is exactly x - v (interior error < 1e-3 voxel)."""
        ident = identity_map(shape, dtype=dtype)
        v = torch.zeros_like(ident)
        for c, n in enumerate(shape):
            v[:, c] = (1.5 + c) * 2.0 / (n - 1)  # 1.5, 2.5, 3.5 voxels per unit time
        phi = advect_map(ident, v)
        vox = torch.tensor([(n - 1) / 2 for n in shape], dtype=dtype).reshape(1, -1, *([1] * len(shape)))
        err_vox = ((phi - (ident - v)) * vox).abs().max()
        self.assertLess(float(err_vox), 1e-3)

    @parameterized.expand([[(17, 17), (0, 1)], [(9, 11, 13), (0, 2)]])
    def test_rotation_converges_with_rk4_order(self, shape, axes):
        """v = omega(-x_j, x_i): Phi(1) = R(-omega) x exactly in space (linear maps), so the error is RK4's O(dt^4)."""
        omega = 1.2
        ident, v = rotation_field(shape, omega, axes)
        exact = rotated(ident, -omega, axes)
        errors = [float((advect_map(ident, v, n) - exact).abs().max()) for n in (2, 4, 8, 16)]
        orders = [math.log2(errors[k] / errors[k + 1]) for k in range(3)]
        for p in orders:
            self.assertGreater(p, 3.7)
        self.assertLess(errors[-1], 1e-5)

    def test_initial_map_is_composed_with_flow(self):
        """From a non-identity Phi_0: Phi(1) = Phi_0 o psi_{-1}; checked analytically and against compose_maps."""
        omega = 0.6
        results = []
        for n in (33, 65):
            shape = (n, n + 2)
            ident, v = rotation_field(shape, omega)
            phi0 = ident + 0.05 * torch.sin(math.pi * ident.flip(1))
            phi = advect_map(phi0, v, num_steps=20)
            y = rotated(ident, -omega)  # psi_{-1}(x)
            exact = y + 0.05 * torch.sin(math.pi * y.flip(1))
            inside = (ident**2).sum(1, keepdim=True).sqrt().expand_as(phi) < 0.75  # x and psi_{-1}(x) in the domain
            results.append(float((phi - exact)[inside].abs().max()))
            flow = advect_map(ident, v, num_steps=20)
            composed = compose_maps(phi0, flow)
            self.assertLess(float((phi - composed)[inside].abs().max()), 2e-3)
        # the spatial error is second order (central differences)
        self.assertLess(results[1], 0.35 * results[0])
        self.assertLess(results[1], 1e-3)

    def test_velocity_clamp(self):
        shape = (10, 12)
        ident = identity_map(shape, dtype=torch.float64)
        v = torch.zeros_like(ident)
        v[:, 0] = 10 * 2.0 / (shape[0] - 1)  # 10 voxels per unit time
        v[:, 1] = -0.5 * 2.0 / (shape[1] - 1)
        vc = clamp_velocity(v, 4.0)
        torch.testing.assert_close(vc[:, 0], torch.full_like(vc[:, 0], 4 * 2.0 / (shape[0] - 1)))
        torch.testing.assert_close(vc[:, 1], v[:, 1])
        torch.testing.assert_close(advect_map(ident, v, velocity_clamp=4.0), ident - vc)
        with self.assertRaisesRegex(ValueError, "max_voxels"):
            clamp_velocity(v, 0.0)

    def test_gradcheck_2d(self):
        g = torch.Generator().manual_seed(0)
        phi0 = identity_map((5, 6), dtype=torch.float64) + 0.05 * torch.rand(
            1, 2, 5, 6, generator=g, dtype=torch.float64
        )
        v = 0.1 * torch.randn(1, 2, 5, 6, generator=g, dtype=torch.float64)
        self.assertTrue(
            torch.autograd.gradcheck(lambda p, w: advect_map(p, w, 3), (phi0.requires_grad_(), v.requires_grad_()))
        )

    def test_gradcheck_3d(self):
        g = torch.Generator().manual_seed(1)
        phi0 = identity_map((4, 4, 5), dtype=torch.float64).requires_grad_()
        v = (0.1 * torch.randn(1, 3, 4, 4, 5, generator=g, dtype=torch.float64)).requires_grad_()
        self.assertTrue(torch.autograd.gradcheck(lambda p, w: advect_map(p, w, 2), (phi0, v)))

    def test_ill_inputs(self):
        phi0 = identity_map((5, 6))
        with self.assertRaisesRegex(ValueError, "spatial shape"):
            advect_map(phi0, torch.zeros(1, 2, 5, 7))
        with self.assertRaisesRegex(ValueError, "num_steps"):
            advect_map(phi0, torch.zeros_like(phi0), num_steps=-1)
        with self.assertRaisesRegex(ValueError, "batch sizes"):
            advect_map(phi0.expand(2, 2, 5, 6), torch.zeros(3, 2, 5, 6))


if __name__ == "__main__":
    unittest.main()
