"""VSVFNet (networks/nets/vsvf_net.py): untrained it keeps the initial map, one entry per step in the step lists,
the run-time step count, the symmetric keys and the check of the initial map."""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from monai_avsm.functional import affine_to_map, identity_map, warp_image
from monai_avsm.networks.nets import VSVFNet
from tests.networks.nets._shared import CASES, SMALL_UNET


class TestVSVFNet(unittest.TestCase):
    @parameterized.expand(CASES)
    def test_untrained_keeps_the_initial_map(self, ndim, shape):
        net = VSVFNet(ndim, **SMALL_UNET, num_steps=2)
        g = torch.Generator().manual_seed(0)
        moving, fixed = torch.rand(2, 1, *shape, generator=g), torch.rand(2, 1, *shape, generator=g)
        out = net(moving, fixed)  # zero-initialised momentum: the identity
        torch.testing.assert_close(out["map"], identity_map(shape).expand(2, ndim, *shape), atol=1e-5, rtol=0)
        torch.testing.assert_close(out["warped"], moving, atol=1e-5, rtol=0)
        for key in ("momenta", "velocities", "maps", "warped_steps"):
            self.assertEqual(len(out[key]), 2, key)
        self.assertEqual(tuple(out["velocities"][0].shape), (2, ndim, *[(s + 1) // 2 for s in shape]))
        # an affine start is kept (linear interpolation of an affine map is exact)
        A = torch.eye(ndim).expand(2, ndim, ndim) * 0.95
        b = torch.full((2, ndim), 0.05)
        start = affine_to_map(A, b, shape)
        out = net(moving, fixed, initial_map=start)
        torch.testing.assert_close(out["map"], start, atol=1e-5, rtol=0)
        torch.testing.assert_close(out["warped"], warp_image(moving, start), atol=1e-5, rtol=0)

    def test_num_steps_at_run_time_and_symmetric(self):
        net = VSVFNet(2, **SMALL_UNET, num_steps=1)
        moving, fixed = torch.rand(1, 1, 16, 20), torch.rand(1, 1, 16, 20)
        self.assertEqual(len(net(moving, fixed)["maps"]), 1)
        net.num_steps = 3
        self.assertEqual(len(net(moving, fixed)["maps"]), 3)
        sym = net(moving, fixed, symmetric=True)
        self.assertEqual(tuple(sym["map_ts"].shape), (1, 2, 16, 20))
        self.assertEqual(len(sym["maps_ts"]), 3)

    def test_initial_map_is_checked(self):
        net = VSVFNet(2, **SMALL_UNET)
        moving = torch.rand(1, 1, 16, 20)
        with self.assertRaisesRegex(ValueError, "initial_map"):
            net(moving, moving, initial_map=identity_map((16, 18)))


if __name__ == "__main__":
    unittest.main()
