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
r"""``torch.nn.functional.grid_sample`` that uses every CPU thread for a single 3D volume.

PyTorch's CPU kernel of 3D ``grid_sample`` (forward and backward) parallelises over the batch only
(``at::parallel_for(0, N, ...)`` in ``aten/src/ATen/native/GridSampler.cpp``), so warping one volume, the common case
of per-pair registration, runs on one thread whatever ``torch.get_num_threads()`` says. :func:`grid_sample` cuts the
output grid into as many slabs along its first spatial axis as there are threads and samples them as a batch (the
input broadcast by ``expand``), then puts the slabs back: every output value is computed by the same kernel
from the same numbers, so the forward result and the gradient with respect to the grid are bit-identical to
``F.grid_sample``'s; a gradient with respect to the input is the sum of the slabs' contributions (equal up to
rounding). Measured on 2 cores, 138x141x159 voxels, trilinear, a near-identity grid: forward 0.092 -> 0.041 s,
forward + backward 0.268 -> 0.150 s (``benchmarks/bench_sampling.py``, ``docs/benchmarks.md``).

2D sampling, CUDA, batches of more than one item, one thread and small grids go to ``F.grid_sample`` unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["grid_sample", "MIN_SPLIT_VOXELS"]

#: output voxels below which a single volume is not split (the per-call overhead outweighs the second thread)
MIN_SPLIT_VOXELS = 32768


def grid_sample(
    input: torch.Tensor,
    grid: torch.Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool = True,
) -> torch.Tensor:
    r"""``F.grid_sample(input, grid, mode, padding_mode, align_corners)`` with a single 3D CPU volume sampled on all
    threads (module docstring).

    Args:
        input: ``(N, C, D_in, H_in, W_in)`` (or 2D ``(N, C, H_in, W_in)``).
        grid: ``(N, D, H, W, 3)`` sampling locations in ``[-1, 1]`` (or 2D ``(N, H, W, 2)``).
        mode, padding_mode, align_corners: as ``F.grid_sample`` (the project's maps use ``align_corners=True``).

    Returns:
        ``(N, C, D, H, W)``, as ``F.grid_sample``.
    """
    threads = torch.get_num_threads()
    split = (
        input.ndim == 5
        and grid.ndim == 5
        and input.shape[0] == 1
        and grid.shape[0] == 1
        and input.device.type == "cpu"
        and grid.device.type == "cpu"
        and threads > 1
        and grid.shape[1] >= 2
        and grid.shape[1] * grid.shape[2] * grid.shape[3] >= MIN_SPLIT_VOXELS
    )
    if not split:
        return F.grid_sample(input, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    depth = grid.shape[1]
    parts = min(threads, depth)
    slab = -(-depth // parts)
    parts = -(-depth // slab)  # no empty slab
    pad = parts * slab - depth
    g = grid
    if pad:  # the last slab is filled up with copies of the last plane, whose values are dropped below
        g = torch.cat([grid, grid[:, -1:].expand(1, pad, *grid.shape[2:])], dim=1)
    g = g.reshape(parts, slab, *grid.shape[2:])
    out = F.grid_sample(
        input.expand(parts, *input.shape[1:]), g, mode=mode, padding_mode=padding_mode, align_corners=align_corners
    )  # (parts, C, slab, H, W)
    out = out.transpose(0, 1).reshape(1, input.shape[1], parts * slab, *out.shape[3:])
    return out[:, :, :depth] if pad else out
