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
r"""Map advection under a stationary velocity field (method spec §3, paper eq. 7).

The vSVF map solves the advection equation for unit time,

.. math:: \partial_t \Phi^{-1} + D\Phi^{-1}\, v = 0, \qquad \Phi^{-1}(0) = \Phi^{-1}_{(0)},

whose solution is :math:`\Phi^{-1}(1) = \Phi^{-1}_{(0)} \circ \psi_{-1}`, with :math:`\psi_t` the flow of ``v``.
Spatial derivatives are central differences with linear extrapolation at the boundary
(:func:`~monai_avsm.functional.finite_differences.central_difference`), time integration is fixed-step RK4
(10 steps by default), as in the authors' code (mermaid ``AdvectMap``). Gradients come from back-propagation
through the discrete scheme (exact for it; the authors used an adjoint).

Deviation: mermaid's "rk4" is the 3/8-rule variant; we use the classic RK4 tableau. Both are 4th order.

MONAI integrates velocities only by scaling and squaring of voxel DDFs (``DVF2DDF``), so this is new code.
"""

from __future__ import annotations

import torch

from monai_avsm.functional.finite_differences import central_difference, central_difference_transpose
from monai_avsm.utils.validation import check_map

__all__ = ["advection_rhs", "clamp_velocity", "advect_map"]


def _normalized_spacing(spatial_shape) -> list[float]:
    """Grid spacing of ``MapSpace.NORMALIZED`` coordinates: ``2 / (N - 1)`` per axis."""
    return [2.0 / (n - 1) for n in spatial_shape]


def _rhs(phi: torch.Tensor, v: torch.Tensor, h: list[float]) -> torch.Tensor:
    out = torch.zeros_like(phi)
    for d in range(phi.ndim - 2):
        out.addcmul_(v[:, d : d + 1], central_difference(phi, dim=d + 2, spacing=h[d]), value=-1.0)
    return out


class _AdvectionRHS(torch.autograd.Function):
    """:math:`-\\sum_d v_d \\partial_d \\Phi` with a hand-written backward.

    Autograd through the slicing of the finite differences would store three derivative fields per call and build
    full-size zero tensors in backward; here only ``phi`` and ``v`` are saved and the backward applies the transposed
    difference operator: :math:`\\nabla_\\Phi = -\\sum_d D_d^T (v_d\\, g)`,
    :math:`\\nabla_{v_d} = -\\sum_c g_c\\, D_d \\Phi_c`.
    """

    @staticmethod
    def forward(ctx, phi: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        h = _normalized_spacing(phi.shape[2:])
        ctx.save_for_backward(phi, v)
        ctx.h = h
        return _rhs(phi, v, h)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        phi, v = ctx.saved_tensors
        h = ctx.h
        grad_phi = grad_v = None
        ndim = phi.ndim - 2
        if ctx.needs_input_grad[0]:
            grad_phi = torch.zeros_like(phi)
            for d in range(ndim):
                grad_phi.sub_(central_difference_transpose(grad * v[:, d : d + 1], dim=d + 2, spacing=h[d]))
        if ctx.needs_input_grad[1]:
            cols = [
                (grad * central_difference(phi, dim=d + 2, spacing=h[d])).sum(dim=1, keepdim=True) for d in range(ndim)
            ]
            grad_v = -torch.cat(cols, dim=1)
            if grad_v.shape != v.shape:  # v broadcast over the batch
                grad_v = grad_v.sum(dim=0, keepdim=True)
        return grad_phi, grad_v


def advection_rhs(phi: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Right-hand side :math:`-D\Phi\, v = -\sum_d v_d\, \partial_d \Phi` of the advection equation.

    Args:
        phi: map ``(B, D, *S)``, ``MapSpace.NORMALIZED``.
        v: velocity ``(B, D, *S)`` in normalised units per unit time (channel ``d`` along tensor axis ``d``).
    """
    if torch.is_grad_enabled() and (phi.requires_grad or v.requires_grad):
        return _AdvectionRHS.apply(phi, v)
    return _rhs(phi, v, _normalized_spacing(phi.shape[2:]))


def clamp_velocity(v: torch.Tensor, max_voxels: float) -> torch.Tensor:
    """Clamp every velocity component to ``± max_voxels`` voxels of its axis per unit time (stability clamp).

    The authors' code clamps to about ``±7.07`` low-resolution voxels (CFL, ``dt = 0.1``); off by default here.
    """
    if not max_voxels > 0:
        raise ValueError(f"clamp_velocity: 'max_voxels' must be > 0, got {max_voxels}.")
    ndim = v.ndim - 2
    h = _normalized_spacing(v.shape[2:])
    bound = torch.tensor([max_voxels * hd for hd in h], dtype=v.dtype, device=v.device)
    bound = bound.reshape(1, ndim, *([1] * ndim))
    return torch.maximum(torch.minimum(v, bound), -bound)


def advect_map(
    phi0: torch.Tensor, v: torch.Tensor, num_steps: int = 10, velocity_clamp: float | None = None
) -> torch.Tensor:
    r"""Integrate :math:`\partial_t \Phi + D\Phi\, v = 0` from ``phi0`` for unit time with fixed-step RK4.

    Args:
        phi0: initial map ``(B, D, *S)`` (identity, an affine map, or a previous step's map), ``MapSpace.NORMALIZED``.
        v: stationary velocity ``(B, D, *S)`` on the same grid, normalised units per unit time.
        num_steps: number of RK4 steps (``dt = 1 / num_steps``); ``0`` returns ``phi0`` unchanged.
        velocity_clamp: if given, clamp ``v`` to this many voxels per unit time first (:func:`clamp_velocity`).

    Returns:
        :math:`\Phi(1) \approx \Phi_0 \circ \psi_{-1}`, ``(B, D, *S)``.
    """
    ndim = check_map(phi0, "phi0", "advect_map")
    if check_map(v, "v", "advect_map") != ndim or v.shape[2:] != phi0.shape[2:]:
        raise ValueError(
            f"advect_map: 'v' must have the spatial shape of 'phi0', got {tuple(v.shape)} and {tuple(phi0.shape)}."
        )
    if int(num_steps) != num_steps or num_steps < 0:
        raise ValueError(f"advect_map: 'num_steps' must be a non-negative integer, got {num_steps}.")
    if velocity_clamp is not None:
        v = clamp_velocity(v, velocity_clamp)
    if phi0.shape[0] != v.shape[0]:
        if phi0.shape[0] != 1:
            raise ValueError(
                f"advect_map: batch sizes of 'phi0' ({phi0.shape[0]}) and 'v' ({v.shape[0]}) must match or 'phi0' be 1."
            )
        phi0 = phi0.expand(v.shape[0], *phi0.shape[1:])
    dt = 1.0 / num_steps if num_steps else 0.0
    phi = phi0
    for _ in range(int(num_steps)):
        k1 = advection_rhs(phi, v)
        k2 = advection_rhs(phi + (0.5 * dt) * k1, v)
        k3 = advection_rhs(phi + (0.5 * dt) * k2, v)
        k4 = advection_rhs(phi + dt * k3, v)
        phi = phi + (dt / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
    return phi
