"""AVSMLoss: the stage losses of eq. 6 and eq. 11-12 equal the sum of their parts on an AVSMNet output."""

from __future__ import annotations

import math
import unittest

import torch
from monai.losses import GlobalMutualInformationLoss

from monai_avsm.functional import affine_from_theta
from monai_avsm.losses import (
    AffineRegularizationLoss,
    AffineSymmetryLoss,
    AVSMLoss,
    MapSymmetryLoss,
    MKLNCCLoss,
    MomentumRegularizationLoss,
)
from monai_avsm.networks.nets import AVSMNet, MultiStepAffineNet, VSVFNet
from tests.networks.nets._shared import SMALL_AFFINE, SMALL_UNET, perturb_last_layers


def symmetric_output(seed: int = 0):
    torch.manual_seed(seed)
    net = AVSMNet(MultiStepAffineNet(2, **SMALL_AFFINE), VSVFNet(2, **SMALL_UNET))
    perturb_last_layers(net, seed=seed, scale=0.2)
    moving, fixed = torch.rand(2, 1, 20, 24), torch.rand(2, 1, 20, 24)
    return net, net(moving, fixed, symmetric=True), moving, fixed


class TestAVSMLoss(unittest.TestCase):
    def test_vsvf_stage_is_sum_of_parts(self):
        net, out, moving, fixed = symmetric_output()
        loss = AVSMLoss("vsvf", spatial_dims=2, momentum_reg_weight=10.0, map_sym_weight=500.0)
        total = loss(out)
        sim, reg, sym = MKLNCCLoss(2), MomentumRegularizationLoss(), MapSymmetryLoss()
        expected = {"similarity": 0.0, "momentum_reg": 0.0, "map_sym": 0.0}
        for k in range(2):
            expected["similarity"] += float(sim(out["warped_steps"][k], fixed) + sim(out["warped_steps_ts"][k], moving))
            expected["momentum_reg"] += 10.0 * float(
                reg(out["momenta"][k], out["velocities"][k]) + reg(out["momenta_ts"][k], out["velocities_ts"][k])
            )
            expected["map_sym"] += 500.0 * float(sym(out["maps"][k], out["maps_ts"][k]))
        for key, value in expected.items():
            self.assertTrue(math.isclose(loss.parts[key], value, rel_tol=1e-5), (key, loss.parts[key], value))
            self.assertGreater(value, 0.0)
        self.assertTrue(math.isclose(float(total.detach()), sum(expected.values()), rel_tol=1e-5))
        self.assertEqual(loss.parts["affine_reg"], 0.0)
        total.backward()
        self.assertTrue(all(p.grad is not None for p in net.vsvf_net.parameters()))

    def test_affine_stage_is_sum_of_parts(self):
        _, out, moving, fixed = symmetric_output(seed=1)
        loss = AVSMLoss("affine", spatial_dims=2, affine_reg_weight=2.0, affine_sym_weight=10.0)
        total = loss(out)
        sim = MKLNCCLoss(2)
        A, b = affine_from_theta(out["affine"])
        A_ts, b_ts = affine_from_theta(out["affine_ts"])
        expected = (
            sim(out["affine_warped"], fixed)
            + sim(out["affine_warped_ts"], moving)
            + 2.0 * (AffineRegularizationLoss()(A, b) + AffineRegularizationLoss()(A_ts, b_ts))
            + 10.0 * AffineSymmetryLoss()(A, b, A_ts, b_ts)
        )
        torch.testing.assert_close(total, expected)
        loss.affine_reg_weight = 0.0  # what the eq. 13 handler does every epoch
        self.assertLess(float(loss(out)), float(total))

    def test_one_direction_and_other_similarity(self):
        torch.manual_seed(0)
        net = AVSMNet(MultiStepAffineNet(2, **SMALL_AFFINE), VSVFNet(2, **SMALL_UNET))
        moving, fixed = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
        out = net(moving, fixed)
        mi = AVSMLoss("vsvf", similarity=GlobalMutualInformationLoss())
        value = mi(out)
        self.assertTrue(torch.isfinite(value))
        self.assertEqual(mi.parts["map_sym"], 0.0)
        # identical images through an untrained (identity) network: mk-LNCC part is 0
        same = net(fixed, fixed)
        self.assertAlmostEqual(float(AVSMLoss("vsvf", spatial_dims=2)(same)), 0.0, places=4)

    def test_ill_inputs(self):
        with self.assertRaisesRegex(TypeError, "dict"):
            AVSMLoss()(torch.zeros(1))
        with self.assertRaisesRegex(KeyError, "maps"):
            AVSMLoss(spatial_dims=2)({"fixed": torch.zeros(1, 1, 8, 8)})
        with self.assertRaisesRegex(ValueError, "vsvf"):
            AVSMLoss(stage="both")


if __name__ == "__main__":
    unittest.main()
