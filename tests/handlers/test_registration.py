"""monai_avsm.handlers.registration with known answers: a pair of small NIfTI files and a "network" with a known map (a
reflection and a whole-voxel shift, tests/image_files.py), whose Dice per stage, folds (every voxel: det J = -1) and
symmetry measure (phi o phi is a shift by twice the step) are computed by hand.

- RegistrationEvaluation on MONAI's SupervisedEvaluator with the metrics of bundle/configs/evaluate.json:
  metrics.csv, summary.json and the plots hold those numbers, per pair in the data's order;
- its row assembly from engine.state.metric_details (per-label columns, counts as integers, absent metrics);
- RegistrationWriter: the warped label and image on the fixed native grid are the files' voxels moved by hand."""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import unittest
import warnings
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.engines import SupervisedEvaluator
from monai.handlers import IgniteMetricHandler
from monai.transforms import Compose

from monai_avsm.data import pair_loading_transforms
from monai_avsm.engines import NativeStageLabels, PreparePairBatch, SwappedPass
from monai_avsm.handlers import RegistrationEvaluation, RegistrationWriter
from monai_avsm.metrics import DicePerLabelMetric, FoldingMetric, SymmetryMetric
from tests.image_files import KNOWN_SHAPE, KNOWN_SHIFT, KnownMapNet, dice_by_hand, known_pair, known_warped_label

NAMES = ["grey_matter", "white_matter"]
VOXELS = math.prod(KNOWN_SHAPE)
#: ln of the mean squared error of phi o phi - id in unit-cube units: a shift by 2 t (normalised), i.e. t (unit cube)
SYMMETRY = math.log((2.0 * KNOWN_SHIFT / (KNOWN_SHAPE[1] - 1)) ** 2)


def _loading():
    return pair_loading_transforms(spatial_size=KNOWN_SHAPE)


def _label(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj).astype(np.int64)


def _evaluator(items: list[dict], handler: RegistrationEvaluation, net: torch.nn.Module) -> SupervisedEvaluator:
    """The evaluation of bundle/configs/evaluate.json, built in Python."""

    def dice(stage):
        return IgniteMetricHandler(
            DicePerLabelMetric(num_classes=3),
            output_transform=lambda x: (x[f"moving_label_{stage}"], x["fixed_label_native"]),
        )

    def folds(statistic):
        return IgniteMetricHandler(
            FoldingMetric(statistic=statistic), output_transform=lambda x: (x["pred"]["map"].double(), None)
        )

    symmetry = IgniteMetricHandler(
        SymmetryMetric(margin=3), output_transform=lambda x: (x["pred"]["map"].double(), x["map_ts"].double())
    )
    return SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=DataLoader(Dataset(items, _loading()), batch_size=1),
        network=net,
        prepare_batch=PreparePairBatch(),
        postprocessing=Compose([NativeStageLabels(), SwappedPass(net)]),
        key_val_metric={"dice_avsm": dice("avsm")},
        additional_metrics={
            "dice_identity": dice("identity"),
            "dice_affine": dice("affine"),
            "folds": folds("count"),
            "fold_fraction": folds("fraction"),
            "folds_mean_abs_det": folds("mean_abs"),
            "symmetry_log_mse": symmetry,
        },
        val_handlers=[handler],
        decollate=False,
    )


