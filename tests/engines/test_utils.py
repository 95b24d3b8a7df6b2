"""PreparePairBatch (moving/fixed into MONAI's stock engines) and the checkpoint a re-run resumes from."""

from __future__ import annotations

import os
import tempfile
import unittest

import torch
from monai.data import MetaTensor

from monai_avsm.engines import (
    PreparePairBatch,
    batch_spacing,
    label_names,
    latest_checkpoint,
    new_output_dir,
    pair_items,
    require_file,
    resume_checkpoint,
)


class TestPreparePairBatch(unittest.TestCase):
    def test_pair_and_spacing(self):
        affine = torch.diag(torch.tensor([2.0, 3.0, 4.0, 1.0]))
        fixed = MetaTensor(torch.rand(2, 1, 5, 6, 7), affine=affine)
        moving = MetaTensor(torch.rand(2, 1, 5, 6, 7), affine=affine)
        moving_, fixed_, args, kwargs = PreparePairBatch()({"moving": moving, "fixed": fixed}, device="cpu")
        self.assertNotIsInstance(moving_, MetaTensor)
        self.assertNotIsInstance(fixed_, MetaTensor)
        self.assertTrue(torch.equal(moving_, moving.as_tensor()))
        self.assertIs(args[0], fixed_)
        torch.testing.assert_close(kwargs["spacing"], torch.tensor([[2.0, 3.0, 4.0]] * 2, dtype=torch.float64))
        # a rotated grid: spacing is the column norm, not the diagonal
        rot = torch.tensor([[0.0, -2.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0], [0, 0, 0, 1.0]])
        sp = batch_spacing(MetaTensor(torch.rand(1, 1, 4, 4, 4), affine=rot))
        torch.testing.assert_close(sp, torch.tensor([[3.0, 2.0, 4.0]], dtype=torch.float64))

    def test_plain_tensors_and_errors(self):
        m, f = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)
        _, _, args, kwargs = PreparePairBatch()({"moving": m, "fixed": f})
        self.assertEqual(kwargs, {})
        with self.assertRaisesRegex(KeyError, "PreparePairBatch.*'fixed'"):
            PreparePairBatch()({"moving": m})
        with self.assertRaisesRegex(TypeError, "must be a dict"):
            PreparePairBatch()([m, f])


class TestCheckpoints(unittest.TestCase):
    def test_latest_and_resume(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertIsNone(latest_checkpoint(os.path.join(d, "missing")))
            self.assertIsNone(resume_checkpoint(d))
            for name in ("checkpoint_epoch=2.pt", "checkpoint_epoch=10.pt", "model.pt", "checkpoint_epoch=11.pt"):
                with open(os.path.join(d, name), "wb") as f:
                    f.write(b"" if "11" in name else b"x")  # an empty (interrupted) file is skipped
            self.assertEqual(os.path.basename(latest_checkpoint(d)), "checkpoint_epoch=10.pt")
            self.assertEqual(resume_checkpoint(d), latest_checkpoint(d))
            with self.assertRaisesRegex(FileExistsError, "new --output_dir"):
                resume_checkpoint(d, resume=False)


class TestOutputsAndFiles(unittest.TestCase):
    def test_new_output_dir_never_reuses_a_full_folder(self):
        with tempfile.TemporaryDirectory() as d:
            base = os.path.join(d, "out")
            self.assertEqual(new_output_dir(base), base)  # created
            self.assertEqual(new_output_dir(base), base)  # still empty: reused
            open(os.path.join(base, "result.nii.gz"), "w").close()
            self.assertEqual(new_output_dir(base), base + "_2")
            open(os.path.join(base + "_2", "x"), "w").close()
            self.assertEqual(new_output_dir(base), base + "_3")
            self.assertTrue(os.path.isdir(base + "_3"))

    def test_require_file_and_label_names(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(FileNotFoundError, r"the model '.*m.pt' does not exist\. train first"):
                require_file(os.path.join(d, "m.pt"), "the model", "train first")
            open(os.path.join(d, "m.pt"), "w").close()
            with self.assertRaisesRegex(FileNotFoundError, "is empty"):
                require_file(os.path.join(d, "m.pt"), "the model")
            path = os.path.join(d, "datalist.json")
            with open(path, "w") as f:
                f.write('{"labels": {"0": "background", "1": "grey matter"}, "test": []}')
            self.assertEqual(label_names(path, 3), ["grey_matter", "label2"])
            self.assertIsNone(label_names(os.path.join(d, "missing.json"), 3))


class TestPairItems(unittest.TestCase):
    def test_one_pair_or_datalist(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.nii.gz"), os.path.join(d, "b.nii.gz")
            for f in (a, b):
                open(f, "w").close()
            self.assertEqual(pair_items(None, moving=a, fixed=b), [{"moving": a, "fixed": b}])
            with self.assertRaisesRegex(ValueError, "--fixed is missing"):
                pair_items(None, moving=a)
            with self.assertRaisesRegex(ValueError, "--moving is missing .*--fixed, --fixed_label"):
                pair_items(None, fixed=b, fixed_label=a)
            with self.assertRaisesRegex(FileNotFoundError, "--moving_label file .*nope.nii.gz"):
                pair_items(None, moving=a, fixed=b, moving_label=os.path.join(d, "nope.nii.gz"))
            with open(os.path.join(d, "datalist.json"), "w") as f:
                f.write('{"test": [{"moving": "a.nii.gz", "fixed": "b.nii.gz"}]}')
            self.assertEqual(pair_items(os.path.join(d, "datalist.json"))[0]["fixed"], b)
            with self.assertRaisesRegex(ValueError, "no section 'validation'"):
                pair_items(os.path.join(d, "datalist.json"), section="validation")


if __name__ == "__main__":
    unittest.main()
