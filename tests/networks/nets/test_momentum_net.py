"""MomentumUNet (networks/nets/momentum_net.py): a half-resolution momentum for any size, zero at initialisation."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.networks.nets import MomentumUNet
from tests.networks.nets._shared import SMALL_UNET


class TestMomentumUNet(unittest.TestCase):
    @parameterized.expand([[2, (17, 30)], [3, (9, 16, 7)], [3, (32, 32, 16)]])
    def test_half_resolution_output_any_size(self, ndim, shape):
        net = MomentumUNet(ndim, **SMALL_UNET)
        out = net(torch.rand(2, 2, *shape))
        self.assertEqual(tuple(out.shape), (2, ndim, *[(s + 1) // 2 for s in shape]))
        self.assertEqual(float(out.abs().max()), 0.0)  # zero-initialised output layer

    def test_ill_channels(self):
        with self.assertRaisesRegex(ValueError, "channels"):
            MomentumUNet(2, **SMALL_UNET)(torch.rand(1, 3, 16, 16))


if __name__ == "__main__":
    unittest.main()
