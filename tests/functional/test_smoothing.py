"""Multi-Gaussian FFT smoothing against direct convolution (scipy), zero and periodic boundaries, 2D and 3D."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized
from scipy import ndimage

from monai_avsm.functional import (
    PAPER_SIGMAS,
    PAPER_WEIGHTS,
    fft_grid_shape,
    fft_size,
    kernel_unit_spacing,
    multi_gaussian_kernel_fft,
    multi_gaussian_kernel_matrices,
    smooth_fft,
    smooth_separable,
)


def direct_kernel(shape, unit, sigmas, weights, boundary):
    """The kernel as a centred array of odd size for scipy: offsets -(N-1)..N-1 (zero) or circular (periodic)."""
    total = None
    weights = np.asarray(weights, dtype=float) / np.sum(weights)
    for sigma, w in zip(sigmas, weights):
        k = None
        for axis, (n, h) in enumerate(zip(shape, unit)):
            if boundary == "zero":
                off = np.arange(-(n - 1), n, dtype=float)
            else:  # n odd: circular distances laid out centred
                off = np.arange(-(n // 2), n // 2 + 1, dtype=float)
            g = np.exp(-0.5 * (off * h / sigma) ** 2)
            g /= g.sum()
            g = g.reshape([-1 if a == axis else 1 for a in range(len(shape))])
            k = g if k is None else k * g
        total = w * k if total is None else total + w * k
    return total


def smooth(m, unit, sigmas, weights, boundary):
    shape = m.shape[2:]
    khat = multi_gaussian_kernel_fft(shape, unit, sigmas, weights, boundary, dtype=m.dtype)
    return smooth_fft(m, khat, fft_grid_shape(shape, boundary))


class TestSmoothing(unittest.TestCase):
    @parameterized.expand([[(15, 18)], [(9, 10, 12)]])
    def test_zero_boundary_matches_direct_convolution(self, shape):
        rng = np.random.default_rng(0)
        m = rng.standard_normal((1, 2, *shape))
        unit = kernel_unit_spacing(shape, (1.0,) * len(shape))
        out = smooth(torch.from_numpy(m), unit, PAPER_SIGMAS, PAPER_WEIGHTS, "zero").numpy()
        kernel = direct_kernel(shape, unit, PAPER_SIGMAS, PAPER_WEIGHTS, "zero")
        for c in range(2):
            ref = ndimage.convolve(m[0, c], kernel, mode="constant", cval=0.0)
            np.testing.assert_allclose(out[0, c], ref, atol=1e-12)

    def test_zero_boundary_matches_scipy_gaussian_filter_inside(self):
        """One Gaussian: equals scipy.ndimage.gaussian_filter (a different implementation) away from the border."""
        shape = (40, 44)
        m = np.random.default_rng(1).standard_normal(shape)
        unit = kernel_unit_spacing(shape, (1.0, 1.0))
        sigma = 0.05
        out = smooth(torch.from_numpy(m)[None, None], unit, (sigma,), (1.0,), "zero")[0, 0].numpy()
        ref = ndimage.gaussian_filter(m, sigma / unit[0], mode="constant", truncate=8.0)
        np.testing.assert_allclose(out[10:-10, 10:-10], ref[10:-10, 10:-10], atol=1e-8)

    @parameterized.expand([[(15, 17)], [(9, 11, 7)]])
    def test_periodic_matches_circular_convolution(self, shape):
        rng = np.random.default_rng(2)
        m = rng.standard_normal((1, 1, *shape))
        unit = kernel_unit_spacing(shape, None, "per_axis")
        out = smooth(torch.from_numpy(m), unit, PAPER_SIGMAS, PAPER_WEIGHTS, "periodic").numpy()
        kernel = direct_kernel(shape, unit, PAPER_SIGMAS, PAPER_WEIGHTS, "periodic")
        ref = ndimage.convolve(m[0, 0], kernel, mode="wrap")
        np.testing.assert_allclose(out[0, 0], ref, atol=1e-12)

    def test_zero_boundary_has_no_wrap_around(self):
        """A spike at one face does not reach the opposite face with 'zero'; it does with 'periodic'."""
        shape = (32, 32)
        m = torch.zeros(1, 1, *shape, dtype=torch.float64)
        m[0, 0, 0, 16] = 1.0
        unit = kernel_unit_spacing(shape)
        zero = smooth(m, unit, PAPER_SIGMAS, PAPER_WEIGHTS, "zero")
        periodic = smooth(m, unit, PAPER_SIGMAS, PAPER_WEIGHTS, "periodic")
        self.assertGreater(float(periodic[0, 0, -1, 16]), 0.5 * float(periodic[0, 0, 1, 16]))
        # with 'zero' the far face is 31 voxels (the whole domain) away: only the kernel's tail reaches it
        self.assertLess(float(zero[0, 0, -1, 16]), 0.01 * float(periodic[0, 0, -1, 16]))

    def test_periodic_preserves_constants(self):
        m = torch.full((1, 3, 8, 9, 10), 2.5, dtype=torch.float64)
        out = smooth(m, kernel_unit_spacing((8, 9, 10)), PAPER_SIGMAS, PAPER_WEIGHTS, "periodic")
        torch.testing.assert_close(out, m)

    def test_unit_spacing(self):
        # isotropic: the longest physical side is 1 (here axis 0: 9 * 2 mm = 18 mm)
        self.assertEqual(kernel_unit_spacing((10, 13), (2.0, 1.0)), (2.0 / 18, 1.0 / 18))
        self.assertEqual(kernel_unit_spacing((10, 13), (2.0, 1.0), "per_axis"), (1 / 9, 1 / 12))
        with self.assertRaisesRegex(ValueError, "isotropic"):
            kernel_unit_spacing((10, 13), None, "sideways")

    def test_fft_size(self):
        self.assertEqual(fft_size(191), 192)
        self.assertEqual(fft_size(79), 80)
        self.assertEqual(fft_size(97), 100)
        self.assertEqual(fft_grid_shape((96, 40), "zero"), (192, 80))

    def test_ill_weights(self):
        with self.assertRaisesRegex(ValueError, "weights"):
            multi_gaussian_kernel_fft((8, 8), (0.1, 0.1), (0.1, 0.2), (0.5, -0.5))
        with self.assertRaisesRegex(ValueError, "sigmas"):
            multi_gaussian_kernel_fft((8, 8), (0.1, 0.1), (0.0,), (1.0,))
        with self.assertRaisesRegex(ValueError, "equal length"):
            multi_gaussian_kernel_fft((8, 8), (0.1, 0.1), (0.1, 0.2), (1.0,))


class TestSeparableSmoothing(unittest.TestCase):
    """The per-axis matrix products give the FFT's convolution (both against scipy's direct convolution)."""

    @parameterized.expand([[(15, 18), "zero"], [(9, 10, 12), "zero"], [(15, 17), "periodic"], [(9, 11, 7), "periodic"]])
    def test_matches_direct_convolution(self, shape, boundary):
        m = np.random.default_rng(3).standard_normal((2, 2, *shape))
        unit = (
            kernel_unit_spacing(shape, (1.0,) * len(shape))
            if boundary == "zero"
            else kernel_unit_spacing(shape, None, "per_axis")
        )
        mats = multi_gaussian_kernel_matrices(shape, unit, PAPER_SIGMAS, PAPER_WEIGHTS, boundary, torch.float64)
        out = smooth_separable(torch.from_numpy(m), mats).numpy()
        kernel = direct_kernel(shape, unit, PAPER_SIGMAS, PAPER_WEIGHTS, boundary)
        for b in range(2):
            for c in range(2):
                ref = ndimage.convolve(m[b, c], kernel, mode="constant" if boundary == "zero" else "wrap", cval=0.0)
                np.testing.assert_allclose(out[b, c], ref, atol=1e-12)
        fft = smooth(torch.from_numpy(m), unit, PAPER_SIGMAS, PAPER_WEIGHTS, boundary).numpy()
        np.testing.assert_allclose(out, fft, atol=1e-13)

    def test_gradient(self):
        shape = (5, 6, 4)
        mats = multi_gaussian_kernel_matrices(shape, kernel_unit_spacing(shape), dtype=torch.float64)
        m = torch.randn(1, 2, *shape, dtype=torch.float64, requires_grad=True)
        self.assertTrue(torch.autograd.gradcheck(lambda x: smooth_separable(x, mats), (m,)))

    def test_ill_matrices(self):
        mats = multi_gaussian_kernel_matrices((5, 6), kernel_unit_spacing((5, 6)))
        with self.assertRaisesRegex(ValueError, "expected 3 matrices"):
            smooth_separable(torch.zeros(1, 1, 5, 6, 7), mats)


if __name__ == "__main__":
    unittest.main()
