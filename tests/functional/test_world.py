"""World space: normalised <-> world matrices, registration results on native grids, world affines (known answers).

Grids are built by hand like the loading transforms make them: a native grid as read (e.g. LAS, 2 mm), and a working
grid after ``Orientationd("RAS")`` + ``Resized`` (same physical box, voxel corners aligned).
"""

from __future__ import annotations

import math
import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_avsm.functional import (
    affine_to_map,
    identity_map,
    map_to_world_points,
    normalized_to_world,
    ras_to_lps_affine,
    ras_to_lps_vectors,
    resample_world,
    theta_to_world_affine,
    voxel_world_points,
    world_displacement,
    world_to_normalized,
)

F64 = torch.float64


def native_affine(spacing=(2.0, 2.0, 2.0), origin=(32.0, -40.0, -16.0), flips=(True, False, False), angle=0.0):
    """Voxel -> RAS of a native grid: axis flips (LAS-like), optional rotation about the last axis (degrees)."""
    ndim = len(spacing)
    a = torch.eye(ndim + 1, dtype=F64)
    d = torch.diag(torch.tensor([(-1.0 if f else 1.0) * s for f, s in zip(flips, spacing)], dtype=F64))
    if angle:
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        rot = torch.eye(ndim, dtype=F64)
        rot[:2, :2] = torch.tensor([[c, -s], [s, c]], dtype=F64)
        d = rot @ d
    a[:ndim, :ndim] = d
    a[:ndim, ndim] = torch.tensor(origin, dtype=F64)
    return a


def working_affine(native: torch.Tensor, native_shape, working_shape):
    """The grid ``Orientationd("RAS")`` + ``Resized`` make: axes flipped to point to +RAS, then resized so that
    the voxel boxes cover the same physical extent (new voxel ``j`` at old index ``(j + 0.5) N / M - 0.5``)."""
    ndim = len(native_shape)
    a = native.clone()
    for c in range(ndim):
        col = a[:ndim, c]
        if col[int(col.abs().argmax())] < 0:  # flip the axis: i -> N - 1 - i
            a[:ndim, ndim] += col * (native_shape[c] - 1)
            a[:ndim, c] = -col
    scale = torch.eye(ndim + 1, dtype=F64)
    for c, (n, m) in enumerate(zip(native_shape, working_shape)):
        scale[c, c] = n / m
        scale[c, ndim] = 0.5 * n / m - 0.5
    return a @ scale


