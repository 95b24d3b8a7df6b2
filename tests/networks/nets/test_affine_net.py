"""MultiStepAffineNet / AffineNet (networks/nets/affine_net.py): composition of the step updates, run-time step
counts, single-step checkpoints, half-resolution steps, the symmetric forward, ill inputs."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import (
    affine_from_theta,
    affine_to_map,
    identity_affine,
    theta_from_affine,
    update_affine,
    warp_image,
)
from monai_avsm.networks.nets import AffineNet, MultiStepAffineNet
from tests.networks.nets._shared import CASES, SMALL_AFFINE, perturb_last_layers


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


if __name__ == "__main__":
    unittest.main()
