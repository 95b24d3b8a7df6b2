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
from monai_avsm.functional.smoothing import multi_gaussian_smooth

__all__ = [
    "axis_angle_rotation",
    "half_extent_mm",
    "physical_affine_to_normalized",
    "rotation_angle_deg",
    "rotation_matrix",
    "shear_matrix",
    "smooth_velocity",
    "synthetic_inverse_map",
    "synthetic_map",
    "synthetic_maps",
]


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


def axis_angle_rotation(axis: Sequence[float], angle_rad: float) -> torch.Tensor:
    r"""Rotation by ``angle_rad`` about the unit vector along ``axis`` (3D, tensor-axis coordinates; Rodrigues):

    .. math:: R = I + \sin\theta\, K + (1 - \cos\theta) K^2, \qquad K = [n]_\times

    Its rotation angle is :math:`|\theta|` (:func:`rotation_angle_deg`). float64 ``(3, 3)``.
    """
    n = torch.as_tensor([float(a) for a in axis], dtype=torch.float64)
    if n.shape != (3,) or not float(n.norm()) > 0:
        raise ValueError(f"axis_angle_rotation: 'axis' must be 3 numbers, not all 0, got {list(axis)}.")
    n = n / n.norm()
    k = torch.tensor([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]], dtype=torch.float64)
    a = float(angle_rad)
    return torch.eye(3, dtype=torch.float64) + math.sin(a) * k + (1.0 - math.cos(a)) * (k @ k)


def rotation_angle_deg(matrix: torch.Tensor) -> float:
    r"""Rotation angle (degrees) of a rotation matrix: :math:`\arccos((\mathrm{tr} R - 1) / 2)` in 3D,
    :math:`|\mathrm{atan2}(R_{10}, R_{00})|` in 2D."""
    r = torch.as_tensor(matrix, dtype=torch.float64)
    if r.shape == (2, 2):
        return abs(math.degrees(math.atan2(float(r[1, 0]), float(r[0, 0]))))
    if r.shape != (3, 3):
        raise ValueError(f"rotation_angle_deg: 'matrix' must be 2x2 or 3x3, got shape {tuple(r.shape)}.")
    c = max(-1.0, min(1.0, (float(torch.trace(r)) - 1.0) / 2.0))
    return math.degrees(math.acos(c))


def shear_matrix(shears: Sequence[float]) -> torch.Tensor:
    """Upper unit-triangular shear: 1 value in 2D (entry (0, 1)), 3 in 3D (entries (0, 1), (0, 2), (1, 2)), float64."""
    values = [float(s) for s in shears]
    if len(values) not in (1, 3):
        raise ValueError(f"shear_matrix: need 1 (2D) or 3 (3D) shear values, got {values}.")
    ndim = 2 if len(values) == 1 else 3
    out = torch.eye(ndim, dtype=torch.float64)
    for (i, j), s in zip([(0, 1), (0, 2), (1, 2)], values):
        out[i, j] = s
    return out


