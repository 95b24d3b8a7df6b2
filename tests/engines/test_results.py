"""engines/results.py: write_pair_outputs writes the promised files for a known translation (each read back with its
known answer), never overwrites unless asked, and the determinant summary counts folds as det J <= 0."""

from __future__ import annotations

import os
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch

from monai_avsm.data.export import read_affine_transform, read_displacement_field, write_image
from monai_avsm.engines.native import Grid, NativeResampler, PairGeometry
from monai_avsm.engines.results import CONVENTIONS, determinant_summary, write_pair_outputs
from monai_avsm.functional import affine_to_map, theta_from_affine
from tests.engines.test_native import SHAPE, grid_affine

F64 = torch.float64
SHIFT_MM = 2.0  # one voxel along axis 0
FORWARD = {
    "warped": "warped.nii.gz",
    "warped_label": "warped_label.nii.gz",
    "displacement_field": "displacement_field.nii",
    "deformable_field": "deformable_field.nii",
    "affine.tfm": "affine.tfm",
    "affine.mat": "affine.mat",
    "jacobian_determinant": "jacobian_determinant.nii.gz",
    "preview": "preview.png",
}
INVERSE = {
    "inverse_warped": "inverse_warped.nii.gz",
    "inverse_warped_label": "inverse_warped_label.nii.gz",
    "inverse_displacement_field": "inverse_displacement_field.nii",
    "inverse_deformable_field": "inverse_deformable_field.nii",
    "inverse_affine.tfm": "inverse_affine.tfm",
    "inverse_affine.mat": "inverse_affine.mat",
}


class TestWritePairOutputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        tmp = cls._tmp.name
        cls.affine = grid_affine(2.0)
        i = torch.arange(SHAPE[0], dtype=torch.float32).reshape(-1, 1, 1).expand(SHAPE)
        j = torch.arange(SHAPE[1], dtype=torch.float32).reshape(1, -1, 1).expand(SHAPE)
        cls.moving = (3.0 * i + 1.0 + 0.5 * j)[None].contiguous()
        labels = (i.long() % 3)[None].contiguous()
        files = {
            "moving": write_image(os.path.join(tmp, "moving.nii.gz"), cls.moving, cls.affine),
            "fixed": write_image(os.path.join(tmp, "fixed.nii.gz"), cls.moving + 1.0, cls.affine),
            "moving_label": write_image(os.path.join(tmp, "moving_label.nii.gz"), labels, cls.affine),
            "fixed_label": write_image(os.path.join(tmp, "fixed_label.nii.gz"), labels, cls.affine),
        }
        grid = Grid(SHAPE, cls.affine)
        cls.geometry = PairGeometry(fixed=grid, moving=grid, fixed_native=Grid(SHAPE, cls.affine), files=files)
        b = torch.zeros(1, 3)
        b[0, 0] = 2.0 / (SHAPE[0] - 1)  # one voxel in normalised coordinates
        eye = torch.eye(3)[None]
        cls.pred = {"map": affine_to_map(eye, b, SHAPE), "affine": theta_from_affine(eye, b)}
        cls.folder = os.path.join(tmp, "pair")
        os.makedirs(cls.folder)
        cls.record = write_pair_outputs(cls.folder, cls.geometry, cls.pred, compress_fields=False, inverse_margin=2)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_the_promised_files(self):
        self.assertEqual(self.record["files"], {**FORWARD, **INVERSE})
        self.assertEqual(sorted(os.listdir(self.folder)), sorted({**FORWARD, **INVERSE}.values()))
        self.assertEqual(self.record["conventions"], CONVENTIONS)
        self.assertEqual(self.record["native_grid"]["shape"], list(SHAPE))
        self.assertEqual(self.record["moving"], self.geometry["moving_file"])
        self.assertGreaterEqual(self.record["write_seconds"], 0.0)

    def test_known_answers(self):
        shift = torch.tensor([SHIFT_MM, 0.0, 0.0], dtype=F64).reshape(3, 1, 1, 1)
        path = os.path.join(self.folder, "displacement_field.nii")
        d, a = read_displacement_field(path)
        torch.testing.assert_close(a, self.affine)
        torch.testing.assert_close(d, shift.expand(3, *SHAPE), atol=1e-5, rtol=0)
        d, _ = read_displacement_field(os.path.join(self.folder, "deformable_field.nii"))
        self.assertLess(float(d.abs().max()), 1e-5)  # an affine map: no deformable part
        d, _ = read_displacement_field(os.path.join(self.folder, "inverse_displacement_field.nii"))
        torch.testing.assert_close(d, -shift.expand(3, *SHAPE), atol=1e-5, rtol=0)
        T = torch.eye(4, dtype=F64)
        T[0, 3] = SHIFT_MM
        for name, want in (("affine.tfm", T), ("affine.mat", T), ("inverse_affine.mat", torch.linalg.inv(T))):
            torch.testing.assert_close(read_affine_transform(os.path.join(self.folder, name)), want, atol=1e-6, rtol=0)
        torch.testing.assert_close(torch.tensor(self.record["affine_world_ras"], dtype=F64), T, atol=1e-6, rtol=0)
        warped = np.asarray(nib.load(os.path.join(self.folder, "warped.nii.gz")).dataobj)
        np.testing.assert_allclose(warped[:-1], self.moving[0, 1:].numpy(), atol=1e-4)  # moving(i + 1)
        label = np.asarray(nib.load(os.path.join(self.folder, "warped_label.nii.gz")).dataobj)
        np.testing.assert_array_equal(label[:-1], (np.arange(1, SHAPE[0]) % 3)[:, None, None] * np.ones(SHAPE[1:]))
        det = np.asarray(nib.load(os.path.join(self.folder, "jacobian_determinant.nii.gz")).dataobj)
        np.testing.assert_allclose(det, 1.0, atol=1e-5)
        jac = self.record["jacobian"]
        self.assertEqual((jac["folds"], jac["fold_rule"]), (0, "det J <= 0"))
        self.assertAlmostEqual(jac["min"], 1.0, places=5)
        self.assertLess(self.record["inverse_consistency"]["forward_inverse_mean_mm"], 1e-4)

    def test_refuses_to_overwrite(self):
        with self.assertRaises(FileExistsError):
            write_pair_outputs(self.folder, self.geometry, self.pred, compress_fields=False, inverse_margin=2)
        before = os.path.getmtime(os.path.join(self.folder, "warped.nii.gz"))
        record = write_pair_outputs(
            self.folder,
            self.geometry,
            self.pred,
            compress_fields=False,
            overwrite=True,
            preview=False,
            inverse_margin=2,
        )
        self.assertNotIn("preview", record["files"])
        self.assertGreaterEqual(os.path.getmtime(os.path.join(self.folder, "warped.nii.gz")), before)

    def test_options_and_the_integrator_rule(self):
        with tempfile.TemporaryDirectory() as folder:
            r = NativeResampler(self.geometry)
            record = write_pair_outputs(
                folder, self.geometry, self.pred, inverse=False, separable=False, preview=False, jacobian=False,
                resampler=r,
            )  # fmt: skip
            self.assertEqual(
                set(record["files"]), {"warped", "warped_label", "displacement_field", "affine.tfm", "affine.mat"}
            )
            self.assertEqual(record["files"]["displacement_field"], "displacement_field.nii.gz")  # compressed
            self.assertIn("jacobian", record)  # the statistics whatever 'jacobian' says
            self.assertNotIn("inverse_consistency", record)
        with tempfile.TemporaryDirectory() as folder:
            with_velocity = {**self.pred, "velocities": [torch.zeros(1, 3, 5, 6, 4)]}
            with self.assertRaisesRegex(TypeError, "integrator"):
                write_pair_outputs(folder, self.geometry, with_velocity, preview=False)


class TestDeterminantSummary(unittest.TestCase):
    def test_known_values(self):
        s = determinant_summary(torch.tensor([[-1.0, 0.0], [0.5, 2.0]]))
        self.assertEqual(s["folds"], 2)  # det J <= 0: the zero counts
        self.assertEqual(s["fold_fraction"], 0.5)
        self.assertEqual((s["min"], s["max"], s["mean"]), (-1.0, 2.0, 0.375))
        self.assertEqual(s["folds_mean_abs_det"], 0.5)
        self.assertEqual(determinant_summary(torch.ones(3))["folds_mean_abs_det"], 0.0)


if __name__ == "__main__":
    unittest.main()
