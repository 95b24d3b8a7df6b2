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
r"""Symmetry (inverse consistency) of a pair of maps A->B and B->A (paper §3, method spec §6).

.. math:: \mathrm{sym} = \ln\Big( \frac{1}{|V|} \sum_{x \in V} \big\| \Phi_{AB} \circ \Phi_{BA}(x) - x \big\|^2 \Big)

over the interior ``V`` (``margin`` voxels from every face; the paper: 10), in unit-cube coordinates (every axis
``[0, 1]``, as the authors' evaluation), i.e. half the ``MapSpace.NORMALIZED`` differences. MONAI has no such metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import MetricReduction

from monai_avsm.functional.jacobian import crop_margin
from monai_avsm.functional.maps import compose_maps, identity_map
from monai_avsm.metrics.base import PerSampleMetric
from monai_avsm.utils.validation import check_finite, check_map

__all__ = ["compute_symmetry_error", "SymmetryMetric"]


def compute_symmetry_error(
    phi_ab: torch.Tensor, phi_ba: torch.Tensor, margin: int | Sequence[int] = 10, log: bool = True
) -> torch.Tensor:
    r"""Inverse-consistency error of two pull-back maps, per batch item, ``(B,)``.

    Args:
        phi_ab: map registering A to B (on B's grid, giving positions in A), ``MapSpace.NORMALIZED``.
        phi_ba: map registering B to A (on A's grid), same spatial shape.
        margin: interior margin in voxels (one value or one per axis).
        log: return the natural log of the mean squared error (the paper's measure) instead of the error itself.
    """
    check_map(phi_ab, "phi_ab", "compute_symmetry_error")
    check_map(phi_ba, "phi_ba", "compute_symmetry_error")
    if phi_ab.shape != phi_ba.shape:
        raise ValueError(
            f"compute_symmetry_error: 'phi_ab' and 'phi_ba' must have the same shape, "
            f"got {tuple(phi_ab.shape)} and {tuple(phi_ba.shape)}."
        )
    check_finite(phi_ab, "phi_ab", "compute_symmetry_error")
    check_finite(phi_ba, "phi_ba", "compute_symmetry_error")
    composed = compose_maps(phi_ab, phi_ba)
    diff = 0.5 * (composed - identity_map(phi_ab.shape[2:], dtype=phi_ab.dtype, device=phi_ab.device))
    sq = crop_margin((diff**2).sum(dim=1, keepdim=True), margin)
    mse = sq.reshape(sq.shape[0], -1).mean(dim=1)
    return torch.log(mse) if log else mse


class SymmetryMetric(PerSampleMetric):
    """:func:`compute_symmetry_error` as a MONAI cumulative metric: ``y_pred`` = A->B maps, ``y`` = B->A maps.

    Args:
        margin, log: as in :func:`compute_symmetry_error` (paper: margin 10, log).
        reduction, get_not_nans: MONAI metric reduction.
    """

    def __init__(
        self,
        margin: int | Sequence[int] = 10,
        log: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__(reduction, get_not_nans)
        self.margin = margin
        self.log = log

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        if y is None:
            raise ValueError("SymmetryMetric: pass the B->A maps as 'y' (y_pred are the A->B maps).")
        return compute_symmetry_error(y_pred, y, self.margin, self.log).unsqueeze(1)
