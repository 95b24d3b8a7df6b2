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
"""``monai_avsm.functional.grid_sample``: a single 3D CPU volume sampled in slabs (one per thread) gives exactly
``F.grid_sample``'s values and grid gradient."""

from __future__ import annotations

import unittest
from unittest import mock

import torch
import torch.nn.functional as F

import monai_avsm.functional.sampling as sampling
from monai_avsm.functional import grid_sample, identity_map, map_to_grid, warp_image


class _Threads:
    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def _case(depth: int, dtype=torch.float64, channels: int = 2):
    g = torch.Generator().manual_seed(depth)
    image = torch.rand(1, channels, 9, 11, 7, generator=g, dtype=dtype)
    grid = (torch.rand(1, depth, 12, 10, 3, generator=g, dtype=dtype) * 2.4 - 1.2).requires_grad_(True)
    return image, grid


class TestGridSample(unittest.TestCase):
    def setUp(self):
        patcher = mock.patch.object(sampling, "MIN_SPLIT_VOXELS", 1)  # split the small test volumes too
        patcher.start()
        self.addCleanup(patcher.stop)

    def _compare(self, depth: int, threads: int, mode: str, padding: str, dtype=torch.float64):
        image, grid = _case(depth, dtype)
        ref_grid = grid.detach().clone().requires_grad_(True)
        ref_image = image.clone().requires_grad_(True)
        image = image.clone().requires_grad_(True)
        with _Threads(threads):
            out = grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=True)
            ref = F.grid_sample(ref_image, ref_grid, mode=mode, padding_mode=padding, align_corners=True)
            weight = torch.rand(out.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
            (out * weight).sum().backward()
            (ref * weight).sum().backward()
        self.assertEqual(out.shape, ref.shape)
        self.assertTrue(torch.equal(out, ref), f"values differ: depth {depth}, {threads} threads, {mode}, {padding}")
        self.assertTrue(torch.equal(grid.grad, ref_grid.grad), "the grid gradient differs")
        tol = 1e-12 if dtype == torch.float64 else 1e-5  # the slabs' input gradients are summed: rounding only
        torch.testing.assert_close(image.grad, ref_image.grad, rtol=tol, atol=tol)

    def test_equal_to_torch(self):
        for depth in (8, 7, 2, 13):  # even, odd (last slab filled up), as many planes as threads, more threads
            for threads in (2, 3):
                for mode, padding in (("bilinear", "zeros"), ("bilinear", "border"), ("nearest", "zeros")):
                    self._compare(depth, threads, mode, padding)

    def test_float32_equal(self):
        self._compare(9, 2, "bilinear", "zeros", dtype=torch.float32)

    def test_split_only_where_it_helps(self):
        """One thread, a batch, 2D and a single output plane go to torch unchanged (one call, same arguments)."""
        image, grid = _case(6)
        calls = []
        real = F.grid_sample

        def spy(inp, grd, **kw):
            calls.append(tuple(inp.shape))
            return real(inp, grd, **kw)

        with mock.patch.object(sampling.F, "grid_sample", spy):
            with _Threads(2):
                grid_sample(image, grid.detach())
                self.assertEqual(calls[-1][0], 2)  # the split: a batch of two slabs
                grid_sample(image.expand(2, -1, -1, -1, -1), grid.detach().expand(2, -1, -1, -1, -1))
                self.assertEqual(calls[-1][0], 2)
                grid_sample(image[:, :, 0], grid.detach()[:, 0, :, :, :2])
                self.assertEqual(calls[-1][0], 1)
                grid_sample(image, grid.detach()[:, :1])
                self.assertEqual(calls[-1][0], 1)
            with _Threads(1):
                grid_sample(image, grid.detach())
                self.assertEqual(calls[-1][0], 1)

    def test_warp_image_uses_it(self):
        """``warp_image`` of one volume: the identity map returns the image (the split changes nothing)."""
        image = torch.rand(1, 1, 10, 12, 9, dtype=torch.float64)
        with _Threads(2):
            out = warp_image(image, identity_map((10, 12, 9), dtype=torch.float64))
            ref = F.grid_sample(image, map_to_grid(identity_map((10, 12, 9), dtype=torch.float64)), align_corners=True)
        self.assertTrue(torch.equal(out, ref))
        torch.testing.assert_close(out, image, rtol=0, atol=1e-12)


if __name__ == "__main__":
    unittest.main()
