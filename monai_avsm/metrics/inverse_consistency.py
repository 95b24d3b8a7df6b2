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
r"""Inverse-consistency error of a transformation and its computed inverse, in mm.

For the forward pull-back map :math:`\Phi^{-1}` (fixed grid -> moving positions) and its inverse :math:`\Phi`
(moving grid -> fixed positions, :func:`~monai_avsm.functional.inverse_map`):

.. math::
    e_{m}(y) = \big\| W_m\big(\Phi^{-1}(\Phi(y))\big) - W_m(y) \big\|_2, \qquad
    e_{f}(x) = \big\| W_f\big(\Phi(\Phi^{-1}(x))\big) - W_f(x) \big\|_2

on the interior of the moving (:math:`y`) and fixed (:math:`x`) working grids (``margin`` voxels from every face),
with :math:`W` the normalised -> world (mm) matrices of the grids. Reported as the mean and the maximum of each.

Unlike :func:`~monai_avsm.metrics.compute_symmetry_error` (the paper's measure of two *network passes* A->B and B->A,
unit-cube units, log of the MSE) this measures how well the written inverse undoes the forward transform. MONAI
has no such metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from monai_avsm.functional.jacobian import crop_margin
from monai_avsm.functional.maps import compose_maps, identity_map
from monai_avsm.functional.world import normalized_to_world
from monai_avsm.utils.validation import check_finite, check_map

__all__ = ["compute_inverse_consistency"]


def _error_mm(
    outer: torch.Tensor, inner: torch.Tensor, world, margin, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    composed = compose_maps(outer.to(dtype), inner.to(dtype))
    shape = tuple(inner.shape[2:])
    diff = composed - identity_map(shape, dtype=dtype, device=inner.device)
    lin = normalized_to_world(world, shape)[:-1, :-1].to(inner.device, dtype)
    vec = crop_margin(torch.einsum("ij,bj...->bi...", lin, diff), margin)  # the interior only
    mm = vec.square().sum(dim=1).sqrt().flatten(1)  # |.|_2 per voxel (Tensor.norm over dim 1 is 10x slower here)
    return mm.mean(dim=1, dtype=torch.float64), mm.amax(dim=1).to(torch.float64)


def compute_inverse_consistency(
    phi: torch.Tensor,
    phi_inv: torch.Tensor,
    fixed_affine=None,
    moving_affine=None,
    margin: int | Sequence[int] = 10,
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    r"""Interior mean and max of :math:`e_m` (forward after inverse) and :math:`e_f` (inverse after forward), mm.

    Args:
        phi: forward map ``(B, D, *S)`` on the fixed working grid (``MapSpace.NORMALIZED``, moving positions).
        phi_inv: inverse map ``(B, D, *S)`` on the moving working grid (fixed positions).
        fixed_affine, moving_affine: voxel -> world matrices of the working grids (default: identity, so the errors
            are in voxels).
        margin: interior margin in voxels (one value or one per axis).
        dtype: the precision of the composition (default float64). ``torch.float32`` halves the time and memory
            of a native-size report: in normalised coordinates its round-off is about 1e-7 of the field of view
            (1e-5 mm on a 200 mm grid), far below what the report is read for (the means are accumulated in
            float64 either way).

    Returns:
        ``{"forward_inverse_mean_mm", "forward_inverse_max_mm", "inverse_forward_mean_mm",
        "inverse_forward_max_mm"}``, each ``(B,)`` float64; ``forward_inverse`` is :math:`e_m` (on the moving grid).

    Raises:
        ValueError: maps of different shapes or with NaN/Inf values.
    """
    caller = "compute_inverse_consistency"
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{caller}: 'dtype' must be torch.float32 or torch.float64, got {dtype}.")
    ndim = check_map(phi, "phi", caller)
    check_map(phi_inv, "phi_inv", caller)
    if phi.shape != phi_inv.shape:
        raise ValueError(
            f"{caller}: 'phi' and 'phi_inv' must have the same shape, got {tuple(phi.shape)} and "
            f"{tuple(phi_inv.shape)}."
        )
    check_finite(phi, "phi", caller)
    check_finite(phi_inv, "phi_inv", caller)
    eye = torch.eye(ndim + 1, dtype=torch.float64)
    fixed = eye if fixed_affine is None else torch.as_tensor(fixed_affine, dtype=torch.float64)
    moving = eye if moving_affine is None else torch.as_tensor(moving_affine, dtype=torch.float64)
    fi_mean, fi_max = _error_mm(phi, phi_inv, moving, margin, dtype)
    if_mean, if_max = _error_mm(phi_inv, phi, fixed, margin, dtype)
    return {
        "forward_inverse_mean_mm": fi_mean,
        "forward_inverse_max_mm": fi_max,
        "inverse_forward_mean_mm": if_mean,
        "inverse_forward_max_mm": if_max,
    }