class TestRegistrationEvaluation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        pair = known_pair(cls.tmp.name)
        swapped = {"moving": pair["fixed"], "fixed": pair["moving"]}
        swapped.update(moving_label=pair["fixed_label"], fixed_label=pair["moving_label"])
        cls.items = [pair, swapped]
        cls.out = os.path.join(cls.tmp.name, "eval")
        cls.handler = RegistrationEvaluation(cls.out, num_classes=3, label_names=NAMES)
        cls.net = KnownMapNet()
        cls.evaluator = _evaluator(cls.items, cls.handler, cls.net)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls.evaluator.run()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expected(self, item: dict) -> dict[str, list[float]]:
        moving, fixed = _label(item["moving_label"]), _label(item["fixed_label"])
        before = dice_by_hand(moving, fixed)
        return {"identity": before, "affine": before, "avsm": dice_by_hand(known_warped_label(moving), fixed)}

    def test_rows_hold_the_known_answers(self):
        self.assertEqual(
            sorted(os.listdir(self.out)), ["dice.png", "dice_per_label.png", "metrics.csv", "summary.json"]
        )
        with open(os.path.join(self.out, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["pair"] for r in rows], ["moving_to_fixed", "fixed_to_moving"])  # the data's order
        columns = ["pair", "moving", "fixed"]
        for stage in ("identity", "affine", "avsm"):
            columns += [f"dice_{stage}"] + [f"dice_{stage}_{n}" for n in NAMES]
        columns += ["folds", "fold_fraction", "folds_mean_abs_det", "symmetry_log_mse", "seconds", "device", "threads"]
        self.assertEqual(list(rows[0]), columns)
        for row, item in zip(rows, self.items):
            self.assertEqual((row["moving"], row["fixed"]), (item["moving"], item["fixed"]))
            for stage, dice in self.expected(item).items():
                for name, d in zip(NAMES, dice):
                    self.assertAlmostEqual(float(row[f"dice_{stage}_{name}"]), d, places=12)
                self.assertAlmostEqual(float(row[f"dice_{stage}"]), sum(dice) / 2, places=6)
            self.assertEqual(row["folds"], str(VOXELS))  # an integer: every voxel folds (det J = -1)
            self.assertEqual(float(row["fold_fraction"]), 1.0)
            self.assertAlmostEqual(float(row["folds_mean_abs_det"]), 1.0, places=6)
            self.assertAlmostEqual(float(row["symmetry_log_mse"]), SYMMETRY, places=5)
            self.assertGreater(float(row["seconds"]), 0.0)
            self.assertEqual((row["device"], int(row["threads"])), ("cpu", torch.get_num_threads()))
        # the reflection makes these random labels overlap less: the known answer is not the identity's
        self.assertNotAlmostEqual(float(rows[0]["dice_avsm"]), float(rows[0]["dice_identity"]), places=3)
        self.assertEqual(self.net.calls, 4)  # per pair the forward pass and the swapped pass

    def test_summary_and_the_engine_metrics(self):
        summary = json.load(open(os.path.join(self.out, "summary.json")))
        self.assertEqual((summary["pairs"], summary["device"]), (2, "cpu"))
        self.assertEqual(summary["folds"], {"mean": VOXELS, "sd": 0.0, "min": VOXELS, "max": VOXELS})
        both = [self.expected(item)["avsm"] for item in self.items]
        self.assertAlmostEqual(summary["dice_avsm"]["mean"], float(np.mean(both)), places=6)
        self.assertAlmostEqual(summary["symmetry_log_mse"]["mean"], SYMMETRY, places=5)
        metrics = self.evaluator.state.metrics  # MONAI's reductions of the same values
        self.assertAlmostEqual(metrics["dice_avsm"], float(np.mean(both)), places=6)
        self.assertEqual(metrics["folds"], VOXELS)
        self.assertEqual(self.evaluator.state.metric_details["dice_identity"].shape, (2, 2))
        self.assertIn("| dice_avsm |", self.handler.table())

    def test_rows_from_metric_details(self):
        handler = RegistrationEvaluation(self.tmp.name, num_classes=3, label_names=NAMES, plots=False)
        handler._pairs = [({"pair": "a_to_b"}, {"seconds": 0.5}), ({"pair": "b_to_a"}, {"seconds": 0.25})]
        details = {
            "dice_avsm": torch.tensor([[0.5, 1.0], [0.25, 0.75]], dtype=torch.float64),
            "folds": torch.tensor([[3.0], [0.0]]),
            "symmetry_log_mse": torch.tensor([[-9.5], [-10.0]]),
            "not_a_measure": torch.zeros(2, 1),
        }
        rows = handler.collect(SimpleNamespace(state=SimpleNamespace(metric_details=details)))
        self.assertEqual(
            rows[0],
            {"pair": "a_to_b", "dice_avsm": 0.75, "dice_avsm_grey_matter": 0.5, "dice_avsm_white_matter": 1.0,
             "folds": 3, "symmetry_log_mse": -9.5, "seconds": 0.5},
        )  # fmt: skip
        self.assertIsInstance(rows[1]["folds"], int)
        self.assertEqual(handler.rows, rows)
        details["folds"] = torch.tensor([[3.0]])
        with self.assertRaisesRegex(RuntimeError, "the metric 'folds' has 1 values for the 2 pairs"):
            handler.collect(SimpleNamespace(state=SimpleNamespace(metric_details=details)))
        with self.assertRaisesRegex(ValueError, "must name the 2 foreground labels"):
            RegistrationEvaluation(self.tmp.name, num_classes=3, label_names=["one"])
        with self.assertRaisesRegex(ValueError, "'num_classes' must be >= 2"):
            RegistrationEvaluation(self.tmp.name, num_classes=1)


class TestRegistrationWriter(unittest.TestCase):
    def test_writes_the_known_warp_on_the_native_grid(self):
        with tempfile.TemporaryDirectory() as tmp:
            item = known_pair(tmp, seed=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                batch = next(iter(DataLoader(Dataset([item], _loading()), batch_size=1)))
            pred = KnownMapNet()(batch["moving"].as_tensor(), batch["fixed"].as_tensor())
            writer = RegistrationWriter(os.path.join(tmp, "out"), preview=False, inverse=False)
            record = writer.write_pair(batch, pred)
            folder = writer.written[0]["folder"]
            self.assertEqual(os.path.basename(folder), "moving_to_fixed")
            label = nib.load(os.path.join(folder, "warped_label.nii.gz"))
            np.testing.assert_array_equal(np.asarray(label.dataobj), known_warped_label(_label(item["moving_label"])))
            np.testing.assert_allclose(label.affine, nib.load(item["fixed"]).affine)  # the fixed native grid
            warped = np.asarray(nib.load(os.path.join(folder, "warped.nii.gz")).dataobj)
            moving = np.asarray(nib.load(item["moving"]).dataobj)
            np.testing.assert_allclose(warped, known_warped_label(moving), atol=1e-5)  # exact voxels, linear
            self.assertEqual(record["jacobian"]["folds"], VOXELS)
            self.assertTrue(os.path.isfile(os.path.join(folder, "registration.json")))


if __name__ == "__main__":
    unittest.main()
