"""MultiGaussianSmoother module: spacing-aware kernels, caching, dtypes."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.networks.blocks import MultiGaussianSmoother


class TestMultiGaussianSmoother(unittest.TestCase):
    def test_isotropic_in_physical_space(self):
        """With 2 mm x 1 mm voxels, a spike spreads half as many voxels along axis 0 as along axis 1."""
        shape = (41, 81)  # both axes 80 mm long
        m = torch.zeros(1, 1, *shape, dtype=torch.float64)
        m[0, 0, 20, 40] = 1.0
        smoother = MultiGaussianSmoother(2, sigmas=(0.05,), weights=(1.0,))
        v = smoother(m, spacing=(2.0, 1.0))[0, 0]
        prof0, prof1 = v[:, 40], v[20, :]
        torch.testing.assert_close(prof0[20 + 5] / prof0[20], prof1[40 + 10] / prof1[40])
        # per-axis normalisation (the authors' code) makes it anisotropic in millimetres: both axes span [0, 1]
        per_axis = MultiGaussianSmoother(2, sigmas=(0.05,), weights=(1.0,), normalization="per_axis")
        w = per_axis(m, spacing=(2.0, 1.0))[0, 0]
        torch.testing.assert_close(w[20 + 10, 40] / w[20, 40], w[20, 40 + 20] / w[20, 40])

    def test_dtypes_and_cache(self):
        smoother = MultiGaussianSmoother(3)
        m = torch.randn(2, 3, 6, 7, 8)
        self.assertEqual(smoother(m).dtype, torch.float32)
        self.assertEqual(smoother(m.double()).dtype, torch.float64)
        self.assertEqual(smoother(m.bfloat16()).dtype, torch.float32)
        self.assertEqual(len(smoother._cache), 2)
        torch.testing.assert_close(smoother(m), smoother(m.double()).float(), atol=1e-6, rtol=1e-5)
        self.assertEqual(len(smoother._cache), 2)
        self.assertEqual(len(smoother.state_dict()), 0)

    def test_methods_agree(self):
        """``"separable"`` (the default at these sizes) and ``"fft"`` give the same field, both boundaries."""
        m = torch.randn(2, 3, 9, 12, 7, dtype=torch.float64)
        for boundary in ("zero", "periodic"):
            sep = MultiGaussianSmoother(3, boundary=boundary, method="separable")
            fft = MultiGaussianSmoother(3, boundary=boundary, method="fft")
            auto = MultiGaussianSmoother(3, boundary=boundary)
            torch.testing.assert_close(sep(m, (1.0, 2.0, 1.5)), fft(m, (1.0, 2.0, 1.5)), atol=1e-13, rtol=0)
            torch.testing.assert_close(auto(m, (1.0, 2.0, 1.5)), sep(m, (1.0, 2.0, 1.5)), atol=0, rtol=0)
        self.assertEqual(auto._method_for((300, 20, 20)), "fft")
        with self.assertRaisesRegex(ValueError, "separable"):
            MultiGaussianSmoother(3, method="cubic")

    def test_weights_are_normalised(self):
        a = MultiGaussianSmoother(2, sigmas=(0.1, 0.2), weights=(1.0, 3.0))
        self.assertEqual(a.weights, (0.25, 0.75))

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "spatial_dims"):
            MultiGaussianSmoother(4)
        with self.assertRaisesRegex(ValueError, "spatial dims"):
            MultiGaussianSmoother(3)(torch.zeros(1, 2, 5, 5))
        with self.assertRaisesRegex(ValueError, "spacing"):
            MultiGaussianSmoother(2)(torch.zeros(1, 2, 5, 5), spacing=(1.0, -1.0))
        with self.assertRaisesRegex(ValueError, "zero"):
            MultiGaussianSmoother(2, boundary="reflect")


if __name__ == "__main__":
    unittest.main()
