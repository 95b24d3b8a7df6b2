"""AffineNet / MultiStepAffineNet / MomentumUNet / VSVFNet / AVSMNet: identity at initialisation, composition,
run-time step counts, checkpoint loading, gradients, freezing, autocast, tracing (2D and 3D, odd sizes)."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import (
    affine_from_theta,
    affine_to_map,
    identity_affine,
    jacobian_determinant,
    theta_from_affine,
    update_affine,
    warp_image,
)
from monai_avsm.networks.nets import AffineNet, AVSMNet, MomentumUNet, MultiStepAffineNet, VSVFNet

SMALL_UNET = {"channels": (4, 4, 8, 8, 8), "decoder_channels": (8, 4, 4)}
SMALL_AFFINE = {"channels": (4, 8, 8), "hidden": 8}
CASES = [[2, (21, 26)], [3, (11, 14, 9)]]


def perturb_last_layers(net: torch.nn.Module, seed: int = 0, scale: float = 0.05) -> None:
    """Give the zero-initialised output layers small random weights (as after some training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, AffineNet):
                for p in module.head[-1].parameters():
                    p.copy_(scale * torch.randn(p.shape, generator=g))
            if isinstance(module, MomentumUNet):
                for p in module.out.conv.parameters():
                    p.copy_(scale * torch.randn(p.shape, generator=g))


def small_avsm(ndim: int, **kwargs) -> AVSMNet:
    return AVSMNet(MultiStepAffineNet(ndim, **SMALL_AFFINE), VSVFNet(ndim, **SMALL_UNET), **kwargs)


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


class TestMultiStepAffineNet(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_composition_of_step_updates(self, ndim, shape):
        """affine_steps[t] = update_affine(affine_steps[t-1], net(I_0 o phi_{t-1}, I_1)); for the pull-back order
        A_T is the product A~_1 A~_2 ... A~_T of the per-step matrices."""
        torch.manual_seed(0)
        net = MultiStepAffineNet(ndim, **SMALL_AFFINE, num_steps=3, input_scale=1.0)
        perturb_last_layers(net)
        moving, fixed = torch.rand(1, 1, *shape), torch.rand(1, 1, *shape)
        out = net(moving, fixed)
        A, b = identity_affine(1, ndim)
        product = torch.eye(ndim).unsqueeze(0)
        for t in range(3):
            warped = warp_image(moving, affine_to_map(A, b, shape)) if t else moving
            upd = net.net(warped, fixed)
            A, b = update_affine((A, b), upd)
            product = product @ upd[0]
            torch.testing.assert_close(out["affine_steps"][:, t], theta_from_affine(A, b))
        torch.testing.assert_close(affine_from_theta(out["affine"])[0], product)
        torch.testing.assert_close(out["map"], affine_to_map(A, b, shape))
        self.assertGreater(float((A - torch.eye(ndim)).abs().max()), 1e-3)  # the test is not trivially at identity

    def test_num_steps_at_test_time_and_single_step_checkpoint(self):
        torch.manual_seed(0)
        single = MultiStepAffineNet(2, **SMALL_AFFINE, num_steps=1)
        perturb_last_layers(single, seed=3)
        multi = MultiStepAffineNet(2, **SMALL_AFFINE, num_steps=7)
        multi.load_state_dict(single.state_dict(), strict=True)
        moving, fixed = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
        out7 = multi(moving, fixed)
        self.assertEqual(tuple(out7["affine_steps"].shape), (1, 7, 2, 3))
        torch.testing.assert_close(out7["affine_steps"][:, 0], single(moving, fixed)["affine"])
        multi.num_steps = 3
        torch.testing.assert_close(multi(moving, fixed)["affine"], out7["affine_steps"][:, 2])
        # a bare AffineNet state dict loads as the step network
        step = AffineNet(2, **SMALL_AFFINE)
        multi.net.load_state_dict(step.state_dict(), strict=True)
        with self.assertRaisesRegex(ValueError, "num_steps"):
            multi.num_steps = 0

    def test_half_resolution_steps_give_full_resolution_map(self):
        torch.manual_seed(0)
        net = MultiStepAffineNet(3, **SMALL_AFFINE, num_steps=2, input_scale=0.5)
        perturb_last_layers(net)
        moving, fixed = torch.rand(1, 1, 13, 16, 11), torch.rand(1, 1, 13, 16, 11)
        out = net(moving, fixed)
        A, b = affine_from_theta(out["affine"])
        torch.testing.assert_close(out["map"], affine_to_map(A, b, (13, 16, 11)))
        torch.testing.assert_close(out["warped"], warp_image(moving, out["map"]))
        with self.assertRaisesRegex(ValueError, "input_scale"):
            MultiStepAffineNet(3, input_scale=0.0)

    def test_symmetric_forward(self):
        torch.manual_seed(0)
        net = MultiStepAffineNet(2, **SMALL_AFFINE, num_steps=2)
        perturb_last_layers(net)
        moving, fixed = torch.rand(2, 1, 16, 18), torch.rand(2, 1, 16, 18)
        out = net(moving, fixed, symmetric=True)
        torch.testing.assert_close(out["affine"], net(moving, fixed)["affine"])
        torch.testing.assert_close(out["affine_ts"], net(fixed, moving)["affine"])

    def test_ill_inputs(self):
        net = MultiStepAffineNet(3, **SMALL_AFFINE)
        with self.assertRaisesRegex(ValueError, "spatial dims"):
            net(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
        with self.assertRaisesRegex(ValueError, "same spatial shape"):
            net(torch.rand(1, 1, 8, 8, 8), torch.rand(1, 1, 8, 8, 9))


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