def random_theta(ndim, scale=0.08, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.eye(ndim, dtype=F64) + scale * torch.randn(ndim, ndim, generator=g, dtype=F64)
    b = scale * torch.randn(ndim, generator=g, dtype=F64)
    return A.unsqueeze(0), b.unsqueeze(0)


def apply_h(matrix, points):
    """Homogeneous matrix applied to points (D, *S)."""
    ndim = points.shape[0]
    flat = points.reshape(ndim, -1)
    return (matrix[:ndim, :ndim] @ flat + matrix[:ndim, ndim : ndim + 1]).reshape(points.shape)


# fixed native 33x41x25 at 2 mm, LAS; working grid 24x32x20 (RAS); moving working grid: other size, spacing, origin
NATIVE_3D = (33, 41, 25)
WORK_3D = (24, 32, 20)
MOVING_3D = (20, 28, 18)


def grids_3d():
    fixed_native = native_affine()
    fixed_work = working_affine(fixed_native, NATIVE_3D, WORK_3D)
    moving_work = native_affine(spacing=(3.1, 2.6, 2.4), origin=(-25.0, -37.0, -14.0), flips=(False, False, False))
    return fixed_native, fixed_work, moving_work


def grids_2d():
    fixed_native = native_affine(spacing=(1.5, 2.0), origin=(20.0, -30.0), flips=(True, False))
    fixed_work = working_affine(fixed_native, (27, 31), (20, 24))
    moving_work = native_affine(spacing=(2.2, 2.5), origin=(-18.0, -29.0), flips=(False, False))
    return fixed_native, (27, 31), fixed_work, (20, 24), moving_work, (16, 22)


class TestNormalizedWorld(unittest.TestCase):
    @parameterized.expand([[2], [3]])
    def test_corners_and_inverse(self, ndim):
        shape = (7, 9, 5)[:ndim]
        affine = native_affine(spacing=(1.5, 2.0, 0.7)[:ndim], origin=(3.0, -4.0, 5.0)[:ndim], angle=20.0)
        W = normalized_to_world(affine, shape)
        self.assertEqual(W.dtype, F64)
        # normalised -1 is voxel 0, +1 is voxel N - 1, 0 is the centre
        for u, idx in ((-1.0, 0.0), (1.0, None), (0.0, None)):
            uu = torch.full((ndim,), u, dtype=F64)
            ii = torch.tensor([(n - 1) * (u + 1) / 2 for n in shape], dtype=F64) if idx is None else torch.zeros(ndim)
            torch.testing.assert_close(apply_h(W, uu.reshape(ndim, 1)), apply_h(affine, ii.to(F64).reshape(ndim, 1)))
        # identity map -> voxel world points
        torch.testing.assert_close(apply_h(W, identity_map(shape, dtype=F64)[0]), voxel_world_points(affine, shape))
        torch.testing.assert_close(world_to_normalized(affine, shape) @ W, torch.eye(ndim + 1, dtype=F64))
        # numpy affines are accepted
        torch.testing.assert_close(normalized_to_world(affine.numpy(), shape), W)

    def test_errors_name_function_and_argument(self):
        with self.assertRaisesRegex(ValueError, "normalized_to_world: 'affine'"):
            normalized_to_world(torch.eye(5), (4, 4, 4))
        with self.assertRaisesRegex(ValueError, "normalized_to_world: 'spatial_shape'"):
            normalized_to_world(torch.eye(4), (4, 4))
        with self.assertRaisesRegex(ValueError, "world_to_normalized: 'affine' is singular"):
            world_to_normalized(torch.diag(torch.tensor([1.0, 0.0, 1.0, 1.0])), (4, 4, 4))


class TestMapToWorldPoints(unittest.TestCase):
    def test_identity_same_grids(self):
        """Identity phi, fixed == moving working grid: every target voxel pulls from its own world point."""
        fixed_native, fixed_work, _ = grids_3d()
        phi = identity_map(WORK_3D, dtype=torch.float32)  # float32 input: geometry is still float64
        pts = map_to_world_points(phi, fixed_work, fixed_work, WORK_3D)
        self.assertEqual((pts.dtype, tuple(pts.shape)), (F64, (3, *WORK_3D)))
        torch.testing.assert_close(pts, voxel_world_points(fixed_work, WORK_3D), atol=1e-5, rtol=0)
        # on the native grid (LAS, other size; half its outer voxels lie outside the working grid's span)
        for mode in ("displacement", "linear"):
            pts = map_to_world_points(phi[0], fixed_work, fixed_work, WORK_3D, fixed_native, NATIVE_3D, mode)
            torch.testing.assert_close(pts, voxel_world_points(fixed_native, NATIVE_3D), atol=1e-5, rtol=0)
            disp = world_displacement(pts, fixed_native)
            self.assertLess(float(disp.abs().max()), 1e-5)

    def test_affine_theta_matches_world_affine_3d(self):
        """A known theta: T = W_m Theta W_f^-1 applied to world points == the map's points, at every voxel."""
        fixed_native, fixed_work, moving_work = grids_3d()
        A, b = random_theta(3, seed=1)
        theta = torch.cat([A, b.unsqueeze(-1)], dim=-1)
        T = theta_to_world_affine(theta, fixed_work, WORK_3D, moving_work, MOVING_3D)
        self.assertEqual((T.dtype, tuple(T.shape)), (F64, (4, 4)))
        torch.testing.assert_close(T[3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=F64))
        phi = affine_to_map(A, b, WORK_3D)
        # on the fixed working grid (no interpolation)
        pts = map_to_world_points(phi, fixed_work, moving_work, MOVING_3D)
        torch.testing.assert_close(pts, apply_h(T, voxel_world_points(fixed_work, WORK_3D)), atol=1e-9, rtol=0)
        # on the native grid: linear extrapolation is exact for an affine everywhere
        p_native = voxel_world_points(fixed_native, NATIVE_3D)
        expected = apply_h(T, p_native)
        pts = map_to_world_points(phi, fixed_work, moving_work, MOVING_3D, fixed_native, NATIVE_3D, "linear")
        torch.testing.assert_close(pts, expected, atol=1e-9, rtol=0)
        torch.testing.assert_close(world_displacement(pts, fixed_native), expected - p_native, atol=1e-9, rtol=0)
        # displacement extrapolation: exact inside the working grid's span, a constant displacement outside
        pts = map_to_world_points(phi, fixed_work, moving_work, MOVING_3D, fixed_native, NATIVE_3D)
        u = apply_h(world_to_normalized(fixed_work, WORK_3D), p_native)
        inside = (u.abs() <= 1.0 + 1e-12).all(0)
        self.assertTrue(0.5 < float(inside.double().mean()) < 1.0)  # the outer half voxel is outside
        torch.testing.assert_close(pts[:, inside], expected[:, inside], atol=1e-9, rtol=0)
        u_in = u.clamp(-1, 1)
        v = apply_h(theta[0], u_in) + (u - u_in)  # phi(clamp(u)) + (u - clamp(u))
        torch.testing.assert_close(pts, apply_h(normalized_to_world(moving_work, MOVING_3D), v), atol=1e-9, rtol=0)

    def test_affine_theta_matches_world_affine_2d(self):
        fixed_native, native_shape, fixed_work, work_shape, moving_work, moving_shape = grids_2d()
        A, b = random_theta(2, seed=3)
        theta = torch.cat([A, b.unsqueeze(-1)], dim=-1)
        T = theta_to_world_affine(theta, fixed_work, work_shape, moving_work, moving_shape)
        phi = affine_to_map(A, b, work_shape)
        pts = map_to_world_points(phi, fixed_work, moving_work, moving_shape, fixed_native, native_shape, "linear")
        torch.testing.assert_close(pts, apply_h(T, voxel_world_points(fixed_native, native_shape)), atol=1e-9, rtol=0)

    def test_smooth_map_is_sampled_linearly(self):
        """On a target grid equal to the working grid shifted by half voxels, the points are the linear interpolation
        of the map's world points (trilinear, align_corners=True)."""
        _, fixed_work, moving_work = grids_3d()
        phi = identity_map(WORK_3D, dtype=F64)
        phi = phi + 0.05 * torch.sin(math.pi * phi.flip(1))
        shift = torch.eye(4, dtype=F64)
        shift[:3, 3] = 0.5
        target = fixed_work @ shift
        target_shape = tuple(n - 1 for n in WORK_3D)
        pts = map_to_world_points(phi, fixed_work, moving_work, MOVING_3D, target, target_shape)
        q = apply_h(normalized_to_world(moving_work, MOVING_3D), phi[0])
        mean8 = sum(
            q[:, i : i + target_shape[0], j : j + target_shape[1], k : k + target_shape[2]]
            for i in (0, 1)
            for j in (0, 1)
            for k in (0, 1)
        )
        torch.testing.assert_close(pts, mean8 / 8, atol=1e-9, rtol=0)

    def test_errors_name_function_and_argument(self):
        _, fixed_work, moving_work = grids_3d()
        phi = identity_map(WORK_3D)
        with self.assertRaisesRegex(ValueError, "map_to_world_points: 'phi'"):
            map_to_world_points(phi[:, :2], fixed_work, moving_work, MOVING_3D)
        with self.assertRaisesRegex(ValueError, "map_to_world_points: 'target_shape' is required"):
            map_to_world_points(phi, fixed_work, moving_work, MOVING_3D, fixed_work)
        with self.assertRaisesRegex(ValueError, "map_to_world_points: 'extrapolation'"):
            map_to_world_points(phi, fixed_work, moving_work, MOVING_3D, fixed_work, WORK_3D, "zeros")
        with self.assertRaisesRegex(ValueError, "map_to_world_points: 'moving_affine'"):
            map_to_world_points(phi, fixed_work, torch.eye(3), MOVING_3D)
        with self.assertRaisesRegex(ValueError, "theta_to_world_affine: 'theta'"):
            theta_to_world_affine(torch.zeros(3, 3), fixed_work, WORK_3D, moving_work, MOVING_3D)


class TestResampleWorld(unittest.TestCase):
    def test_nearest_keeps_integer_labels(self):
        fixed_native = native_affine()
        g = torch.Generator().manual_seed(0)
        labels = torch.randint(0, 5, (1, *NATIVE_3D), generator=g)
        # a grid shifted by whole voxels: nearest neighbour is an exact shift, zero (background) outside
        shift = torch.eye(4, dtype=F64)
        shift[:3, 3] = torch.tensor([2.0, -3.0, 1.0], dtype=F64)
        out = resample_world(labels, fixed_native, voxel_world_points(fixed_native @ shift, NATIVE_3D), mode="nearest")
        self.assertEqual(out.dtype, labels.dtype)
        torch.testing.assert_close(out[:, :-2, 3:, :-1], labels[:, 2:, :-3, 1:])
        self.assertEqual(int(out[:, -2:].abs().sum()) + int(out[:, :, :3].abs().sum()), 0)
        # arbitrary points: only existing label values come out, as integers
        pts = map_to_world_points(
            identity_map(WORK_3D) + 0.05, working_affine(fixed_native, NATIVE_3D, WORK_3D), fixed_native, NATIVE_3D
        )
        out = resample_world(labels.to(torch.int32), fixed_native, pts, mode="nearest")
        self.assertEqual(out.dtype, torch.int32)
        self.assertTrue(set(out.unique().tolist()) <= set(range(5)))

    def test_bilinear_exact_on_linear_ramp(self):
        fixed_native = native_affine(angle=15.0)
        idx = voxel_world_points(torch.eye(4, dtype=F64), NATIVE_3D)
        coef = torch.tensor([0.3, -1.2, 2.5], dtype=F64)
        ramp = (torch.einsum("c,c...->...", coef, idx) + 4.0).unsqueeze(0)
        ramp2 = torch.cat([ramp, 2 * ramp])  # two channels
        g = torch.Generator().manual_seed(1)
        cont = torch.rand(3, 6, 7, 5, generator=g, dtype=F64) * (torch.tensor(NATIVE_3D, dtype=F64) - 1).reshape(
            3, 1, 1, 1
        )  # continuous indices inside the image
        pts = apply_h(fixed_native, cont)
        out = resample_world(ramp2, fixed_native, pts)
        expected = torch.einsum("c,c...->...", coef, cont) + 4.0
        torch.testing.assert_close(out[0], expected, atol=1e-10, rtol=0)
        torch.testing.assert_close(out[1], 2 * expected, atol=1e-10, rtol=0)
        # padding outside the image; batched input keeps its batch dimension
        far = torch.full((3, 2, 2, 2), 1e4, dtype=F64)
        out = resample_world(ramp.unsqueeze(0).float(), fixed_native, far, padding=-7.0)
        self.assertEqual((tuple(out.shape), out.dtype), ((1, 1, 2, 2, 2), torch.float32))
        self.assertTrue(bool((out == -7.0).all()))

    def test_errors_name_function_and_argument(self):
        with self.assertRaisesRegex(ValueError, "resample_world: 'mode'"):
            resample_world(torch.zeros(1, 4, 4, 4), torch.eye(4), torch.zeros(3, 2, 2, 2), mode="cubic")
        with self.assertRaisesRegex(ValueError, "resample_world: 'image'"):
            resample_world(torch.zeros(4, 4), torch.eye(4), torch.zeros(3, 2, 2, 2))


class TestRasLps(unittest.TestCase):
    def test_flip(self):
        T = native_affine(angle=12.0)
        L = ras_to_lps_affine(T)
        Fm = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0], dtype=F64))
        torch.testing.assert_close(L, Fm @ T @ Fm)
        torch.testing.assert_close(ras_to_lps_affine(L), T)
        torch.testing.assert_close(ras_to_lps_affine(np.eye(3)), torch.eye(3, dtype=F64))
        # points transform consistently: T_lps (F p) = F (T p)
        p = torch.randn(3, 4, 5, 6, dtype=F64)
        torch.testing.assert_close(apply_h(L, ras_to_lps_vectors(p)), ras_to_lps_vectors(apply_h(T, p)))
        v = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        torch.testing.assert_close(ras_to_lps_vectors(v), torch.tensor([[-1.0, -2.0], [-3.0, -4.0], [5.0, 6.0]]))
        torch.testing.assert_close(ras_to_lps_vectors(v.T, dim=1), ras_to_lps_vectors(v).T)


