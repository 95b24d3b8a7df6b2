"""monai_avsm.engines.evaluation on a known pair: the moving label warped onto the fixed native grid at every stage
(by hand: the identity, the identity affine part, a reflection with a whole-voxel shift), the evaluator
postprocessing that puts these labels and the swapped pair's map into the output."""

from __future__ import annotations

import tempfile
import unittest
import warnings

import nibabel as nib
import numpy as np
import torch
from monai.data import DataLoader, Dataset

from monai_avsm.data import pair_loading_transforms
from monai_avsm.engines import STAGES, NativeResampler, NativeStageLabels, SwappedPass, pair_geometry, stage_labels
from monai_avsm.metrics import stage_dice
from tests.image_files import KNOWN_SHAPE, KnownMapNet, dice_by_hand, known_map, known_pair, known_warped_label


def load_batch(item: dict) -> dict:
    """The item through the bundle's loading (working grid = the files' grid), collated as a batch of one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loading = pair_loading_transforms(spatial_size=KNOWN_SHAPE)
        return next(iter(DataLoader(Dataset([item], loading), batch_size=1)))


def label_file(path: str) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj).astype(np.int64)


class TestEvaluationInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.item = known_pair(cls.tmp.name)
        cls.batch = load_batch(cls.item)
        cls.moving_label, cls.fixed_label = label_file(cls.item["moving_label"]), label_file(cls.item["fixed_label"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def pred(self) -> dict:
        return KnownMapNet()(self.batch["moving"].as_tensor(), self.batch["fixed"].as_tensor())

    def test_stage_labels_and_their_dice(self):
        r = NativeResampler(pair_geometry(self.batch, 0))
        labels = stage_labels(r, self.pred(), 0)
        self.assertEqual(tuple(labels), STAGES)
        expected = {
            "identity": self.moving_label,
            "affine": self.moving_label,
            "avsm": known_warped_label(self.moving_label),
        }
        for stage, label in labels.items():
            self.assertEqual(tuple(label.shape), (1, *KNOWN_SHAPE), stage)
            np.testing.assert_array_equal(label[0].numpy(), expected[stage], err_msg=stage)
        dice = stage_dice(labels, torch.as_tensor(self.fixed_label), 3)
        for stage in STAGES:
            np.testing.assert_allclose(dice[stage], dice_by_hand(expected[stage], self.fixed_label), rtol=1e-12)

    def test_postprocessing_adds_labels_and_the_swapped_map(self):
        net = KnownMapNet()
        pred = net(self.batch["moving"].as_tensor(), self.batch["fixed"].as_tensor())
        data = {**self.batch, "image": self.batch["moving"], "label": self.batch["fixed"], "pred": pred}
        out = SwappedPass(net)(NativeStageLabels()(data))
        for stage in STAGES:
            self.assertEqual(len(out[f"moving_label_{stage}"]), 1)
        np.testing.assert_array_equal(out["moving_label_avsm"][0][0].numpy(), known_warped_label(self.moving_label))
        np.testing.assert_array_equal(out["fixed_label_native"][0][0].numpy(), self.fixed_label)
        self.assertEqual(net.calls, 2)  # the swapped pass ran the network once more
        torch.testing.assert_close(out["map_ts"], known_map())
        self.assertFalse(out["map_ts"].requires_grad)
        self.assertIs(out["pred"], pred)  # the input keys are kept

    def test_pair_without_labels_is_a_clear_error(self):
        batch = load_batch({k: self.item[k] for k in ("moving", "fixed")})
        with self.assertRaisesRegex(KeyError, "pair 'moving_to_fixed' needs 'moving_label' and 'fixed_label' files"):
            NativeStageLabels()({**batch, "pred": self.pred()})


if __name__ == "__main__":
    unittest.main()
