"""Learning checks on real anatomy (a slice of the T1 shipped with nibabel), a few hundred CPU iterations at most:
the affine net recovers known random affines, the vSVF net recovers a known smooth deformation."""

from __future__ import annotations

import math
import unittest

import torch
import torch.nn.functional as F
from monai.metrics import compute_dice

from monai_avsm.functional import affine_from_theta, affine_to_map, warp_image, warp_label
from monai_avsm.losses import MKLNCCLoss, MomentumRegularizationLoss
from monai_avsm.metrics import compute_folds
from monai_avsm.networks.blocks import VSVFWarp
from monai_avsm.networks.nets import MultiStepAffineNet, VSVFNet
from tests.utils import real_slice, tissue_labels

SHAPE = (64, 80)


def random_affines(n: int, g: torch.Generator):
    """Rotation up to 10 degrees, anisotropic scaling up to 10 %, translation up to 5 % of the field of view."""
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, 2, generator=g) * 2 - 1) * 0.1
    rot = torch.stack(
        [torch.stack([torch.cos(ang), -torch.sin(ang)], -1), torch.stack([torch.sin(ang), torch.cos(ang)], -1)], 1
    )
    return rot * scale.unsqueeze(1), (torch.rand(n, 2, generator=g) * 2 - 1) * 0.1


def param_error(A, b, A_true, b_true) -> torch.Tensor:
    return (((A - A_true) ** 2).sum((1, 2)) + ((b - b_true) ** 2).sum(1)).sqrt()


def dice(label: torch.Tensor, ref: torch.Tensor) -> float:
    onehot = lambda x: F.one_hot(x[:, 0], 3).movedim(-1, 1)  # noqa: E731
    return float(compute_dice(onehot(label), onehot(ref), include_background=False).mean())


class TestLearning(unittest.TestCase):
    def test_affine_net_recovers_known_affines(self):
        torch.manual_seed(0)
        image = real_slice(SHAPE)
        net = MultiStepAffineNet(2, num_steps=1)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1)
        batch = image.expand(8, 1, *SHAPE)
        for _ in range(250):
            A, b = random_affines(8, g)
            fixed = warp_image(batch, affine_to_map(A, b, SHAPE))
            loss = F.mse_loss(net(batch, fixed)["warped"], fixed)
            opt.zero_grad()
            loss.backward()
            opt.step()
        # unseen affines
        A, b = random_affines(16, torch.Generator().manual_seed(99))
        test = image.expand(16, 1, *SHAPE)
        with torch.no_grad():
            A_p, b_p = affine_from_theta(net(test, warp_image(test, affine_to_map(A, b, SHAPE)))["affine"])
        before = float(param_error(torch.eye(2).expand(16, 2, 2), torch.zeros(16, 2), A, b).mean())
        after = float(param_error(A_p, b_p, A, b).mean())
        self.assertLess(after, 0.1)  # ||A - A_true||_F and ||b - b_true|| together, normalised coordinates
        self.assertLess(after, 0.5 * before)

    def test_vsvf_net_recovers_known_smooth_deformation(self):
        torch.manual_seed(0)
        image = real_slice(SHAPE)
        label = tissue_labels(image)
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            truth = VSVFWarp(2)(torch.randn(1, 2, 32, 40, generator=g), None, image)
        fixed, fixed_label = truth["warped"], warp_label(label, truth["map"])
        net = VSVFNet(2, channels=(8, 16, 16, 32, 32), decoder_channels=(32, 16, 8), num_steps=1)
        sim, reg = MKLNCCLoss(2), MomentumRegularizationLoss(weight=0.1)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        sim_before, dice_before = float(sim(image, fixed)), dice(label, fixed_label)
        for _ in range(150):
            out = net(image, fixed)
            loss = sim(out["warped"], fixed) + reg(out["momenta"][0], out["velocities"][0])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            out = net(image, fixed)
        self.assertLess(float(sim(out["warped"], fixed)), 0.3 * sim_before)
        self.assertGreater(dice(warp_label(label, out["map"]), fixed_label), dice_before + 0.06)
        self.assertEqual(float(compute_folds(out["map"])["count"][0]), 0.0)


if __name__ == "__main__":
    unittest.main()
