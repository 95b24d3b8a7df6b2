"""OAI presets: the paper's settings as plain values, and a check that fails clearly when the data is absent."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import unittest
from pathlib import Path

from parameterized import parameterized

from monai_avsm.apps import oai
from monai_avsm.apps.oai import check_oai_dataset, load_oai_config
from monai_avsm.data import write_datalist

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PRESETS = [["oai_longitudinal", 3], ["oai_cross_subject", 5]]


class TestOAIPresets(unittest.TestCase):
    @parameterized.expand(PRESETS)
    def test_paper_settings(self, name, affine_train_steps):
        config = load_oai_config(CONFIGS / f"{name}.json")
        pre = config["preprocessing"]
        self.assertEqual(pre["spatial_size"], [80, 192, 192])  # the authors' img_after_resize, tensor order
        self.assertEqual(pre["original_size"], [384, 384, 160])
        self.assertEqual(pre["intensity_percentiles"], [0.1, 99.9])
        self.assertEqual(pre["intensity_range"], [0.0, 1.0])
        self.assertTrue(pre["clip"])
        self.assertEqual(config["labels"], {"0": "background", "1": "femoral cartilage", "2": "tibial cartilage"})
        self.assertEqual(config["affine"]["num_steps_train"], affine_train_steps)
        self.assertEqual(config["affine"]["num_steps_test"], 7)
        self.assertEqual(
            (config["affine"]["lambda_as"], config["affine"]["c_ar"], config["affine"]["k_ar"]), (10, 10, 4)
        )
        vsvf = config["vsvf"]
        self.assertEqual(
            (vsvf["num_steps_train"], vsvf["time_steps"], vsvf["lambda_vr"], vsvf["lambda_vs"]), (2, 10, 10, 1e-4)
        )
        self.assertEqual(vsvf["sigmas"], [0.05, 0.10, 0.15, 0.20, 0.25])
        self.assertAlmostEqual(sum(vsvf["kernel_weights"]), 1.0, places=6)
        t = config["training"]
        self.assertEqual(
            (
                t["pairs_per_batch"],
                t["batches_per_epoch"],
                t["epochs"],
                t["learning_rate"],
                t["lr_step_epochs"],
                t["lr_gamma"],
            ),
            (1, 400, 200, 5e-4, 60, 0.5),
        )
        self.assertEqual(config["mk_lncc"]["kernel_sizes"], [20, 40])
        self.assertIsNone(config["dataset_dir"])
        self.assertEqual(config["pairing"], name.replace("oai_", ""))


class TestCheckOAIDataset(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def preset(self, **changes) -> Path:
        config = json.loads((CONFIGS / "oai_longitudinal.json").read_text())
        config.update(changes)
        path = self.dir / "preset.json"
        path.write_text(json.dumps(config))
        return path

    def test_dataset_dir_not_set(self):
        with self.assertRaisesRegex(ValueError, r"oai_longitudinal.json': 'dataset_dir' is not set.*nda\.nih\.gov/oai"):
            check_oai_dataset(CONFIGS / "oai_longitudinal.json")

    def test_missing_folder(self):
        missing = self.dir / "OAI"
        with self.assertRaisesRegex(
            FileNotFoundError, rf"'dataset_dir' = '{missing}' does not exist.*nda\.nih\.gov/oai"
        ):
            check_oai_dataset(CONFIGS / "oai_cross_subject.json", dataset_dir=missing)

    def test_missing_datalist(self):
        with self.assertRaisesRegex(
            FileNotFoundError, r"datalist_longitudinal.json.*does not exist; build it .*split_pairs"
        ):
            check_oai_dataset(self.preset(dataset_dir=str(self.dir)))

    def test_missing_image(self):
        (self.dir / "9000099_v00.nii.gz").write_bytes(b"x")
        pair = {"moving": "9000099_v00.nii.gz", "fixed": "9000099_v12.nii.gz"}
        write_datalist({"training": [pair]}, self.dir / "datalist_longitudinal.json")
        with self.assertRaisesRegex(
            FileNotFoundError, r"'fixed' file '.*9000099_v12.nii.gz' does not exist.*nda\.nih\.gov"
        ):
            check_oai_dataset(self.preset(dataset_dir=str(self.dir)))

    def test_evaluation_pairs_need_labels(self):
        for name in ("a.nii.gz", "b.nii.gz"):
            (self.dir / name).write_bytes(b"x")
        pair = {"moving": "a.nii.gz", "fixed": "b.nii.gz"}
        write_datalist({"training": [pair], "validation": [], "test": [pair]}, self.dir / "datalist_longitudinal.json")
        with self.assertRaisesRegex(ValueError, r"section 'test', item 0 has no 'moving_label'.*femoral cartilage"):
            check_oai_dataset(self.preset(dataset_dir=str(self.dir)))

    def test_complete_dataset(self):
        for name in ("a.nii.gz", "b.nii.gz", "a_seg.nii.gz", "b_seg.nii.gz"):
            (self.dir / name).write_bytes(b"x")
        pair = {
            "moving": "a.nii.gz",
            "fixed": "b.nii.gz",
            "moving_label": "a_seg.nii.gz",
            "fixed_label": "b_seg.nii.gz",
        }
        write_datalist(
            {"training": [pair, pair], "validation": [pair], "test": [pair]}, self.dir / "datalist_longitudinal.json"
        )
        res = check_oai_dataset(self.preset(dataset_dir=str(self.dir)))
        self.assertEqual(res["pairs"], {"training": 2, "validation": 1, "test": 1})
        with contextlib.redirect_stdout(io.StringIO()) as out:
            self.assertEqual(oai.main([str(self.preset(dataset_dir=str(self.dir)))]), 0)
        self.assertIn("'training': 2", out.getvalue())

    def test_cli_reports_missing_data(self):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(oai.main([str(CONFIGS / "oai_longitudinal.json")]), 1)
        self.assertIn("'dataset_dir' is not set", err.getvalue())

    def test_bad_preset(self):
        with self.assertRaisesRegex(FileNotFoundError, "OAI preset '.*nope.json' does not exist"):
            load_oai_config(self.dir / "nope.json")
        path = self.dir / "partial.json"
        path.write_text(json.dumps({"dataset_dir": None}))
        with self.assertRaisesRegex(ValueError, "partial.json' has no 'datalist' key"):
            load_oai_config(path)


if __name__ == "__main__":
    unittest.main()
