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
r"""Synthetic deformations with a known answer: a small affine in physical space followed by a smooth stationary
velocity field, as normalised pull-back maps and their inverses (method spec §1, §3).

The map of a synthetic pair is

.. math:: \phi = \phi_{aff} \circ \psi_{-1}, \qquad \phi^{-1} = \psi_{1} \circ \phi_{aff}^{-1}

with :math:`\psi_t` the flow of the velocity ``v`` (integrated by :func:`monai_avsm.functional.advect_map`, so
``advect_map(phi_aff, v)`` gives :math:`\phi` and ``advect_map(id, -v)`` gives :math:`\psi_1`). ``fixed = moving o
phi``: registering the moving image to the fixed image should recover :math:`\phi`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_avsm.functional.advection import advect_map
from monai_avsm.functional.affine import affine_to_map, invert_affine
from monai_avsm.functional.maps import identity_map, resample_map, warp_image

__all__ = ["half_extent_mm", "physical_affine_to_normalized", "rotation_matrix", "synthetic_maps"]


def half_extent_mm(spatial_shape: Sequence[int], spacing: Sequence[float]) -> torch.Tensor:
    """Millimetres per normalised unit along each axis: ``(N - 1) * spacing / 2`` (float64, shape ``(D,)``)."""
    return torch.tensor([(n - 1) * s / 2.0 for n, s in zip(spatial_shape, spacing)], dtype=torch.float64)


def rotation_matrix(angles_rad: Sequence[float]) -> torch.Tensor:
    """Rotation in tensor-axis coordinates: one angle in 2D, three angles (about axes 0, 1, 2) in 3D, float64."""
    angles = [float(a) for a in angles_rad]
    if len(angles) == 1:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    if len(angles) != 3:
        raise ValueError(f"rotation_matrix: need 1 (2D) or 3 (3D) angles, got {angles}.")
    out = torch.eye(3, dtype=torch.float64)
    for axis, a in enumerate(angles):
        i, j = [k for k in range(3) if k != axis]
        r = torch.eye(3, dtype=torch.float64)
        r[i, i], r[i, j], r[j, i], r[j, j] = math.cos(a), -math.sin(a), math.sin(a), math.cos(a)
        out = r @ out
    return out


def physical_affine_to_normalized(
    matrix: torch.Tensor, translation_mm: torch.Tensor, spatial_shape: Sequence[int], spacing: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""An affine about the image centre in millimetres, :math:`y = M x + t`, as normalised ``(A, b)``:
    :math:`A = H^{-1} M H`, :math:`b = H^{-1} t` with :math:`H = \mathrm{diag}((N - 1)\, s / 2)`."""
    h = half_extent_mm(spatial_shape, spacing)
    A = (matrix.to(torch.float64) * h.unsqueeze(0)) / h.unsqueeze(1)
    b = translation_mm.to(torch.float64) / h
    return A, b


def synthetic_maps(
    A: torch.Tensor, b: torch.Tensor, velocity: torch.Tensor, spatial_shape: Sequence[int], time_steps: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The map :math:`\phi = \phi_{aff} \circ \psi_{-1}` and its inverse :math:`\psi_1 \circ \phi_{aff}^{-1}` on a
    grid of ``spatial_shape``.

    Args:
        A, b: normalised affine ``(D, D)``, ``(D,)``.
        velocity: ``(D, *s)`` stationary velocity on any (usually coarser) grid, normalised units per unit time.
        spatial_shape: the output grid.
        time_steps: RK4 steps.

    Returns:
        ``(phi, phi_inv)``, each ``(D, *spatial_shape)``, ``MapSpace.NORMALIZED``, in the dtype of ``velocity``.
    """
    dtype, device = velocity.dtype, velocity.device
    A, b = A.to(dtype=dtype, device=device).unsqueeze(0), b.to(dtype=dtype, device=device).unsqueeze(0)
    v = velocity.unsqueeze(0)
    low = tuple(velocity.shape[1:])
    phi_low = advect_map(resample_map(affine_to_map(A, b, low), low), v, time_steps)
    phi = resample_map(phi_low, spatial_shape)
    ident = identity_map(spatial_shape, dtype=dtype, device=device)
    psi_1 = resample_map(advect_map(identity_map(low, dtype=dtype, device=device), -v, time_steps), spatial_shape)
    # psi_1(y) = y + u(y), read at y = phi_aff^-1(x); where y leaves the image the displacement u (not the map) is
    # extended by border padding, so the inverse stays smooth and fold-free there
    aff_inv = affine_to_map(*invert_affine(A, b), spatial_shape)
    phi_inv = aff_inv + warp_image(psi_1 - ident, aff_inv, padding_mode="border")
    return phi[0], phi_inv[0]
