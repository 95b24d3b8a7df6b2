"""AVSMNet (networks/nets/avsm_net.py): identity at initialisation, gradients and freezing, the two-channel input,
tracing and torch.export, the symmetric and affine-only forms, autocast."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import identity_affine, jacobian_determinant, theta_from_affine
from monai_avsm.networks.nets import AVSMNet
from tests.networks.nets._shared import CASES, perturb_last_layers, small_avsm


class TestUntrainedIsIdentity(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_avsm_identity(self, ndim, shape):
        net = small_avsm(ndim)
        g = torch.Generator().manual_seed(1)
        moving, fixed = torch.rand(2, 1, *shape, generator=g), torch.rand(2, 1, *shape, generator=g)
        out = net(moving, fixed)
        torch.testing.assert_close(out["warped"], moving, atol=1e-5, rtol=0)
        self.assertLess(float(out["ddf"].abs().max()), 1e-4)
        torch.testing.assert_close(jacobian_determinant(out["map"]), torch.ones(2, 1, *shape), atol=1e-4, rtol=0)
        eye = theta_from_affine(*identity_affine(2, ndim))
        torch.testing.assert_close(out["affine"], eye)
        self.assertEqual(len(out["momenta"]), 2)
        self.assertEqual(tuple(out["momenta"][0].shape), (2, ndim, *[(s + 1) // 2 for s in shape]))


class TestAVSMNet(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_gradients_and_freezing(self, ndim, shape):
        torch.manual_seed(0)
        net = small_avsm(ndim)
        perturb_last_layers(net)
        moving, fixed = torch.rand(1, 1, *shape), torch.rand(1, 1, *shape)
        out = net(moving, fixed)
        ((out["warped"] - fixed) ** 2).mean().backward()
        for name, p in net.named_parameters():
            self.assertIsNotNone(p.grad, name)
            self.assertGreater(float(p.grad.abs().sum()), 0.0, name)
        net.zero_grad(set_to_none=True)
        net.freeze_affine()
        net.train()
        self.assertFalse(net.affine_net.training)
        self.assertTrue(net.vsvf_net.training)
        out = net(moving, fixed)
        ((out["warped"] - fixed) ** 2).mean().backward()
        for name, p in net.named_parameters():
            if name.startswith("affine_net."):
                self.assertIsNone(p.grad, name)
            else:
                self.assertIsNotNone(p.grad, name)

    def test_two_channel_input_and_trace(self):
        torch.manual_seed(0)
        net = small_avsm(2, output="warped").eval()
        perturb_last_layers(net)
        x = torch.rand(1, 2, 24, 20)
        warped = net(x)
        self.assertEqual(tuple(warped.shape), (1, 1, 24, 20))
        with torch.no_grad():
            traced = torch.jit.trace(net, x, check_trace=False)
            torch.testing.assert_close(traced(x), net(x), atol=1e-5, rtol=0)
        with self.assertRaisesRegex(ValueError, "even number of channels"):
            net(torch.rand(1, 3, 24, 20))

    def test_torch_export(self):
        torch.manual_seed(0)
        net = small_avsm(2, output="warped").eval()
        perturb_last_layers(net)
        x = torch.rand(1, 2, 24, 20)
        exported = torch.export.export(net, (x,))
        torch.testing.assert_close(exported.module()(x), net(x), atol=1e-5, rtol=0)

    def test_symmetric_and_affine_only(self):
        torch.manual_seed(0)
        net = small_avsm(2)
        perturb_last_layers(net)
        moving, fixed = torch.rand(1, 1, 16, 20), torch.rand(1, 1, 16, 20)
        sym = net(moving, fixed, symmetric=True)
        torch.testing.assert_close(sym["map"], net(moving, fixed)["map"], atol=1e-5, rtol=0)
        torch.testing.assert_close(sym["map_ts"], net(fixed, moving)["map"], atol=1e-5, rtol=0)
        affine_only = AVSMNet(net.affine_net)
        out = affine_only(moving, fixed)
        torch.testing.assert_close(out["map"], out["affine_map"])
        self.assertNotIn("momenta", out)

    def test_autocast_keeps_maps_float32(self):
        net = small_avsm(3)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(torch.rand(1, 1, 8, 10, 12), torch.rand(1, 1, 8, 10, 12))
        for key in ("map", "ddf", "affine", "affine_map"):
            self.assertEqual(out[key].dtype, torch.float32, key)
        self.assertEqual(out["velocities"][0].dtype, torch.float32)


if __name__ == "__main__":
    unittest.main()
