"""Registration datalists: pair builders (both directions, seeded), subject-level splits, JSON round trip, errors."""

from __future__ import annotations

import json
import os
import re
import tempfile
import unittest
from pathlib import Path

from parameterized import parameterized

from monai_avsm.data import (
    check_subject_split,
    cross_subject_pairs,
    load_pair_datalist,
    longitudinal_pairs,
    self_pairs,
    split_pairs,
    split_subjects,
    write_datalist,
)


def make_items(num_subjects=10, times=(0, 1, 2), labels=True):
    return [
        {
            "image": f"img/s{s:02d}_t{t}.nii.gz",
            **({"label": f"seg/s{s:02d}_t{t}.nii.gz"} if labels else {}),
            "subject": f"s{s:02d}",
            "time": t,
        }
        for s in range(num_subjects)
        for t in times
    ]


def unordered(pairs):
    return {frozenset((p["moving"], p["fixed"])) for p in pairs}


class TestPairBuilders(unittest.TestCase):
    def test_longitudinal_pairs_same_subject_different_time_both_directions(self):
        items = make_items(4, times=(0, 1, 2))
        pairs = longitudinal_pairs(items, seed=0)
        self.assertEqual(len(pairs), 4 * 3 * 2)  # C(3, 2) pairs per subject, two directions
        directed = {(p["moving"], p["fixed"]) for p in pairs}
        self.assertEqual(len(directed), len(pairs))
        for p in pairs:
            self.assertEqual(p["moving_subject"], p["fixed_subject"])
            self.assertNotEqual(p["moving"], p["fixed"])
            self.assertIn((p["fixed"], p["moving"]), directed)
            self.assertEqual(p["moving_label"], p["moving"].replace("img/", "seg/"))

    def test_longitudinal_pairs_skip_same_time_point(self):
        items = make_items(1, times=(0, 1)) + [{"image": "img/s00_t1_rescan.nii.gz", "subject": "s00", "time": 1}]
        pairs = longitudinal_pairs(items, both_directions=False)
        self.assertEqual(len(pairs), 2)  # t0 with each t1 scan; the two t1 scans are not paired
        self.assertNotIn("moving_label", [k for p in pairs if "rescan" in p["fixed"] for k in p])

    @parameterized.expand([["longitudinal"], ["cross_subject"]])
    def test_seed_reproducible(self, pairing):
        items = make_items(6)
        build = (
            (lambda seed: longitudinal_pairs(items, seed))
            if pairing == "longitudinal"
            else (lambda seed: cross_subject_pairs(items, 20, seed))
        )
        self.assertEqual(build(3), build(3))
        self.assertNotEqual(build(3), build(4))

    def test_cross_subject_pairs_distinct_subjects_both_directions(self):
        items = make_items(5, times=(0, 1))
        pairs = cross_subject_pairs(items, num_pairs=12, seed=1)
        self.assertEqual(len(pairs), 24)
        self.assertEqual(len(unordered(pairs)), 12)
        directed = {(p["moving"], p["fixed"]) for p in pairs}
        for p in pairs:
            self.assertNotEqual(p["moving_subject"], p["fixed_subject"])
            self.assertIn((p["fixed"], p["moving"]), directed)

    def test_cross_subject_all_pairs(self):
        items = make_items(3, times=(0,))
        self.assertEqual(len(cross_subject_pairs(items)), 3 * 2)

    def test_cross_subject_too_many_pairs(self):
        with self.assertRaisesRegex(ValueError, r"num_pairs.*\[1, 3\]"):
            cross_subject_pairs(make_items(3, times=(0,)), num_pairs=4)

    def test_cross_subject_one_subject(self):
        with self.assertRaisesRegex(ValueError, "at least two subjects"):
            cross_subject_pairs(make_items(1))

    def test_item_without_subject(self):
        with self.assertRaisesRegex(ValueError, "item 0 .*'subject'"):
            longitudinal_pairs([{"image": "a.nii"}])

    def test_labels_only_when_both_images_have_one(self):
        items = [{"image": "a.nii", "label": "a_seg.nii", "subject": 1}, {"image": "b.nii", "subject": 2}]
        for p in cross_subject_pairs(items):
            self.assertNotIn("moving_label", p)
            self.assertNotIn("fixed_label", p)


class TestSplits(unittest.TestCase):
    def test_split_subjects_disjoint_and_complete(self):
        subjects = [f"s{i}" for i in range(23)]
        split = split_subjects(subjects, (0.7, 0.1, 0.2), seed=0)
        self.assertEqual(sorted(sum(split.values(), [])), sorted(subjects))
        self.assertEqual([len(split[k]) for k in ("training", "validation", "test")], [16, 2, 5])
        self.assertEqual(split, split_subjects(subjects, (0.7, 0.1, 0.2), seed=0))

    def test_split_subjects_small_gives_every_section_a_subject(self):
        split = split_subjects(["a", "b", "c"], (0.8, 0.1, 0.1))
        self.assertEqual([len(split[k]) for k in ("training", "validation", "test")], [1, 1, 1])

    def test_split_subjects_bad_fractions(self):
        with self.assertRaisesRegex(ValueError, "fractions.*sum to 1"):
            split_subjects(["a", "b", "c"], (0.5, 0.1, 0.1))

    @parameterized.expand([["longitudinal", None], ["cross_subject", 10]])
    def test_no_validation_or_test_subject_in_training(self, pairing, num_pairs):
        datalist = split_pairs(make_items(20), pairing=pairing, num_pairs=num_pairs, seed=5)
        subjects = {
            s: {p[k] for p in datalist[s] for k in ("moving_subject", "fixed_subject")}
            for s in ("training", "validation", "test")
        }
        self.assertTrue(all(subjects.values()))
        self.assertFalse(subjects["training"] & subjects["validation"])
        self.assertFalse(subjects["training"] & subjects["test"])
        images = {s: {it["subject"] for it in datalist[f"{s}_images"]} for s in ("training", "validation", "test")}
        for section in subjects:  # a drawn subset of cross pairs may leave some subjects unpaired
            self.assertLessEqual(subjects[section], images[section])
        self.assertFalse(images["training"] & (images["validation"] | images["test"]))
        self.assertEqual(datalist, split_pairs(make_items(20), pairing=pairing, num_pairs=num_pairs, seed=5))

    def test_check_subject_split_detects_leak(self):
        datalist = split_pairs(make_items(10), seed=0)
        leaked = dict(datalist, test=datalist["test"] + [datalist["training"][0]])
        with self.assertRaisesRegex(ValueError, r"subject 's\d+' of 'test' item \d+ also appears in training"):
            check_subject_split(leaked)

    def test_unknown_pairing(self):
        with self.assertRaisesRegex(ValueError, "pairing.*'longitudinal' or 'cross_subject'"):
            split_pairs(make_items(5), pairing="random")


