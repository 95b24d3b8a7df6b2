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
"""MKLNCCLoss as a drop-in loss for MONAI's own registration parts: LocalNet + Warp + BendingEnergyLoss trained on a
real 2D MR slice (nibabel's bundled T1 test volume, offline); and agreement with MONAI's LNCC where both apply."""

from __future__ import annotations

import importlib.util
import os
import unittest
import warnings

import torch
import torch.nn.functional as F
from monai.losses import BendingEnergyLoss, LocalNormalizedCrossCorrelationLoss
from monai.metrics import compute_dice
from monai.networks.blocks import Warp
from monai.networks.nets import LocalNet

from monai_avsm.functional.lncc import lncc_squared
from monai_avsm.losses import MKLNCCLoss


def _nibabel_t1_path() -> str | None:
    spec = importlib.util.find_spec("nibabel")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "tests", "data", "anatomical.nii")
    return path if os.path.exists(path) else None


T1_PATH = _nibabel_t1_path()


@unittest.skipUnless(T1_PATH is not None, "nibabel's bundled anatomical.nii is not available")
class TestMKLNCCLossInMonaiRegistration(unittest.TestCase):
    def setUp(self):
        import nibabel as nib

        torch.manual_seed(0)
        volume = torch.as_tensor(nib.load(T1_PATH).get_fdata(), dtype=torch.float32)  # 33 x 41 x 25, 2 mm, T1
        fixed = F.interpolate(volume[None, None, :, :, 12], size=(64, 64), mode="bilinear", align_corners=True)
        lo, hi = torch.quantile(fixed, 0.01), torch.quantile(fixed, 0.99)
        self.fixed = ((fixed - lo) / (hi - lo)).clamp(0, 1)
        # a known smooth deformation: a random 4x4 displacement grid, bicubic up-sampled, up to about 6 voxels
        coarse = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(0))
        true_ddf = 3.0 * F.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.warp = Warp(mode="bilinear", padding_mode="border")
            self.warp_label = Warp(mode="nearest", padding_mode="border")
        self.moving = self.warp(self.fixed, true_ddf)
        threshold = torch.quantile(self.fixed, 0.6)  # bright tissue, a label both images share
        self.fixed_label = (self.fixed > threshold).float()
        self.moving_label = (self.moving > threshold).float()

    def test_training_decreases_loss_and_improves_dice(self):
        net = LocalNet(
            spatial_dims=2,
            in_channels=2,
            out_channels=2,
            num_channel_initial=8,
            extract_levels=(0, 1, 2),
            out_activation=None,
            out_kernel_initializer="zeros",  # identity at start, as MONAI's registration tutorials
        )
        image_loss = MKLNCCLoss(spatial_dims=2)  # the paper's windows for 64x64: k = 16 / 32, stride 4 / 8, dil. 2
        regulariser = BendingEnergyLoss()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        pair = torch.cat([self.moving, self.fixed], dim=1)
        dice_before = compute_dice(self.moving_label, self.fixed_label, include_background=True).item()
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's indexing deprecation warning inside BendingEnergyLoss
            for _ in range(40):
                optimizer.zero_grad()
                ddf = net(pair)
                loss = image_loss(self.warp(self.moving, ddf), self.fixed)
                (loss + regulariser(ddf)).backward()
                optimizer.step()
                losses.append(loss.item())
            with torch.no_grad():
                ddf = net(pair)
                warped_label = self.warp_label(self.moving_label, ddf)
        dice_after = compute_dice(warped_label, self.fixed_label, include_background=True).item()
        self.assertTrue(all(torch.isfinite(torch.tensor(losses))))
        self.assertLess(min(losses[-5:]), 0.5 * losses[0])
        self.assertGreater(dice_after, dice_before + 0.08, (dice_before, dice_after))


class TestAgreementWithMonaiLNCC(unittest.TestCase):
    def test_interior_windows_match_monai(self):
        g = torch.Generator().manual_seed(0)
        p = torch.rand(2, 1, 12, 13, 11, dtype=torch.float64, generator=g)
        t = 0.5 * p + torch.rand(p.shape, dtype=torch.float64, generator=g)
        k, r = 5, 2
        monai_map = -LocalNormalizedCrossCorrelationLoss(3, kernel_size=k, reduction="none", smooth_dr=1e-12)(p, t)
        ours = lncc_squared(p, t, k, smooth_dr=1e-12)  # valid windows = MONAI's interior voxels
        torch.testing.assert_close(ours, monai_map[..., r:-r, r:-r, r:-r], rtol=1e-9, atol=1e-9)

    def test_same_call_signature_as_monai_loss(self):
        p, t = torch.rand(2, 1, 16, 16, 16), torch.rand(2, 1, 16, 16, 16)
        for loss_fn in (LocalNormalizedCrossCorrelationLoss(3, kernel_size=5), MKLNCCLoss(3, kernel_sizes=5)):
            self.assertEqual(loss_fn(p, t).shape, ())
            self.assertIsInstance(loss_fn, torch.nn.modules.loss._Loss)


if __name__ == "__main__":
    unittest.main()