def smooth_velocity(
    noise: torch.Tensor,
    spatial_shape: Sequence[int],
    spacing: Sequence[float],
    sigmas: Sequence[float],
    max_speed_mm: float,
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    r"""A multi-scale smooth velocity from white noise, scaled to a largest speed in millimetres.

    Each scale :math:`k` smooths its own noise :math:`n_k` with a Gaussian of :math:`\sigma_k` (fraction of the
    longest physical side, :func:`~monai_avsm.functional.multi_gaussian_smooth`), is normalised to a largest
    speed of 1 mm and weighted; the sum is scaled to a largest speed of ``max_speed_mm``:

    .. math:: v = s\, \sum_k w_k \frac{G_{\sigma_k} \star n_k}{\max_x \|H (G_{\sigma_k} \star n_k)(x)\|}, \qquad
        \max_x \|H v(x)\| = \text{max\_speed\_mm}

    with :math:`H` the millimetres per normalised unit (:func:`half_extent_mm`). The flow of ``v`` for unit time then
    moves no point by more than ``max_speed_mm``.

    Args:
        noise: ``(K, D, *s)`` standard normal noise, one set per scale, on a grid ``s`` spanning the image.
        spatial_shape, spacing: the image grid (voxels, mm).
        sigmas: ``K`` Gaussian widths (fractions of the longest side).
        max_speed_mm: the largest speed of the result (0 gives a zero velocity).
        weights: ``K`` non-negative weights (default: equal).

    Returns:
        ``(D, *s)`` velocity in normalised units per unit time (``MapSpace.NORMALIZED``), float64.
    """

    k, ndim = noise.shape[0], noise.shape[1]
    if len(sigmas) != k or (weights is not None and len(weights) != k):
        raise ValueError(
            f"smooth_velocity: 'noise' has {k} scales but got {len(sigmas)} sigmas and "
            f"{None if weights is None else len(weights)} weights."
        )
    low = tuple(noise.shape[2:])
    low_spacing = [s * (n - 1) / (m - 1) for s, n, m in zip(spacing, spatial_shape, low)]
    h = half_extent_mm(spatial_shape, spacing).reshape(ndim, *([1] * ndim)).to(noise.dtype)
    v = torch.zeros(noise.shape[1:], dtype=noise.dtype)
    for i, sigma in enumerate(sigmas):
        vk = multi_gaussian_smooth(noise[i : i + 1], low_spacing, sigmas=(float(sigma),), weights=(1.0,))[0]
        if k > 1:  # one scale keeps the historical arithmetic (RandSyntheticDeformation's replayed draws)
            peak = float((vk * h).norm(dim=0).max())
            vk = vk * ((1.0 if weights is None else float(weights[i])) / peak) if peak > 0 else vk
        v = v + vk
    speed_mm = float((v * h).norm(dim=0).max())
    return v * (float(max_speed_mm) / speed_mm) if speed_mm > 0 else v


def physical_affine_to_normalized(
    matrix: torch.Tensor, translation_mm: torch.Tensor, spatial_shape: Sequence[int], spacing: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""An affine about the image centre in millimetres, :math:`y = M x + t`, as normalised ``(A, b)``:
    :math:`A = H^{-1} M H`, :math:`b = H^{-1} t` with :math:`H = \mathrm{diag}((N - 1)\, s / 2)`."""
    h = half_extent_mm(spatial_shape, spacing)
    A = (matrix.to(torch.float64) * h.unsqueeze(0)) / h.unsqueeze(1)
    b = translation_mm.to(torch.float64) / h
    return A, b


def synthetic_map(
    A: torch.Tensor, b: torch.Tensor, velocity: torch.Tensor, spatial_shape: Sequence[int], time_steps: int = 10
) -> torch.Tensor:
    r"""The map :math:`\phi = \phi_{aff} \circ \psi_{-1}` alone (no inverse), ``(D, *spatial_shape)``,
    ``MapSpace.NORMALIZED``: the affine map on the velocity's grid advected by ``velocity`` (RK4), then linearly
    up-sampled (exact for the affine part). Arguments as :func:`synthetic_maps`."""
    dtype, device = velocity.dtype, velocity.device
    A, b = A.to(dtype=dtype, device=device).unsqueeze(0), b.to(dtype=dtype, device=device).unsqueeze(0)
    low = tuple(velocity.shape[1:])
    phi_low = advect_map(resample_map(affine_to_map(A, b, low), low), velocity.unsqueeze(0), time_steps)
    return resample_map(phi_low, spatial_shape)[0]


def synthetic_inverse_map(
    A: torch.Tensor, b: torch.Tensor, velocity: torch.Tensor, spatial_shape: Sequence[int], time_steps: int = 10
) -> torch.Tensor:
    r"""The inverse :math:`\phi^{-1} = \psi_1 \circ \phi_{aff}^{-1}` of :func:`synthetic_map`, ``(D, *spatial_shape)``,
    ``MapSpace.NORMALIZED``. Arguments as :func:`synthetic_maps`."""
    dtype, device = velocity.dtype, velocity.device
    A, b = A.to(dtype=dtype, device=device).unsqueeze(0), b.to(dtype=dtype, device=device).unsqueeze(0)
    v = velocity.unsqueeze(0)
    low = tuple(velocity.shape[1:])
    ident = identity_map(spatial_shape, dtype=dtype, device=device)
    psi_1 = resample_map(advect_map(identity_map(low, dtype=dtype, device=device), -v, time_steps), spatial_shape)
    # psi_1(y) = y + u(y), read at y = phi_aff^-1(x); where y leaves the image the displacement u (not the map) is
    # extended by border padding, so the inverse stays smooth and fold-free there
    aff_inv = affine_to_map(*invert_affine(A, b), spatial_shape)
    return (aff_inv + warp_image(psi_1 - ident, aff_inv, padding_mode="border"))[0]


def synthetic_maps(
    A: torch.Tensor, b: torch.Tensor, velocity: torch.Tensor, spatial_shape: Sequence[int], time_steps: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The map :math:`\phi = \phi_{aff} \circ \psi_{-1}` and its inverse :math:`\psi_1 \circ \phi_{aff}^{-1}` on a
    grid of ``spatial_shape`` (:func:`synthetic_map`, :func:`synthetic_inverse_map`).

    Args:
        A, b: normalised affine ``(D, D)``, ``(D,)``.
        velocity: ``(D, *s)`` stationary velocity on any (usually coarser) grid, normalised units per unit time.
        spatial_shape: the output grid.
        time_steps: RK4 steps.

    Returns:
        ``(phi, phi_inv)``, each ``(D, *spatial_shape)``, ``MapSpace.NORMALIZED``, in the dtype of ``velocity``.
    """
    return (
        synthetic_map(A, b, velocity, spatial_shape, time_steps),
        synthetic_inverse_map(A, b, velocity, spatial_shape, time_steps),
    )
