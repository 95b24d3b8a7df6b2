"""vSVF losses (paper eq. 9-10): momentum norm <m, K m> and map symmetry, with known answers."""

from __future__ import annotations

import math
import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import advect_map, affine_to_map, identity_map, invert_affine
from monai_avsm.losses import MapSymmetryLoss, MomentumRegularizationLoss
from monai_avsm.networks.blocks import MultiGaussianSmoother


class TestMomentumRegularizationLoss(unittest.TestCase):
    @parameterized.expand([[(8, 10)], [(5, 6, 7)]])
    def test_constant_momentum_periodic(self, shape):
        """Periodic smoothing keeps a constant m = c: <m, v> = |c|^2 times the summed voxel volumes."""
        ndim = len(shape)
        c = torch.tensor([0.3, -0.2, 0.1][:ndim], dtype=torch.float64)
        m = c.reshape(1, ndim, *([1] * ndim)).expand(1, ndim, *shape).clone()
        v = MultiGaussianSmoother(ndim, boundary="periodic", normalization="per_axis")(m)
        loss = MomentumRegularizationLoss(normalization="per_axis")(m, v)
        expected = float((c**2).sum()) * math.prod(n / (n - 1) for n in shape)
        self.assertAlmostEqual(float(loss), expected, places=12)

    def test_non_negative_and_resolution_independent(self):
        values = []
        for n in (24, 48):
            ident = identity_map((n, n + 8), dtype=torch.float64)
            m = torch.cat([torch.sin(3 * ident[:, 1:]), torch.cos(2 * ident[:, :1]) * ident[:, 1:]], dim=1)
            smoother = MultiGaussianSmoother(2, normalization="per_axis")
            loss = MomentumRegularizationLoss(weight=10.0, normalization="per_axis")
            values.append(float(loss(m, smoother(m))))
        self.assertGreater(values[0], 0.0)
        # the same continuous integral at two resolutions; the sum-times-h quadrature is accurate to O(1/N)
        self.assertLess(abs(values[0] - values[1]) / values[1], 0.05)
        g = torch.Generator().manual_seed(0)
        rand = torch.randn(3, 3, 6, 7, 8, generator=g, dtype=torch.float64)
        out = MomentumRegularizationLoss(reduction="none")(rand, MultiGaussianSmoother(3)(rand))
        self.assertTrue(bool((out > 0).all()))

    def test_clamp_matches_reference_definition(self):
        g = torch.Generator().manual_seed(1)
        m = torch.randn(2, 2, 6, 8, generator=g, dtype=torch.float64)
        v = torch.randn(2, 2, 6, 8, generator=g, dtype=torch.float64)
        clamped = MomentumRegularizationLoss(clamp=True, normalization="per_axis", reduction="sum")(m, v)
        expected = (m * v).clamp_min(0).sum() / (5 * 7)
        torch.testing.assert_close(clamped, expected)

    def test_gradient_is_twice_smoothed_momentum(self):
        """d/dm <m, K m> = 2 K m for the symmetric smoothing operator (gradcheck in float64 too)."""
        g = torch.Generator().manual_seed(2)
        smoother = MultiGaussianSmoother(2)
        loss = MomentumRegularizationLoss(normalization="per_axis", reduction="sum")
        m = torch.randn(1, 2, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
        loss(m, smoother(m)).backward()
        torch.testing.assert_close(m.grad, 2 * smoother(m.detach()) / (5 * 6))
        self.assertTrue(torch.autograd.gradcheck(lambda x: loss(x, smoother(x)), (m.detach().requires_grad_(),)))

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "velocity"):
            MomentumRegularizationLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
        with self.assertRaisesRegex(ValueError, "weight"):
            MomentumRegularizationLoss(weight=float("nan"))


class TestMapSymmetryLoss(unittest.TestCase):
    @parameterized.expand([[(16, 18)], [(8, 9, 10)]])
    def test_affine_and_inverse(self, shape):
        ndim = len(shape)
        A = 1.1 * torch.eye(ndim, dtype=torch.float64).unsqueeze(0)  # phi_ts = the inverse maps inside the domain
        A[0, 0, -1] = 0.05
        b = torch.full((1, ndim), 0.03, dtype=torch.float64)
        phi = affine_to_map(A, b, shape)
        phi_ts = affine_to_map(*invert_affine(A, b), shape)
        self.assertLess(float(MapSymmetryLoss()(phi, phi_ts)), 1e-20)
        self.assertGreater(float(MapSymmetryLoss()(phi, phi)), 1e-4)

    @parameterized.expand([[2], [3]])
    def test_vsvf_maps_of_opposite_velocities(self, ndim):
        """Maps integrated with +v and -v are inverse up to discretisation: small, shrinking with resolution."""
        values, wrong = [], []
        for n in (12, 24):
            shape = (n, n + 2, n + 4)[:ndim]
            ident = identity_map(shape, dtype=torch.float64)
            v = 0.15 * torch.sin(math.pi * ident.flip(1)) * torch.cos(0.5 * math.pi * ident)
            phi = advect_map(ident, v)
            phi_ts = advect_map(ident, -v)
            values.append(float(MapSymmetryLoss()(phi, phi_ts)))
            wrong.append(float(MapSymmetryLoss()(phi, phi)))
        self.assertLess(values[1], 0.35 * values[0])
        self.assertLess(values[1], 1e-3 * wrong[1])

    def test_sum_normalization_and_weight(self):
        g = torch.Generator().manual_seed(3)
        phi = identity_map((6, 7), dtype=torch.float64) + 0.05 * torch.randn(
            2, 2, 6, 7, generator=g, dtype=torch.float64
        )
        mean = MapSymmetryLoss(reduction="none")(phi, phi)
        torch.testing.assert_close(
            MapSymmetryLoss(weight=3.0, normalization="sum", reduction="none")(phi, phi), 3.0 * 42 * mean
        )
        self.assertTrue(
            torch.autograd.gradcheck(MapSymmetryLoss(), (phi.requires_grad_(), phi.detach().clone().requires_grad_()))
        )

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "phi_ts"):
            MapSymmetryLoss()(identity_map((5, 6)), identity_map((5, 7)))
        with self.assertRaisesRegex(ValueError, "normalization|mean"):
            MapSymmetryLoss(normalization="max")


if __name__ == "__main__":
    unittest.main()
