"""Fine-tuning from the shipped weights (bundle/configs/finetune.json merged after train.json) on a user's own
datalist: the run starts from models/model.pt, lowers the training loss of the pairs it trains on, keeps the affine
net frozen, resumes from its own checkpoint on a re-run (without loading the shipped weights again), and names a
missing weights file. Real sample data at 4 mm (resized to 96x112x96, the grid the shipped model was trained at), a few
iterations, no augmentation."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch
from ignite.engine import Events

from monai_avsm.apps.sample import build_sample_dataset
from monai_avsm.data.templates import missing_packages
from monai_avsm.engines import cosine_stage_lambda, training_pairs
from tests.bundle.test_bundle import BUNDLE, CONFIGS, REPO, TRAIN, _cause, _workflow

FINETUNE = str(CONFIGS / "finetune.json")
SHIPPED = str(BUNDLE / "models" / "model.pt")
PAIR_KEYS = ("moving", "fixed", "moving_label", "fixed_label")
#: tiny and deterministic: the model's own grid (finetune.json's 96x112x96), no augmentation, no random pair swap
TINY = {
    "bundle_root": str(BUNDLE),
    "iterations_per_epoch": 4,
    "vsvf_epochs": 1,
    "augment_prob": 0.0,
    "train#augmentation#1#prob": 0.0,
}


def _finetune(datalist: str, out: str, **override):
    wf = _workflow([TRAIN, FINETUNE], "train", **{**TINY, "datalist": datalist, "output_dir": out, **override})
    wf.initialize()
    return wf


def _pair_losses(wf, network: torch.nn.Module) -> list[float]:
    """The training loss (symmetric vSVF stage, as set by the config's handlers) of every training pair, no grad."""
    loss, prepare = wf.parser.get_parsed_content("loss"), wf.parser.get_parsed_content("prepare_batch")
    dataset = wf.parser.get_parsed_content("train#dataset")
    values = []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            moving, fixed, _, kwargs = prepare({k: item[k].unsqueeze(0) for k in ("moving", "fixed")})
            values.append(float(loss(network(moving, fixed, symmetric=True, **kwargs), fixed)))
    return values


def _state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


@unittest.skipIf(missing_packages(), f"the sample data needs the demo extra: {missing_packages()}")
class TestFinetune(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        data = os.path.join(cls.tmp, "sample")
        build_sample_dataset(data, spacing=4.0)  # real templates, 48x56x48
        # "your own data": the two held-out templates the shipped model never trained on (both directions), a
        # datalist of pairs only (no "training_images" section), one validation pair
        sample = json.load(open(os.path.join(data, "datalist.json")))

        def absolute(item: dict) -> dict:
            return {k: os.path.join(data, v) if k in PAIR_KEYS else v for k, v in item.items()}

        own = {"training": [absolute(p) for p in sample["test"]], "validation": [absolute(sample["validation"][0])]}
        cls.datalist = os.path.join(cls.tmp, "own", "pairs.json")
        os.makedirs(os.path.dirname(cls.datalist))
        with open(cls.datalist, "w") as f:
            json.dump(own, f, indent=1)
        cls.shipped = torch.load(SHIPPED, weights_only=True)

        cls.run_dir = os.path.join(cls.tmp, "finetune")
        wf = _finetune(cls.datalist, cls.run_dir)
        cls.settings = {
            k: wf.parser.get_parsed_content(k) for k in ("learning_rate", "affine_epochs", "build_sample_data")
        }
        network, trainer = wf.parser.get_parsed_content("network"), wf.parser.get_parsed_content("train#trainer")
        rec: dict = {"stage": None}

        def started(engine):  # after the config's stage and schedule handlers (attached first)
            rec["start_state"] = _state(network)
            shipped = copy.deepcopy(network)  # same stage settings, weights from models/model.pt read here
            shipped.load_state_dict(cls.shipped)
            rec["before"] = _pair_losses(wf, shipped)
            rec["stage"] = (wf.parser.get_parsed_content("loss").stage, network.affine_frozen)
            rec["num_steps"] = network.affine_net.num_steps

        def first_iteration(engine):
            rec["first_loss"] = float(engine.state.output["loss"].detach())
            rec["first_moving"] = engine.state.batch["moving"].as_tensor().clone()

        def completed(engine):
            rec["after"] = _pair_losses(wf, network)
            rec["end_state"] = _state(network)

        trainer.add_event_handler(Events.EPOCH_STARTED(once=1), started)
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=1), first_iteration)
        trainer.add_event_handler(Events.COMPLETED, completed)
        wf.run()
        wf.finalize()
        cls.rec, cls.trainer = rec, trainer
        cls.moving = [wf.parser.get_parsed_content("train#dataset")[i]["moving"].as_tensor() for i in range(2)]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_defaults(self):
        self.assertEqual(self.settings["learning_rate"], 1e-4)
        self.assertEqual(self.settings["affine_epochs"], 0)
        self.assertFalse(self.settings["build_sample_data"])  # --datalist: the sample data is not built
        self.assertEqual(self.rec["stage"], ("vsvf", True))  # vSVF stage from epoch 1, affine frozen
        self.assertEqual(self.rec["num_steps"], 3)  # the affine steps the shipped model was trained with
        self.assertEqual(self.trainer.state.iteration, 4)

    def test_starts_from_shipped_weights_and_lowers_the_loss(self):
        start, end = self.rec["start_state"], self.rec["end_state"]
        self.assertEqual(set(start), set(self.shipped))
        for k, v in self.shipped.items():
            self.assertTrue(torch.equal(start[k], v), k)  # the network held models/model.pt when training started
        # the first iteration's loss is the shipped model's loss on that pair (before any update)
        index = [i for i, m in enumerate(self.moving) if torch.equal(m, self.rec["first_moving"][0])]
        self.assertEqual(len(index), 1)
        self.assertAlmostEqual(self.rec["first_loss"], self.rec["before"][index[0]], delta=1e-5)
        # the fine-tuned model has a lower training loss on the same pairs than the shipped model
        before, after = self.rec["before"], self.rec["after"]
        print(f"\nfine-tuning loss per pair: shipped {before} -> fine-tuned {after}")
        self.assertLess(sum(after) / len(after), sum(before) / len(before))
        # the vSVF net was trained, the affine net stayed frozen
        changed = [k for k in start if not torch.equal(start[k], end[k])]
        self.assertTrue(changed)
        self.assertTrue(all(k.startswith("vsvf_net.") for k in changed), changed)
        # the final model is a bare state dict (models/model.pt format) of the fine-tuned weights
        files = os.listdir(os.path.join(self.run_dir, "checkpoints"))
        self.assertIn("checkpoint_epoch=1.pt", files)
        final = torch.load(os.path.join(self.run_dir, "checkpoints", "model.pt"), weights_only=True)
        for k, v in end.items():
            self.assertTrue(torch.equal(final[k], v), k)

    def test_rerun_resumes_without_reloading_the_shipped_weights(self):
        out = os.path.join(self.tmp, "resumed")
        shutil.copytree(self.run_dir, out)
        saved = torch.load(os.path.join(out, "checkpoints", "checkpoint_epoch=1.pt"), weights_only=True)["model"]
        with self.assertLogs("monai_avsm.engines.finetune", "INFO") as logs:
            wf = _finetune(self.datalist, out, vsvf_epochs=2)
        self.assertIn("the pretrained weights are not loaded", "\n".join(logs.output))
        self.assertNotIn("fine-tuning from the weights", "\n".join(logs.output))
        network, trainer = wf.parser.get_parsed_content("network"), wf.parser.get_parsed_content("train#trainer")
        rec: dict = {}
        trainer.add_event_handler(
            Events.EPOCH_STARTED, lambda e: rec.setdefault("first", (e.state.epoch, _state(network)))
        )
        wf.run()
        epoch, state = rec["first"]
        self.assertEqual(epoch, 2)  # epoch 1 was not trained again
        for k, v in saved.items():
            self.assertTrue(torch.equal(state[k], v), k)  # the checkpoint's weights, not models/model.pt
        self.assertTrue(any(not torch.equal(state[k], v) for k, v in self.shipped.items()))
        self.assertIn("checkpoint_epoch=2.pt", os.listdir(os.path.join(out, "checkpoints")))

    def test_missing_pretrained_weights_is_a_clear_error(self):
        out = os.path.join(self.tmp, "nope")
        with self.assertRaises(Exception) as ctx:
            _finetune(self.datalist, out, pretrained_path="/nope/model.pt")
        error = _cause(ctx.exception)
        self.assertIsInstance(error, FileNotFoundError)
        self.assertIn("the pretrained model '/nope/model.pt' does not exist", str(error))
        self.assertIn("--pretrained_path", str(error))
        # the same through the documented command line
        cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", f"['{TRAIN}','{FINETUNE}']",
               "--bundle_root", str(BUNDLE), "--datalist", self.datalist, "--output_dir", out,
               "--pretrained_path", "/nope/model.pt"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), timeout=300)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("the pretrained model '/nope/model.pt' does not exist", done.stdout + done.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "checkpoints")))

    def test_helpers(self):
        self.assertEqual(len(training_pairs(self.datalist)), 2)  # a datalist without "training_images"
        factor = cosine_stage_lambda(2, 10, min_ratio=0.1)
        self.assertEqual([factor(0), factor(2)], [1.0, 1.0])  # each stage starts at the full learning rate
        self.assertAlmostEqual(factor(7), 0.55)  # half-way through the vSVF stage
        self.assertAlmostEqual(factor(12), 0.1)
        self.assertAlmostEqual(factor(99), 0.1)


if __name__ == "__main__":
    unittest.main()