class TestDatalistFiles(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name) / "data"
        for it in make_items(4, times=(0, 1)):
            for key in ("image", "label"):
                (self.root / it[key]).parent.mkdir(parents=True, exist_ok=True)
                (self.root / it[key]).write_bytes(b"x")
        self.items = [
            {k: (str(self.root / v) if k in ("image", "label") else v) for k, v in it.items()}
            for it in make_items(4, times=(0, 1))
        ]

    def tearDown(self):
        self.tmp.cleanup()

    def test_written_paths_are_relative_and_load_back_absolute(self):
        datalist = split_pairs(self.items, fractions=(0.5, 0.25, 0.25))
        path = write_datalist(datalist, self.root / "datalist.json")
        raw = json.loads(path.read_text())
        self.assertTrue(raw["training"][0]["moving"].startswith("img/"))
        loaded = load_pair_datalist(path, section="training")
        self.assertEqual(loaded, datalist["training"])
        self.assertTrue(all(os.path.isabs(p["fixed_label"]) for p in loaded))
        images = load_pair_datalist(path, section="test_images")
        self.assertEqual([it["image"] for it in images], [it["image"] for it in datalist["test_images"]])

    def test_data_root_other_than_the_json_folder(self):
        datalist = split_pairs(self.items, fractions=(0.5, 0.25, 0.25))
        path = write_datalist(datalist, Path(self.tmp.name) / "lists" / "datalist.json", data_root=self.root)
        self.assertEqual(json.loads(path.read_text())["test"][0]["moving"][:4], "img/")
        self.assertEqual(load_pair_datalist(path, data_root=self.root, section="test"), datalist["test"])
        with self.assertRaisesRegex(FileNotFoundError, "'moving' file .*lists/img/s0\\d_t\\d.nii.gz' does not exist"):
            load_pair_datalist(path, section="test")  # resolved against the JSON folder: wrong root

    def test_write_refuses_to_overwrite_different_content(self):
        path = write_datalist({"training": []}, self.root / "datalist.json")
        write_datalist({"training": []}, path)  # same content: fine
        with self.assertRaisesRegex(FileExistsError, "datalist.json.*different content"):
            write_datalist({"training": [], "test": []}, path)
        write_datalist({"training": [], "test": []}, path, overwrite=True)

    def _write(self, content) -> Path:
        path = self.root / "list.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    def test_missing_datalist_file(self):
        with self.assertRaisesRegex(FileNotFoundError, "load_pair_datalist.*nope.json' does not exist"):
            load_pair_datalist(self.root / "nope.json")

    def test_invalid_json(self):
        path = self._write("{not json")
        with self.assertRaisesRegex(ValueError, f"{re.escape(str(path))}' is not valid JSON"):
            load_pair_datalist(path)

    def test_missing_section(self):
        path = self._write({"training": []})
        with self.assertRaisesRegex(
            ValueError, r"list.json' has no section 'validation'; sections found: \['training'\]"
        ):
            load_pair_datalist(path, section="validation")

    @parameterized.expand([["training", {"moving": "img/s00_t0.nii.gz"}, "fixed"], ["training_images", {}, "image"]])
    def test_missing_key(self, section, item, key):
        path = self._write({section: [item]})
        with self.assertRaisesRegex(ValueError, f"list.json', section '{section}', item 0 has no key '{key}'"):
            load_pair_datalist(path, section=section)

    def test_missing_image_file(self):
        path = self._write({"training": [{"moving": "img/s00_t0.nii.gz", "fixed": "img/gone.nii.gz"}]})
        with self.assertRaisesRegex(
            FileNotFoundError, r"section 'training', item 0: 'fixed' file '.*img/gone.nii.gz' does not exist"
        ):
            load_pair_datalist(path)
        self.assertTrue(load_pair_datalist(path, check_files=False)[0]["fixed"].endswith("gone.nii.gz"))


class TestSelfPairs(unittest.TestCase):
    def test_self_pairs(self):
        items = [{"image": "a.nii", "label": "a_seg.nii", "subject": "s1"}, {"image": "b.nii"}]
        pairs = self_pairs(items)
        self.assertEqual(
            pairs[0],
            {
                "moving": "a.nii",
                "fixed": "a.nii",
                "moving_label": "a_seg.nii",
                "fixed_label": "a_seg.nii",
                "subject": "s1",
                "moving_subject": "s1",
                "fixed_subject": "s1",
            },
        )
        self.assertNotIn("moving_label", pairs[1])
        with self.assertRaisesRegex(ValueError, "item 0 has no 'image'"):
            self_pairs([{"label": "x"}])


if __name__ == "__main__":
    unittest.main()
