"""engines/native.py: grids and pair geometry (validation, round trips, the batch form), folder names, and the native
resampler on a known translation (world points, displacement, warped image and label, the world affine)."""

from __future__ import annotations

import math
import os
import tempfile
import unittest

import torch
from monai.data import MetaTensor

from monai_avsm.data.export import write_image
from monai_avsm.data.image_io import NativeImage
from monai_avsm.engines.native import (
    Grid,
    NativeResampler,
    PairGeometry,
    load_native,
    pair_geometry,
    pair_name,
    sample_at_points,
)
from monai_avsm.functional import affine_to_map, identity_affine, theta_from_affine

F64 = torch.float64
SHAPE = (10, 12, 8)


def oblique_affine(spacing=(2.0, 3.0, 1.5), origin=(-10.0, 20.0, 5.0), angle=30.0) -> torch.Tensor:
    """A voxel -> RAS matrix with the given spacing, rotated by ``angle`` degrees about the z axis."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    a = torch.eye(4, dtype=F64)
    a[:3, :3] = rot @ torch.diag(torch.tensor(spacing, dtype=F64))
    a[:3, 3] = torch.tensor(origin, dtype=F64)
    return a


def grid_affine(spacing: float = 2.0) -> torch.Tensor:
    a = torch.diag(torch.tensor([spacing, spacing, spacing, 1.0], dtype=F64))
    a[:3, 3] = torch.tensor([-9.0, -11.0, -7.0], dtype=F64)
    return a


class TestGrid(unittest.TestCase):
    def test_spacing_direction_and_round_trip(self):
        a = oblique_affine()
        g = Grid(SHAPE, a, "fixed.nii.gz")
        self.assertEqual(g.ndim, 3)
        for got, want in zip(g.spacing, (2.0, 3.0, 1.5)):
            self.assertAlmostEqual(got, want, places=12)
        c, s = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
        torch.testing.assert_close(g.direction[:, 0], torch.tensor([c, s, 0.0], dtype=F64))
        torch.testing.assert_close(g.direction.T @ g.direction, torch.eye(3, dtype=F64))
        d = g.to_dict()
        self.assertEqual(d["shape"], list(SHAPE))
        self.assertEqual(d["file"], "fixed.nii.gz")
        again = Grid(tuple(d["shape"]), torch.tensor(d["affine"], dtype=F64), d["file"])
        self.assertEqual(again.shape, g.shape)
        self.assertTrue(torch.equal(again.affine, g.affine))
        # a NativeImage or a MetaTensor gives its own grid and file
        image = NativeImage(torch.zeros(1, *SHAPE), a, "/data/moving.nii.gz")
        self.assertEqual(Grid.of(image).file, "/data/moving.nii.gz")
        meta = MetaTensor(torch.zeros(1, *SHAPE), affine=a, meta={"filename_or_obj": "/data/f.nii.gz"})
        self.assertEqual(Grid.of(meta).file, "/data/f.nii.gz")
        self.assertEqual(Grid.of(meta, file="other.nii").file, "other.nii")

    def test_invalid(self):
        with self.assertRaisesRegex(ValueError, "'shape' must have 2 or 3 positive sizes"):
            Grid((4,), torch.eye(2))
        with self.assertRaisesRegex(ValueError, r"'affine' must be \(4, 4\)"):
            Grid(SHAPE, torch.eye(3))
        singular = torch.eye(4, dtype=F64)
        singular[2, 2] = 0.0
        with self.assertRaisesRegex(ValueError, "finite and invertible"):
            Grid(SHAPE, singular)


class TestPairGeometry(unittest.TestCase):
    def geometry(self) -> PairGeometry:
        return PairGeometry(
            fixed=Grid((6, 7, 5), grid_affine(3.0)),
            moving=Grid((6, 7, 5), grid_affine(2.5)),
            fixed_native=Grid(SHAPE, oblique_affine(), "/d/fixed.nii.gz"),
            files={"moving": "/d/moving.nii.gz", "fixed": "/d/fixed.nii.gz"},
        )

    def test_mapping_and_round_trip(self):
        g = self.geometry()
        self.assertEqual(g["native_shape"], SHAPE)
        self.assertEqual(g["fixed_shape"], (6, 7, 5))
        self.assertTrue(torch.equal(g["moving_affine"], grid_affine(2.5)))
        self.assertEqual(g["moving_file"], "/d/moving.nii.gz")
        self.assertIsNone(g["fixed_label_file"])  # every input key is present, None when absent
        self.assertEqual(len(g), len(list(g)))
        d = g.to_dict()
        self.assertIsNone(d["moving_native"])
        rebuilt = PairGeometry(
            fixed=Grid(tuple(d["working_fixed"]["shape"]), torch.tensor(d["working_fixed"]["affine"], dtype=F64)),
            moving=Grid(tuple(d["working_moving"]["shape"]), torch.tensor(d["working_moving"]["affine"], dtype=F64)),
            fixed_native=Grid(
                tuple(d["fixed_native"]["shape"]),
                torch.tensor(d["fixed_native"]["affine"], dtype=F64),
                d["fixed_native"]["file"],
            ),
            files=d["files"],
        )
        for key in g:
            a, b = g[key], rebuilt[key]
            self.assertTrue(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b, key)

    def test_invalid(self):
        g = self.geometry()
        with self.assertRaisesRegex(ValueError, "unknown file keys"):
            PairGeometry(g.fixed, g.moving, g.fixed_native, files={"mask": "m.nii.gz"})
        with self.assertRaisesRegex(ValueError, "one dimensionality"):
            PairGeometry(g.fixed, Grid((6, 7), torch.eye(3)), g.fixed_native)

    def test_from_a_collated_batch(self):
        fixed_aff, moving_aff = grid_affine(3.0), grid_affine(2.5)
        names = {"fixed": ["/d/f0.nii.gz", "/d/f1.nii.gz"], "moving": ["/d/m0.nii.gz", "/d/m1.nii.gz"]}
        batch = {
            "fixed": MetaTensor(torch.zeros(2, 1, 6, 7, 5), affine=fixed_aff, meta={"filename_or_obj": names["fixed"]}),
            "moving": MetaTensor(
                torch.zeros(2, 1, 6, 7, 5), affine=moving_aff, meta={"filename_or_obj": names["moving"]}
            ),
            "fixed_original_affine": torch.stack([oblique_affine(), oblique_affine(angle=10.0)]),
            "fixed_original_shape": torch.tensor([list(SHAPE), [9, 9, 9]]),
        }
        g = pair_geometry(batch, index=1)
        self.assertEqual(g["native_shape"], (9, 9, 9))
        self.assertTrue(torch.equal(g["native_affine"], oblique_affine(angle=10.0)))
        self.assertTrue(torch.equal(g["fixed_affine"], fixed_aff))
        self.assertEqual((g["moving_file"], g["fixed_file"]), ("/d/m1.nii.gz", "/d/f1.nii.gz"))
        self.assertEqual(g.fixed_native.file, "/d/f1.nii.gz")
        self.assertEqual(pair_name(g), "m1_to_f1")
        del batch["fixed_original_shape"]
        with self.assertRaisesRegex(KeyError, "fixed_original_shape"):
            pair_geometry(batch)

    def test_pair_name(self):
        self.assertEqual(
            pair_name({"moving_file": "/a/sub-1_T1w.nii.gz", "fixed_file": "b/atlas.nrrd"}), "sub-1_T1w_to_atlas"
        )
        self.assertEqual(pair_name({"moving_file": "/a/scan.mha", "fixed_file": "/dicom/series/"}), "scan_to_series")
        self.assertEqual(pair_name({"moving_file": None, "fixed_file": "f.nii"}, index=3), "pair3")


class TestNativeResampler(unittest.TestCase):
    """One grid for everything (2 mm voxels): a map that moves every point by exactly one voxel along axis 0."""

    def setUp(self):
        self.affine = grid_affine(2.0)
        grid = Grid(SHAPE, self.affine)
        self.geometry = PairGeometry(fixed=grid, moving=grid, fixed_native=grid)
        i = torch.arange(SHAPE[0], dtype=torch.float32).reshape(-1, 1, 1).expand(SHAPE)
        self.moving = NativeImage((3.0 * i + 1.0)[None].contiguous(), self.affine)  # linear along axis 0
        self.moving_label = NativeImage((i.long() % 3)[None].contiguous(), self.affine, label=True)
        b = torch.zeros(1, 3, dtype=F64)
        b[0, 0] = 2.0 / (SHAPE[0] - 1)  # one voxel in normalised coordinates
        self.theta = theta_from_affine(torch.eye(3, dtype=F64)[None], b)
        self.phi = affine_to_map(torch.eye(3, dtype=F64)[None], b, SHAPE)

    def resampler(self) -> NativeResampler:
        return NativeResampler(self.geometry, images={"moving": self.moving, "moving_label": self.moving_label})

    def test_known_translation(self):
        r = self.resampler()
        points = r.points(self.phi[0])
        self.assertIs(r.points(self.phi[0]), points)  # kept for the writer and the Dice of the same map
        shift = torch.tensor([2.0, 0.0, 0.0], dtype=F64).reshape(3, 1, 1, 1)
        torch.testing.assert_close(points, r.identity_points() + shift)
        torch.testing.assert_close(r.displacement(points), shift.expand(3, *SHAPE))
        expected_T = torch.eye(4, dtype=F64)
        expected_T[0, 3] = 2.0
        torch.testing.assert_close(r.world_affine(self.theta[0]), expected_T)
        torch.testing.assert_close(r.affine_points(self.theta[0]), points)
        warped = r.warp(points)
        self.assertEqual(warped.dtype, torch.float32)
        # moving(i + 1) = 3 (i + 1) + 1 inside; the last slice pulls from outside the moving image (zero padding)
        torch.testing.assert_close(warped[0, :-1], self.moving.data[0, 1:], atol=1e-5, rtol=0)
        self.assertEqual(float(warped[0, -1].abs().max()), 0.0)
        labels = r.warp(points, label=True)
        self.assertEqual(labels.dtype, torch.int64)
        self.assertTrue(torch.equal(labels[0, :-1], self.moving_label.data[0, 1:]))
        self.assertIsNone(r.fixed_label())  # no file, no image
        with self.assertRaisesRegex(KeyError, "'key' must be one of"):
            r.image("mask")

    def test_reads_each_file_once(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = write_image(os.path.join(tmp, "moving.nii.gz"), self.moving.data, self.affine)
            g = PairGeometry(
                self.geometry.fixed, self.geometry.moving, self.geometry.fixed_native, files={"moving": path}
            )
            r = NativeResampler(g)
            first = r.moving()
            self.assertIs(r.moving(), first)
            torch.testing.assert_close(first.data, self.moving.data)
            torch.testing.assert_close(first.affine, self.affine)
            self.assertTrue(torch.equal(load_native(path).data, first.data))
            ident = sample_at_points(first, r.identity_points())
            torch.testing.assert_close(ident, self.moving.data, atol=1e-5, rtol=0)
            with self.assertRaisesRegex(FileNotFoundError, "load_native"):
                load_native(os.path.join(tmp, "none.nii.gz"))

    def test_identity_affine(self):
        r = self.resampler()
        A, b = identity_affine(1, 3, dtype=F64)
        torch.testing.assert_close(r.world_affine(theta_from_affine(A, b)[0]), torch.eye(4, dtype=F64))


if __name__ == "__main__":
    unittest.main()
