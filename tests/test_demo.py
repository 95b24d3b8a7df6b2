"""The quick-start demo: vSVF registration of nibabel's real T1 to a known deformation of itself."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import nibabel as nib

from monai_avsm.demo import main, run_demo


class TestDemo(unittest.TestCase):
    def test_recovers_known_deformation(self):
        m = run_demo(iterations=40)["metrics"]
        self.assertEqual(m["shape"], [33, 41, 25])
        self.assertLess(m["mklncc_after"], 0.5 * m["mklncc_before"])
        self.assertLess(m["map_error_voxels_mean_after"], 0.6 * m["map_error_voxels_mean_before"])
        self.assertEqual(m["folds"], 0)

    def test_cli_writes_new_folder_and_refuses_to_overwrite(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            self.assertEqual(main(["--out", str(out), "--iterations", "3"]), 0)
            names = sorted(p.name for p in out.iterdir())
            self.assertEqual(
                names, ["fixed.nii.gz", "jacobian_determinant.nii.gz", "metrics.json", "moving.nii.gz", "warped.nii.gz"]
            )
            self.assertEqual(nib.load(str(out / "warped.nii.gz")).shape, (33, 41, 25))
            self.assertEqual(json.loads((out / "metrics.json").read_text())["iterations"], 3)
            with self.assertRaises(SystemExit):
                main(["--out", str(out), "--iterations", "3"])

    def test_nan_image_is_refused(self):
        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            data = np.ones((8, 9, 10), dtype=np.float32)
            data[2, 3, 4] = np.nan
            path = f"{tmp}/nan.nii.gz"
            nib.save(nib.Nifti1Image(data, np.eye(4)), path)
            with self.assertRaisesRegex(ValueError, "nan.nii.gz.*1 NaN"):
                run_demo(image_path=path, iterations=1)

    def test_missing_image_is_named(self):
        with self.assertRaisesRegex(FileNotFoundError, "no_such_file.nii"):
            run_demo(image_path="/tmp/no_such_file.nii", iterations=1)


if __name__ == "__main__":
    unittest.main()
