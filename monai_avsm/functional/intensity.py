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
"""Intensity scaling of images to [0, 1] by robust percentiles (the paper's 0.1/99.9 percentile normalisation, §3),
the one implementation shared by the data loading, the synthetic training pairs and the accurate path."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["percentile_scale"]

#: MONAI's percentile() switches from torch.quantile to numpy above this many elements (torch.quantile's limit)
_QUANTILE_LIMIT = 16_000_000


def _quantile(flat: torch.Tensor, q: float) -> float:
    """``torch.quantile(flat, q)`` (linear interpolation between the order statistics at ``q (n - 1)``) by two
    selections (``kthvalue``, O(n)) instead of a full sort: the same value, about twice as fast on 2.4 M voxels."""
    n = flat.numel()
    pos = torch.tensor(q, dtype=flat.dtype) * (n - 1)  # in the data's dtype, as torch.quantile
    k = int(torch.floor(pos))
    frac = pos - k
    low = torch.kthvalue(flat, k + 1).values
    if float(frac) > 0 and k + 1 < n:
        high = torch.kthvalue(flat, k + 2).values
        low = torch.lerp(low, high, frac)
    return float(low)


def percentile_scale(data: torch.Tensor, lower: float = 0.1, upper: float = 99.9) -> torch.Tensor:
    r""":math:`\mathrm{clip}((x - p_{lower}) / (p_{upper} - p_{lower}), 0, 1)` over all voxels (float32), as MONAI's
    ``ScaleIntensityRangePercentiles(lower, upper, b_min=0, b_max=1, clip=True)``; a constant image gives zeros."""
    x = data.to(torch.float32)
    if x.numel() <= _QUANTILE_LIMIT:
        lo, hi = (_quantile(x.reshape(-1), q / 100.0) for q in (lower, upper))
    else:
        lo, hi = (float(v) for v in np.percentile(x.numpy().reshape(-1), [lower, upper]))
    if hi == lo:
        return x - lo
    return ((x - lo) / (hi - lo)).clamp_(0.0, 1.0)
