"""VSVFWarp: zero momentum, translation, gradients to momentum and initial map, autocast, gradcheck."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import affine_to_map, identity_map, warp_image
from monai_avsm.networks.blocks import MapAdvection, MapWarp, VSVFWarp


class TestVSVFWarp(unittest.TestCase):
    @parameterized.expand([[2, (16, 20)], [3, (8, 10, 12)]])
    def test_output_shapes(self, ndim, shape):
        low = tuple(s // 2 for s in shape)
        out = VSVFWarp(ndim)(torch.randn(2, ndim, *low) * 0.1, None, torch.rand(2, 3, *shape))
        self.assertEqual(set(out), {"velocity", "map_low", "map", "warped"})
        self.assertEqual(tuple(out["velocity"].shape), (2, ndim, *low))
        self.assertEqual(tuple(out["map_low"].shape), (2, ndim, *low))
        self.assertEqual(tuple(out["map"].shape), (2, ndim, *shape))
        self.assertEqual(tuple(out["warped"].shape), (2, 3, *shape))

    @parameterized.expand([[2, (16, 20)], [3, (8, 10, 12)]])
    def test_zero_momentum_gives_initial_map(self, ndim, shape):
        """Zero momentum returns the initial (affine) map and the source warped by it."""
        g = torch.Generator().manual_seed(0)
        A = torch.eye(ndim, dtype=torch.float64) + 0.1 * torch.randn(1, ndim, ndim, generator=g, dtype=torch.float64)
        b = 0.1 * torch.randn(1, ndim, generator=g, dtype=torch.float64)
        phi0 = affine_to_map(A, b, shape)
        src = torch.rand(1, 1, *shape, dtype=torch.float64)
        low = tuple(s // 2 for s in shape)
        out = VSVFWarp(ndim)(torch.zeros(1, ndim, *low, dtype=torch.float64), phi0, src)
        torch.testing.assert_close(out["map"], phi0)
        torch.testing.assert_close(out["warped"], warp_image(src, phi0))
        # at the same resolution (no resampling) any initial map comes back exactly
        phi_any = phi0 + 0.05 * torch.rand(1, ndim, *shape, generator=g, dtype=torch.float64)
        same = VSVFWarp(ndim)(torch.zeros(1, ndim, *shape, dtype=torch.float64), phi_any, src)
        torch.testing.assert_close(same["map"], phi_any, rtol=0, atol=0)

    def test_constant_momentum_periodic_is_translation(self):
        """A periodic smoother keeps a constant momentum constant: the map is the translation x - m."""
        shape, low = (20, 24), (10, 12)
        m = torch.zeros(1, 2, *low, dtype=torch.float64)
        m[:, 0] = 0.1
        m[:, 1] = -0.05
        out = VSVFWarp(2, boundary="periodic")(m, None, torch.rand(1, 1, *shape, dtype=torch.float64))
        expected = identity_map(shape, dtype=torch.float64) - m[:, :, :1, :1]
        torch.testing.assert_close(out["map"], expected)

    @parameterized.expand([[2, (12, 14)], [3, (6, 8, 10)]])
    def test_gradients_reach_momentum_and_initial_map(self, ndim, shape):
        low = tuple(s // 2 for s in shape)
        m = (0.1 * torch.randn(1, ndim, *low)).requires_grad_()
        phi0 = identity_map(shape).requires_grad_()
        src = torch.rand(1, 1, *shape)
        tgt = torch.rand(1, 1, *shape)
        out = VSVFWarp(ndim)(m, phi0, src)
        ((out["warped"] - tgt) ** 2).mean().backward()
        self.assertGreater(float(m.grad.abs().sum()), 0.0)
        self.assertGreater(float(phi0.grad.abs().sum()), 0.0)

    def test_gradcheck(self):
        g = torch.Generator().manual_seed(2)
        block = VSVFWarp(2, num_steps=3)
        m = (0.2 * torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64)).requires_grad_()
        phi0 = (identity_map((7, 9), dtype=torch.float64) * 0.9).requires_grad_()
        src = torch.rand(1, 1, 7, 9, generator=g, dtype=torch.float64)
        self.assertTrue(torch.autograd.gradcheck(lambda a, b: block(a, b, src)["warped"], (m, phi0)))

    def test_autocast_keeps_maps_in_float32(self):
        block = VSVFWarp(3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = block(torch.randn(1, 3, 4, 5, 6).bfloat16() * 0.1, None, torch.rand(1, 1, 8, 10, 12))
        self.assertEqual(out["map"].dtype, torch.float32)
        self.assertEqual(out["velocity"].dtype, torch.float32)
        self.assertEqual(out["warped"].dtype, torch.float32)

    def test_num_steps_at_run_time(self):
        block = VSVFWarp(2, num_steps=10)
        block.num_steps = 20
        self.assertEqual(block.integrator.num_steps, 20)
        m = 0.3 * torch.randn(1, 2, 8, 8, dtype=torch.float64)
        a = block(m, None, torch.rand(1, 1, 16, 16, dtype=torch.float64))["map"]
        block.num_steps = 40
        b = block(m, None, torch.rand(1, 1, 16, 16, dtype=torch.float64))["map"]
        self.assertLess(float((a - b).abs().max()), 1e-5)

    def test_ill_inputs(self):
        block = VSVFWarp(3)
        with self.assertRaisesRegex(ValueError, "spatial dims"):
            block(torch.zeros(1, 2, 4, 4), None, torch.zeros(1, 1, 8, 8))
        with self.assertRaisesRegex(ValueError, "momentum"):
            block(torch.zeros(1, 2, 4, 4, 4), None, torch.zeros(1, 1, 8, 8, 8))
        with self.assertRaisesRegex(ValueError, "source"):
            block(torch.zeros(1, 3, 4, 4, 4), None, torch.zeros(1, 1, 8, 8))


class TestSmallBlocks(unittest.TestCase):
    def test_map_warp_and_advection_modules(self):
        phi = identity_map((6, 7))
        img = torch.rand(2, 1, 6, 7)
        torch.testing.assert_close(MapWarp()(img, phi), img, atol=1e-5, rtol=0)
        v = torch.zeros(1, 2, 6, 7)
        v[:, 1] = 0.1
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = MapAdvection(num_steps=5)(phi, v)
        self.assertEqual(out.dtype, torch.float32)
        torch.testing.assert_close(out, phi - v)
        with self.assertRaisesRegex(ValueError, "mode"):
            MapWarp(mode="bicubicle")
        with self.assertRaisesRegex(ValueError, "velocity_clamp"):
            MapAdvection(velocity_clamp=-1.0)


@unittest.skipUnless(torch.cuda.is_available(), "no CUDA device")
class TestVSVFWarpCUDA(unittest.TestCase):
    def test_cuda_matches_cpu(self):
        """Forward and gradients on CUDA equal the CPU's (float64; both smoother methods)."""
        g = torch.Generator().manual_seed(0)
        m = 0.1 * torch.randn(1, 3, 8, 10, 6, generator=g, dtype=torch.float64)
        src = torch.rand(1, 1, 16, 20, 12, generator=g, dtype=torch.float64)
        for method in ("separable", "fft"):
            results = []
            for device in ("cpu", "cuda"):
                block = VSVFWarp(3, num_steps=4)
                block.smoother.method = method
                mom = m.to(device).requires_grad_()
                out = block(mom, None, src.to(device))
                out["warped"].square().sum().backward()
                self.assertEqual(out["map"].device.type, device)
                results.append((out["warped"].cpu(), out["map"].cpu(), mom.grad.cpu()))
            for a, b in zip(*results):
                torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


if __name__ == "__main__":
    unittest.main()