class TestMonaiWorkingGridConvention(unittest.TestCase):
    def test_metatensor_affine_after_orientation_and_resize(self):
        """MONAI's Orientation("RAS") + Resize (trilinear) give a working tensor whose .affine is the voxel -> world
        matrix of its voxels: sampling the native image at those world points reproduces it (interior voxels)."""
        from monai.data import MetaTensor
        from monai.transforms import Orientation, Resize

        from tests.utils import real_volume

        vol = real_volume()[0]
        native = (vol.as_tensor() if hasattr(vol, "as_tensor") else vol).double()  # (1, 33, 41, 25), plain tensor
        affine = native_affine()  # the file's LAS 2 mm affine
        img = MetaTensor(native, affine=affine)
        work = Resize(WORK_3D, mode="trilinear")(Orientation("RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(img))
        torch.testing.assert_close(work.affine.to(F64), working_affine(affine, NATIVE_3D, WORK_3D))
        ours = resample_world(native, affine, voxel_world_points(work.affine, WORK_3D))
        inner = (slice(None), slice(2, -2), slice(2, -2), slice(2, -2))
        torch.testing.assert_close(ours[inner], work.as_tensor()[inner].double(), atol=1e-5, rtol=0)


@unittest.skipUnless(torch.cuda.is_available(), "no CUDA device")
class TestCuda(unittest.TestCase):
    def test_runs_on_cuda(self):
        fixed_native, fixed_work, moving_work = grids_3d()
        A, b = random_theta(3, seed=1)
        phi = affine_to_map(A, b, WORK_3D)
        args = (fixed_work, moving_work, MOVING_3D, fixed_native, NATIVE_3D, "linear")
        cpu = map_to_world_points(phi, *args)
        gpu = map_to_world_points(phi.cuda(), *args)
        self.assertEqual(gpu.device.type, "cuda")
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-9, rtol=0)
        img = torch.rand(1, *MOVING_3D, dtype=F64)
        torch.testing.assert_close(
            resample_world(img.cuda(), moving_work, gpu).cpu(), resample_world(img, moving_work, cpu)
        )


if __name__ == "__main__":
    unittest.main()
