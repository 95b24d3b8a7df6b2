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

from monai_avsm.utils.validation import check_map

__all__ = ["advection_rhs", "clamp_velocity", "advect_map"]


def _normalized_spacing(spatial_shape) -> list[float]:
    """Grid spacing of ``MapSpace.NORMALIZED`` coordinates: ``2 / (N - 1)`` per axis."""
    return [2.0 / (n - 1) for n in spatial_shape]


def _difference_into(out: torch.Tensor, f: torch.Tensor, dim: int) -> torch.Tensor:
    """Unscaled central difference ``f[i+1] - f[i-1]`` along ``dim`` (one-sided ``f[1] - f[0]``,
    ``f[n-1] - f[n-2]`` at the ends) written into ``out`` (same shape as ``f``): one pass, no concatenation."""
    n = f.shape[dim]
    if n > 2:
        torch.sub(f.narrow(dim, 2, n - 2), f.narrow(dim, 0, n - 2), out=out.narrow(dim, 1, n - 2))
    torch.sub(f.narrow(dim, 1, 1), f.narrow(dim, 0, 1), out=out.narrow(dim, 0, 1))
    torch.sub(f.narrow(dim, n - 1, 1), f.narrow(dim, n - 2, 1), out=out.narrow(dim, n - 1, 1))
    return out


def _difference_transpose_into(out: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    """Transpose of :func:`_difference_into` applied to ``y``, written into ``out``:
    ``out[i] = y[i-1] - y[i+1]`` inside, ``-y[0] - y[1]`` and ``y[n-2] + y[n-1]`` at the ends."""
    n = y.shape[dim]
    if n > 2:
        torch.sub(y.narrow(dim, 0, n - 2), y.narrow(dim, 2, n - 2), out=out.narrow(dim, 1, n - 2))
        torch.add(y.narrow(dim, 0, 1), y.narrow(dim, 1, 1), out=out.narrow(dim, 0, 1)).neg_()
        torch.add(y.narrow(dim, n - 2, 1), y.narrow(dim, n - 1, 1), out=out.narrow(dim, n - 1, 1))
    else:  # rows (-1, 1) and (-1, 1): out = (-y0 - y1, y0 + y1)
        torch.add(y.narrow(dim, 0, 1), y.narrow(dim, 1, 1), out=out.narrow(dim, 1, 1))
        torch.neg(out.narrow(dim, 1, 1), out=out.narrow(dim, 0, 1))
    return out


def _velocity_weights(v: torch.Tensor) -> torch.Tensor:
    r"""``w_d = -v_d\, s_d`` with ``s_d = 1 / (2 h_d)`` inside and ``1 / h_d`` on the two boundary slices of axis
    ``d``, so that :math:`-\sum_d v_d \partial_d \Phi = \sum_d w_d\, \Delta_d \Phi` with the unscaled
    difference :math:`\Delta_d` of :func:`_difference_into`. Computed once per integration (``v`` is stationary)."""
    ndim = v.ndim - 2
    h = _normalized_spacing(v.shape[2:])
    cols = []
    for d in range(ndim):
        n = v.shape[d + 2]
        scale = torch.full((n,), -0.5 / h[d], dtype=v.dtype, device=v.device)
        scale[0] = scale[-1] = -1.0 / h[d]
        cols.append(v[:, d : d + 1] * scale.reshape([n if k == d else 1 for k in range(ndim)]))
    return torch.cat(cols, dim=1)


def _rhs(phi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_d w_d\, \Delta_d \Phi` (see :func:`_velocity_weights`)."""
    out = torch.empty_like(phi, memory_format=torch.contiguous_format)
    buf = torch.empty_like(out)
    for d in range(phi.ndim - 2):
        if d == 0:
            _difference_into(out, phi, 2).mul_(w[:, :1])
        else:
            out.addcmul_(w[:, d : d + 1], _difference_into(buf, phi, d + 2))
    return out


class _AdvectionRHS(torch.autograd.Function):
    r""":math:`\sum_d w_d\, \Delta_d \Phi = -\sum_d v_d \partial_d \Phi` with a hand-written backward.

    Autograd through the slicing of the finite differences would store three derivative fields per call and build
    full-size zero tensors in backward; here only ``phi`` and ``w`` are saved and the backward applies the transposed
    difference operator: :math:`\nabla_\Phi = \sum_d \Delta_d^T (w_d\, g)`,
    :math:`\nabla_{w_d} = \sum_c g_c\, \Delta_d \Phi_c`. Every pass writes into a preallocated buffer (no
    concatenation, no zero fill).
    """

    @staticmethod
    def forward(ctx, phi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(phi, w)
        # detached: the out= writes of _rhs refuse inputs that require grad when this forward is traced with grad
        # enabled (torch.export); the gradient is this Function's backward either way
        return _rhs(phi.detach(), w.detach())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        phi, w = ctx.saved_tensors
        grad_phi = grad_w = None
        ndim = phi.ndim - 2
        buf = torch.empty_like(phi, memory_format=torch.contiguous_format)
        if ctx.needs_input_grad[0]:
            grad_phi = torch.empty_like(buf)
            tmp = torch.empty_like(buf)
            for d in range(ndim):
                torch.mul(grad, w[:, d : d + 1], out=tmp)
                if d == 0:
                    _difference_transpose_into(grad_phi, tmp, 2)
                else:
                    grad_phi.add_(_difference_transpose_into(buf, tmp, d + 2))
        if ctx.needs_input_grad[1]:
            grad_w = torch.empty(phi.shape[0], ndim, *phi.shape[2:], dtype=phi.dtype, device=phi.device)
            for d in range(ndim):
                diff = _difference_into(buf, phi, d + 2)
                out = grad_w[:, d : d + 1]
                torch.mul(diff[:, :1], grad[:, :1], out=out)
                for c in range(1, phi.shape[1]):  # channel sum as accumulations (a reduction would zero-fill first)
                    out.addcmul_(diff[:, c : c + 1], grad[:, c : c + 1])
            if grad_w.shape != w.shape:  # w broadcast over the batch
                grad_w = grad_w.sum(dim=0, keepdim=True)
        return grad_phi, grad_w


def _apply_rhs(phi: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and (phi.requires_grad or w.requires_grad):
        return _AdvectionRHS.apply(phi, w)
    return _rhs(phi, w)


def advection_rhs(phi: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Right-hand side :math:`-D\Phi\, v = -\sum_d v_d\, \partial_d \Phi` of the advection equation.

    Args:
        phi: map ``(B, D, *S)``, ``MapSpace.NORMALIZED``.
        v: velocity ``(B, D, *S)`` in normalised units per unit time (channel ``d`` along tensor axis ``d``).
    """
    return _apply_rhs(phi, _velocity_weights(v))


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
    if num_steps == 0:
        return phi
    w = _velocity_weights(v)  # v is stationary: its difference weights are computed once
    for _ in range(int(num_steps)):
        k1 = _apply_rhs(phi, w)
        k2 = _apply_rhs(torch.add(phi, k1, alpha=0.5 * dt), w)
        k3 = _apply_rhs(torch.add(phi, k2, alpha=0.5 * dt), w)
        k4 = _apply_rhs(torch.add(phi, k3, alpha=dt), w)
        # phi + dt / 6 (k1 + 2 (k2 + k3) + k4), as one accumulation
        phi = torch.add(phi, torch.add(torch.add(k1, k4), torch.add(k2, k3), alpha=2.0), alpha=dt / 6.0)
    return phi
