"""data/files.py: the file an image came from, new output folders, files that are never overwritten by accident,
and the writing of a built data set (deterministic NIfTI bytes, manifest, cache check, conflicts)."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import unittest
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor

from monai_avsm.data.files import (
    cached_dataset_files,
    dataset_manifest,
    image_filename,
    new_output_dir,
    nifti_bytes,
    prepare_output_path,
    sha256_hex,
    write_dataset_files,
)
from monai_avsm.data.image_io import NativeImage


class TestPaths(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def test_image_filename(self):
        self.assertEqual(image_filename(NativeImage(torch.zeros(1, 2, 2), torch.eye(3), "/d/a.nii.gz")), "/d/a.nii.gz")
        self.assertEqual(
            image_filename(MetaTensor(torch.zeros(1, 2, 2), meta={"filename_or_obj": "/d/b.nrrd"})), "/d/b.nrrd"
        )
        batch = MetaTensor(torch.zeros(2, 1, 2, 2), meta={"filename_or_obj": ["/d/c.nii", "/d/d.nii"]})
        self.assertEqual(image_filename(batch), "/d/c.nii")  # the first of a collated batch
        self.assertIsNone(image_filename(torch.zeros(1, 2, 2)))
        self.assertEqual(image_filename(torch.zeros(1, 2, 2), "moving"), "moving")

    def test_new_output_dir(self):
        base = str(self.tmp / "runs" / "out")
        self.assertEqual(new_output_dir(base), base)  # created with its parents
        self.assertTrue(os.path.isdir(base))
        self.assertEqual(new_output_dir(base), base)  # still empty: reused
        self.assertEqual(new_output_dir(base, reuse_empty=False), base + "_2")  # every existing name is taken
        Path(base, "file.txt").write_text("x")
        self.assertEqual(new_output_dir(base), base + "_2")  # base is full; base_2 is empty
        Path(base + "_3").write_text("a file, not a folder")
        Path(base + "_2", "f").write_text("x")
        self.assertEqual(new_output_dir(base), base + "_4")
        blocker = self.tmp / "plain_file"
        blocker.write_text("x")
        with self.assertRaises(OSError):  # a file where a parent folder should be: no endless search
            new_output_dir(str(blocker / "out"))

    def test_prepare_output_path(self):
        path = str(self.tmp / "a" / "b" / "f.nii.gz")
        self.assertEqual(prepare_output_path(path, False, "writer"), path)
        self.assertTrue(os.path.isdir(os.path.dirname(path)))
        Path(path).write_text("x")
        with self.assertRaisesRegex(FileExistsError, "writer: .*exists; pass overwrite=True"):
            prepare_output_path(path, False, "writer")
        self.assertEqual(prepare_output_path(path, True, "writer"), path)
        with self.assertRaisesRegex(IsADirectoryError, "is a folder"):
            prepare_output_path(str(self.tmp), True, "writer")


class TestDatasetFiles(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.out = Path(self._tmp.name) / "set"

    def tearDown(self):
        self._tmp.cleanup()

    def test_nifti_bytes_are_deterministic(self):
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        a, b = nifti_bytes(data, affine), nifti_bytes(data, affine)
        self.assertEqual(a, b)
        self.assertEqual(gzip.decompress(a)[:4], (348).to_bytes(4, "little"))  # a NIfTI-1 header
        path = self.out.parent / "x.nii.gz"
        path.write_bytes(a)
        img = nib.load(str(path))
        np.testing.assert_array_equal(np.asarray(img.dataobj), data)
        np.testing.assert_allclose(img.affine, affine)
        self.assertEqual(int(img.header["qform_code"]), 1)
        vec = nifti_bytes(np.zeros((2, 3, 4, 1, 3), np.float32), affine, intent="vector")
        path.write_bytes(vec)
        self.assertEqual(nib.load(str(path)).header.get_intent()[0], "vector")

    def test_manifest_cache_and_conflicts(self):
        files = {"images/a.nii.gz": b"aaa", "datalist.json": b"{}\n"}
        settings = {"spacing_mm": 2.0, "seed": 0}
        manifest = dataset_manifest(settings, files, monai_avsm_version="0.1.0")
        record = json.loads(manifest)
        self.assertEqual(list(record), ["settings", "monai_avsm_version", "files"])
        self.assertEqual(record["files"], {"datalist.json": sha256_hex(b"{}\n"), "images/a.nii.gz": sha256_hex(b"aaa")})
        self.assertIsNone(cached_dataset_files(self.out, settings))  # nothing built yet
        written = write_dataset_files(self.out, {**files, "manifest.json": manifest}, False, "build()")
        self.assertEqual(written, ["images/a.nii.gz", "datalist.json", "manifest.json"])
        self.assertFalse(any(p.suffix == ".part" for p in self.out.rglob("*")))  # atomic writes leave no parts
        self.assertEqual(cached_dataset_files(self.out, settings), ["datalist.json", "images/a.nii.gz"])
        self.assertIsNone(cached_dataset_files(self.out, {**settings, "seed": 1}))  # other settings
        self.assertEqual(write_dataset_files(self.out, files, False, "build()"), [])  # the same bytes: nothing to do
        with self.assertRaisesRegex(FileExistsError, r"build\(\): .* 1 file\(s\) with other content .*'images/a"):
            write_dataset_files(self.out, {"images/a.nii.gz": b"bbb", "new.txt": b"n"}, False, "build()")
        self.assertFalse((self.out / "new.txt").exists())  # nothing written on a conflict
        self.assertEqual(
            write_dataset_files(self.out, {"images/a.nii.gz": b"bbb"}, True, "build()"), ["images/a.nii.gz"]
        )
        self.assertIsNone(cached_dataset_files(self.out, settings))  # an edited file fails the checksum
        (self.out / "manifest.json").write_text("not json")
        self.assertIsNone(cached_dataset_files(self.out, settings))


if __name__ == "__main__":
    unittest.main()
