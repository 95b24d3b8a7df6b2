"""Every public loss, network, metric and transform builds from a MONAI bundle config by dotted ``_target_``."""

from __future__ import annotations

import unittest
import warnings

import torch
from monai.bundle import ConfigParser
from parameterized import parameterized

TARGETS = [
    ["monai_avsm.losses.MKLNCCLoss", {"spatial_dims": 2}],
    ["monai_avsm.losses.GlobalNCCLoss", {}],
    ["monai_avsm.losses.AffineRegularizationLoss", {"weight": 2.0}],
    ["monai_avsm.losses.AffineRegularizationWeight", {"c_ar": 10.0, "k_ar": 4.0}],
    ["monai_avsm.losses.AffineSymmetryLoss", {"weight": 10.0}],
    ["monai_avsm.losses.MomentumRegularizationLoss", {"weight": 10.0, "clamp": True}],
    ["monai_avsm.losses.MapSymmetryLoss", {"weight": 500.0}],
    ["monai_avsm.losses.AVSMLoss", {"stage": "affine", "spatial_dims": 2, "affine_sym_weight": 10.0}],
    ["monai_avsm.metrics.FoldingMetric", {"margin": 2}],
    ["monai_avsm.metrics.SymmetryMetric", {"margin": 2}],
    ["monai_avsm.metrics.DicePerLabelMetric", {"num_classes": 3}],
    ["monai_avsm.networks.blocks.VSVFWarp", {"spatial_dims": 2, "boundary": "periodic"}],
    ["monai_avsm.transforms.RandSyntheticDeformationd", {"image_key": "image", "label_key": None}],
    ["monai_avsm.transforms.RandSwapPaird", {"prob": 0.5}],
    ["monai_avsm.transforms.RandLabelMapPaird", {"rotation_deg": 30.0, "longitudinal_prob": 0.5}],
    ["monai_avsm.transforms.RandSynthIntensityd", {"real_prob": 0.2, "same_contrast": True}],
    ["monai_avsm.transforms.RandIntensityCorruption", {"noise_type": "rician"}],
    [
        "monai_avsm.data.SyntheticPairDataset",
        {"sources": "$[{'name': 'x', 'label': torch.zeros(1, 8, 8, 8, dtype=torch.int64)}]", "num_pairs": 4},
    ],
    ["monai_avsm.transforms.CheckPaird", {"stage": "files"}],
    ["monai_avsm.transforms.LoadPairImaged", {"keys": ["moving", "fixed"], "image_only": True}],
    ["monai_avsm.transforms.StoreGeometryd", {"keys": "fixed"}],
    ["monai_avsm.transforms.SpacingEachd", {"keys": ["fixed"], "modes": ["bilinear"], "pixdim": 2.0}],
]


class TestConfigTargets(unittest.TestCase):
    @parameterized.expand(TARGETS)
    def test_builds(self, target, kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = ConfigParser({"x": {"_target_": target, **kwargs}}).get_parsed_content("x")
        self.assertEqual(type(obj).__name__, target.split(".")[-1])
        self.assertTrue(type(obj).__module__.startswith("monai_avsm."))

    def test_nested_network_config(self):
        config = {
            "network_def": {
                "_target_": "monai_avsm.networks.nets.AVSMNet",
                "affine_net": {
                    "_target_": "monai_avsm.networks.nets.MultiStepAffineNet",
                    "spatial_dims": 2,
                    "num_steps": 2,
                },
                "vsvf_net": {
                    "_target_": "monai_avsm.networks.nets.VSVFNet",
                    "spatial_dims": 2,
                    "channels": [4, 4, 8, 8, 8],
                    "decoder_channels": [8, 4, 4],
                },
                "output": "warped",
            }
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = ConfigParser(config).get_parsed_content("network_def")
        x = torch.rand(1, 2, 20, 24)
        out = net(x)  # what MONAI's verify_net_in_out does: one 2-channel tensor in, the warped image out
        self.assertEqual(tuple(out.shape), (1, 1, 20, 24))
        torch.testing.assert_close(out, x[:, :1], atol=1e-5, rtol=0)


if __name__ == "__main__":
    unittest.main()
