"""Maps: identity, warping, resampling, composition, map <-> MONAI DDF (known answers, 2D and 3D)."""

from __future__ import annotations

import unittest

import numpy as np
import torch
from monai.networks.blocks import Warp
from parameterized import parameterized
from scipy import ndimage

from monai_avsm.functional import (
    affine_to_map,
    compose_affines,
    compose_maps,
    ddf_to_map,
    identity_map,
    invert_affine,
    map_to_ddf,
    resample_map,
    warp_image,
    warp_label,
)

SHAPES = [[(9, 12)], [(7, 8, 10)]]


def random_affine(ndim: int, scale: float = 0.1, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.eye(ndim, dtype=dtype) + scale * torch.randn(ndim, ndim, generator=g, dtype=dtype)
    b = scale * torch.randn(ndim, generator=g, dtype=dtype)
    return A.unsqueeze(0), b.unsqueeze(0)


class TestIdentityMap(unittest.TestCase):
    @parameterized.expand(SHAPES)
    def test_values_and_range(self, shape):
        phi = identity_map(shape, dtype=torch.float64)
        self.assertEqual(tuple(phi.shape), (1, len(shape), *shape))
        for c, n in enumerate(shape):
            coords = phi[0, c].movedim(c, 0).reshape(n, -1)[:, 0]
            expected = 2 * torch.arange(n, dtype=torch.float64) / (n - 1) - 1
            torch.testing.assert_close(coords, expected)

    def test_ill_shape(self):
        with self.assertRaisesRegex(ValueError, "spatial_shape"):
            identity_map((5,))
        with self.assertRaisesRegex(ValueError, "spatial_shape"):
            identity_map((5, 1))


class TestWarpImage(unittest.TestCase):
    @parameterized.expand([[(9, 12), torch.float32], [(9, 12), torch.float64], [(7, 8, 10), torch.float32]])
    def test_identity_warps_exactly(self, shape, dtype):
        img = torch.rand(2, 3, *shape, dtype=dtype)
        out = warp_image(img, identity_map(shape, dtype=dtype))
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(out, img, atol=tol, rtol=0)

    @parameterized.expand(SHAPES)
    def test_known_affine_matches_scipy(self, shape):
        ndim = len(shape)
        A, b = random_affine(ndim, 0.15, seed=ndim)
        img = torch.rand(1, 1, *shape, dtype=torch.float64)
        out = warp_image(img, affine_to_map(A, b, shape))[0, 0].numpy()
        # phi(x) = A x + b in normalised coordinates x = S i - 1, S = diag(2 / (N - 1)); in voxel indices the
        # source position is S^-1 A S i + S^-1 (b + 1 - A 1): scipy's (matrix, offset) pull convention
        s = np.array([2.0 / (n - 1) for n in shape])
        An, bn = A[0].numpy(), b[0].numpy()
        matrix = (An * s[None, :]) / s[:, None]
        offset = (bn + 1 - An @ np.ones(ndim)) / s
        ref = ndimage.affine_transform(
            img[0, 0].numpy(), matrix, offset=offset, order=1, mode="grid-constant", cval=0.0
        )
        np.testing.assert_allclose(out, ref, atol=1e-10)

    def test_map_on_other_grid(self):
        """A map on a finer grid reads the source at its own positions (the source grid may differ)."""
        src = torch.rand(1, 1, 6, 7, dtype=torch.float64)
        up = warp_image(src, identity_map((11, 13), dtype=torch.float64))
        ref = torch.nn.functional.interpolate(src, size=(11, 13), mode="bilinear", align_corners=True)
        torch.testing.assert_close(up, ref)

    def test_ill_inputs(self):
        with self.assertRaisesRegex(ValueError, "phi"):
            warp_image(torch.rand(1, 1, 5, 5), torch.rand(1, 3, 5, 5))
        with self.assertRaisesRegex(ValueError, "image"):
            warp_image(torch.rand(1, 1, 5, 5, 5), identity_map((5, 5)))
        with self.assertRaisesRegex(ValueError, "batch sizes"):
            warp_image(torch.rand(2, 1, 5, 5), identity_map((5, 5)).expand(3, 2, 5, 5))

    def test_gradcheck_2d(self):
        img = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
        A, b = random_affine(2, 0.1, seed=3)
        phi = (affine_to_map(A, b, (4, 5)) + 0.01 * torch.rand(1, 2, 4, 5, dtype=torch.float64)).requires_grad_()
        self.assertTrue(torch.autograd.gradcheck(warp_image, (img, phi)))

    def test_gradcheck_3d(self):
        img = torch.rand(1, 1, 4, 5, 4, dtype=torch.float64, requires_grad=True)
        A, b = random_affine(3, 0.1, seed=4)
        phi = affine_to_map(A, b, (3, 4, 3)).requires_grad_()
        self.assertTrue(torch.autograd.gradcheck(warp_image, (img, phi)))


class TestWarpLabel(unittest.TestCase):
    @parameterized.expand([["nearest", (9, 12)], ["onehot", (9, 12)], ["nearest", (6, 7, 8)], ["onehot", (6, 7, 8)]])
    def test_integer_shift(self, mode, shape):
        """A shift of exactly one voxel along axis 0 moves every label by one voxel; outside is background."""
        g = torch.Generator().manual_seed(0)
        label = torch.randint(0, 4, (1, 1, *shape), generator=g)
        phi = identity_map(shape, dtype=torch.float64)
        phi[:, 0] += 2.0 / (shape[0] - 1)  # read from voxel i + 1
        out = warp_label(label, phi, mode=mode)
        self.assertEqual(out.dtype, label.dtype)
        torch.testing.assert_close(out[:, :, :-1], label[:, :, 1:])
        self.assertTrue(bool((out[:, :, -1] == 0).all()))

    def test_identity_float_labels(self):
        label = torch.randint(0, 3, (2, 1, 5, 6)).float()
        torch.testing.assert_close(warp_label(label, identity_map((5, 6))), label)

    def test_ill_labels(self):
        phi = identity_map((5, 6))
        with self.assertRaisesRegex(ValueError, "integer"):
            warp_label(torch.rand(1, 1, 5, 6) + 0.1, phi)
        with self.assertRaisesRegex(ValueError, ">= 0"):
            warp_label(-torch.ones(1, 1, 5, 6), phi)
        with self.assertRaisesRegex(ValueError, "label"):
            warp_label(torch.ones(1, 2, 5, 6), phi)


class TestMapDDF(unittest.TestCase):
    @parameterized.expand(SHAPES)
    def test_matches_monai_warp(self, shape):
        ndim = len(shape)
        A, b = random_affine(ndim, 0.1, seed=1)
        phi = affine_to_map(A, b, shape) + 0.02 * torch.rand(1, ndim, *shape, dtype=torch.float64)
        img = torch.rand(1, 2, *shape, dtype=torch.float64)
        ddf = map_to_ddf(phi)
        ref = Warp(mode="bilinear", padding_mode="zeros")(img, ddf)
        torch.testing.assert_close(warp_image(img, phi), ref)

    @parameterized.expand(SHAPES)
    def test_round_trip(self, shape):
        phi = torch.rand(2, len(shape), *shape, dtype=torch.float64) * 2 - 1
        torch.testing.assert_close(ddf_to_map(map_to_ddf(phi)), phi)
        self.assertEqual(float(map_to_ddf(identity_map(shape, dtype=torch.float64)).abs().max()), 0.0)

    def test_unit_ddf_is_one_voxel(self):
        """A voxel DDF of +1 along axis 0 reads the next voxel along axis 0 (MONAI's convention)."""
        phi = ddf_to_map(torch.stack([torch.ones(6, 7), torch.zeros(6, 7)]).unsqueeze(0).double())
        img = torch.arange(42, dtype=torch.float64).reshape(1, 1, 6, 7)
        torch.testing.assert_close(warp_image(img, phi)[:, :, :-1], img[:, :, 1:])


class TestResampleAndCompose(unittest.TestCase):
    @parameterized.expand([[(9, 12), (5, 7)], [(7, 8, 10), (13, 4, 19)]])
    def test_resample_affine_map_is_exact(self, shape, new_shape):
        A, b = random_affine(len(shape), 0.2, seed=2)
        out = resample_map(affine_to_map(A, b, shape), new_shape)
        torch.testing.assert_close(out, affine_to_map(A, b, new_shape))

    @parameterized.expand([[(9, 12), (5, 7)], [(6, 7, 8), (9, 4, 5)]])
    def test_resample_equals_border_grid_sample(self, shape, new_shape):
        phi = torch.rand(2, len(shape), *shape, dtype=torch.float64)
        ref = warp_image(phi, identity_map(new_shape, dtype=torch.float64), padding_mode="border")
        torch.testing.assert_close(resample_map(phi, new_shape), ref)

    @parameterized.expand(SHAPES)
    def test_compose_affine_maps(self, shape):
        """compose_maps(phi_1, phi_2) = phi_1 o phi_2 matches the composed parameters (A1 A2, A1 b2 + b1)."""
        ndim = len(shape)
        A1, b1 = random_affine(ndim, 0.1, seed=5)
        A2, b2 = random_affine(ndim, 0.05, seed=6)
        A2, b2 = 0.8 * A2, 0.5 * b2  # phi_2 maps the grid inside the domain: no border clamping
        composed = compose_maps(affine_to_map(A1, b1, shape), affine_to_map(A2, b2, shape))
        torch.testing.assert_close(composed, affine_to_map(*compose_affines((A1, b1), (A2, b2)), shape))

    @parameterized.expand(SHAPES)
    def test_inverse_affine_composes_to_identity(self, shape):
        A, b = random_affine(len(shape), 0.05, seed=7)
        Ai, bi = invert_affine(A, b)
        ident = identity_map(shape, dtype=torch.float64)
        torch.testing.assert_close(affine_to_map(*compose_affines((A, b), (Ai, bi)), shape), ident)

    def test_warp_by_composition_equals_successive_warps(self):
        """I o (phi_1 o phi_2) == (I o phi_1) o phi_2 up to linear interpolation error, which is O(h^2)."""
        errors = []
        for n in (48, 96):
            shape = (n, n + 4)
            ident = identity_map(shape, dtype=torch.float64)
            img = torch.sin(3 * ident[:, :1]) * torch.cos(2 * ident[:, 1:])
            A1, b1 = random_affine(2, 0.05, seed=8)
            phi1 = affine_to_map(0.9 * A1, b1 * 0.2, shape)
            phi2 = ident + 0.05 * torch.sin(torch.pi * ident.flip(1))
            once = warp_image(img, compose_maps(phi1, phi2))
            twice = warp_image(warp_image(img, phi1), phi2)
            m = n // 10
            errors.append(float((once - twice)[..., m:-m, m:-m].abs().max()))
        self.assertLess(errors[1], 0.35 * errors[0])
        self.assertLess(errors[1], 2e-3)


if __name__ == "__main__":
    unittest.main()
