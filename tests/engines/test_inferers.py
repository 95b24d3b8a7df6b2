# Copyright (c) 2026 The monai_avsm authors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""AutocastInferer (monai_avsm.engines.inferers): off it is the network's own call; on, the convolutions run in
bfloat16 on the CPU and the outputs come back in float32, close to the float32 pass, and a training step through it
has finite gradients; train.json wires it to its ``bf16`` flag."""

from __future__ import annotations

import os
import unittest

import torch
from parameterized import parameterized

from monai_avsm.engines import AutocastInferer
from monai_avsm.functional.maps import identity_map
from monai_avsm.losses import MKLNCCLoss
from tests.networks.nets._shared import CASES, perturb_last_layers, small_avsm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, *shape, generator=g)
    return torch.cat([x, x.roll(1, dims=2)], dim=1)


class TestAutocastInferer(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_disabled_is_the_network(self, ndim, shape):
        torch.manual_seed(0)
        net = small_avsm(ndim).eval()
        perturb_last_layers(net)
        x = _pair(shape)
        with torch.no_grad():
            ref = net(x)
            out = AutocastInferer(enabled=False)(x, net)
        for key in ("map", "affine", "warped"):
            torch.testing.assert_close(out[key], ref[key], rtol=0, atol=0)

    @parameterized.expand(CASES)
    def test_bf16_outputs_float32_close_to_fp32(self, ndim, shape):
        torch.manual_seed(0)
        net = small_avsm(ndim).eval()
        perturb_last_layers(net, scale=0.2)
        x = _pair(shape)
        with torch.no_grad():
            ref = net(x)
            out = AutocastInferer()(x, net)
        gap = float((ref["map"] - out["map"]).abs().max())
        displacement = float((ref["map"] - identity_map(shape)).abs().max())
        for key in ("map", "affine", "warped"):
            self.assertEqual(out[key].dtype, torch.float32, key)
        self.assertTrue(all(v.dtype == torch.float32 for v in out["velocities"]))
        self.assertGreater(displacement, 0.5)  # a map far from the identity (normalised units)
        self.assertGreater(gap, 0.0)  # the convolutions did run in bfloat16
        self.assertLess(gap, 0.02)  # under 1 % of the field of view (measured: 0.004 in 2D, 0.007 in 3D)
        torch.testing.assert_close(out["affine"], ref["affine"], rtol=0, atol=2e-2)

    def test_training_step_has_finite_gradients(self):
        torch.manual_seed(0)
        net = small_avsm(3).train()
        perturb_last_layers(net)
        x = _pair((11, 14, 9))
        out = AutocastInferer()(x, net)
        loss = MKLNCCLoss(3, kernel_sizes=[3], kernel_weights=[1.0])(out["warped"], x[:, 1:])
        self.assertEqual(loss.dtype, torch.float32)
        loss.backward()
        grads = [p.grad for p in net.parameters() if p.requires_grad and p.grad is not None]
        self.assertTrue(grads)
        self.assertTrue(all(bool(torch.isfinite(g).all()) for g in grads))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "AutocastInferer: 'dtype'"):
            AutocastInferer(dtype="float64")
        with self.assertRaisesRegex(ValueError, "float16 autocast is for CUDA"):
            AutocastInferer(dtype="float16")(_pair((21, 26)), small_avsm(2).eval())
        # the bundle's command line gives "--bf16 false" as the string "false"
        self.assertFalse(AutocastInferer(enabled="false").enabled)
        self.assertTrue(AutocastInferer(enabled="True").enabled)
        with self.assertRaisesRegex(ValueError, "AutocastInferer: 'enabled' must be true or false"):
            AutocastInferer(enabled="yes")

    def test_train_config_wires_the_bf16_flag(self):
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(os.path.join(ROOT, "bundle", "configs", "train.json"))
        self.assertIs(parser["bf16"], False)
        inferer = parser.get_parsed_content("train#inferer")
        self.assertIsInstance(inferer, AutocastInferer)
        self.assertFalse(inferer.enabled)
        parser["bf16"] = True
        self.assertTrue(parser.get_parsed_content("train#inferer", lazy=False).enabled)


if __name__ == "__main__":
    unittest.main()
