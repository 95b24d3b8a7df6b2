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
r"""Inverse of an AVSM transformation: the vSVF part from the negated velocities, composed with the inverse affine.

The network's pull-back map (paper §2) is, in normalised coordinates of the working grid,

.. math::
    \Phi^{-1} = A \circ \psi^{v_1}_{-1} \circ \dots \circ \psi^{v_K}_{-1}

(:math:`A` the affine map, :math:`\psi^{v}_{t}` the flow of the stationary velocity :math:`v` of vSVF step :math:`k`;
each step advects the previous map, :math:`\partial_t \Phi + D\Phi\, v_k = 0`). Its inverse maps the moving grid to
the fixed grid:

.. math::
    \Phi = \psi^{v_K}_{1} \circ \dots \circ \psi^{v_1}_{1} \circ A^{-1}
    = \psi^{-v_K}_{-1} \circ \dots \circ \psi^{-v_1}_{-1} \circ A^{-1},

i.e. the identity advected by :math:`-v_K`, then by :math:`-v_{K-1}`, ..., :math:`-v_1` (the same integrator as the
forward pass, steps in the opposite order), then read at :math:`A^{-1} y`. For stationary velocities
:math:`\psi^{-v}_{-1} = \psi^{v}_{1}` exactly; the discrete error is that of the integrator and the interpolation and
is reported by :func:`~monai_avsm.metrics.compute_inverse_consistency`.

Not in MONAI (its ``DVF2DDF`` integrates a stationary field but has no affine part and no inverse); the paper
evaluates the symmetry of two network passes instead (§3, ``compute_symmetry_error``), which this does not replace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from monai_avsm.functional.affine import affine_from_theta, affine_to_map, invert_affine
from monai_avsm.functional.maps import identity_map, map_to_grid, resample_map
from monai_avsm.functional.sampling import grid_sample
from monai_avsm.utils.validation import check_map

__all__ = ["invert_velocities", "compose_with_affine", "inverse_map"]


def invert_velocities(
    velocities: Sequence[torch.Tensor],
    integrator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    spatial_shape: Sequence[int] | None = None,
) -> torch.Tensor:
    r"""Inverse of the vSVF steps: :math:`\psi^{-v_K}_{-1} \circ \dots \circ \psi^{-v_1}_{-1}`.

    Args:
        velocities: the per-step velocities :math:`v_1, \dots, v_K` ``(B, D, *s)`` (``AVSMNet``'s ``"velocities"``,
            on the low-resolution grid), in the order the forward pass used them.
        integrator: ``(phi0, v) -> phi(1)`` advecting a map, e.g. ``net.vsvf_net.warp.integrator``
            (:class:`~monai_avsm.networks.blocks.MapAdvection`), the one the forward pass used.
        spatial_shape: grid of the returned map (the working grid ``S``; default: the velocities' grid).

    Returns:
        the map ``(B, D, *S)`` (``MapSpace.NORMALIZED``), float32 or float64 as the velocities.

    Raises:
        ValueError: no velocity, or velocities of different shapes.
    """
    if len(velocities) == 0:
        raise ValueError("invert_velocities: 'velocities' is empty; without vSVF steps the deformable part is id.")
    shape0 = tuple(velocities[0].shape)
    for k, v in enumerate(velocities):
        check_map(v, f"velocities[{k}]", "invert_velocities")
        if tuple(v.shape) != shape0:
            raise ValueError(
                f"invert_velocities: every velocity must have the shape of the first {shape0}, got "
                f"{tuple(v.shape)} for step {k}."
            )
    v0 = velocities[0]
    dtype = torch.promote_types(v0.dtype, torch.float32)
    phi = identity_map(shape0[2:], dtype=dtype, device=v0.device).expand(shape0[0], *shape0[1:]).contiguous()
    for v in reversed(list(velocities)):
        phi = integrator(phi, -v.to(dtype))
    if spatial_shape is not None:
        phi = resample_map(phi, tuple(int(s) for s in spatial_shape))
    return phi


def compose_with_affine(phi: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    r"""The map :math:`y \mapsto \phi(A y + b)` on ``phi``'s grid, ``theta = [A | b]`` ``(B, D, D + 1)``.

    ``phi`` is read as its displacement :math:`\phi - id` (linear interpolation, border padding) and the identity is
    added back, so points that :math:`A y + b` sends outside the grid move with the nearest border displacement
    (no clamping of the positions themselves).
    """
    ndim = check_map(phi, "phi", "compose_with_affine")
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (ndim, ndim + 1):
        raise ValueError(
            f"compose_with_affine: 'theta' must have shape (B, {ndim}, {ndim + 1}), got {tuple(theta.shape)}."
        )
    shape = tuple(phi.shape[2:])
    A, b = affine_from_theta(theta.to(phi.dtype))
    inner = affine_to_map(A, b, shape)  # (B, D, *S)
    disp = phi - identity_map(shape, dtype=phi.dtype, device=phi.device)
    if disp.shape[0] != inner.shape[0]:
        disp = disp.expand(inner.shape[0], *disp.shape[1:])
    d = grid_sample(disp, map_to_grid(inner), mode="bilinear", padding_mode="border", align_corners=True)
    return inner + d


def inverse_map(
    net_output: dict,
    integrator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    return_deformable: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
    r"""The inverse of an ``AVSMNet`` (or refined) result, on the moving working grid (module docstring).

    Args:
        net_output: the dict of :class:`~monai_avsm.networks.nets.AVSMNet` (or of
            :func:`~monai_avsm.optimization.refine`): ``"map"`` ``(B, D, *S)``, ``"affine"`` ``(B, D, D + 1)`` and,
            when it has vSVF steps, ``"velocities"``.
        integrator: the forward pass's map integrator (``net.vsvf_net.warp.integrator``); required when the result
            has velocities.
        return_deformable: also return the inverse of the vSVF steps alone (:func:`invert_velocities` on the working
            grid; ``None`` for an affine-only result), computed once for both.

    Returns:
        :math:`\Phi` ``(B, D, *S)`` (``MapSpace.NORMALIZED``): for a moving voxel :math:`y`, the fixed-grid point
        it corresponds to, so that ``warp_image(fixed, inverse_map(out))`` is the fixed image on the moving grid;
        with ``return_deformable``, the pair ``(map, deformable inverse or None)``.

    Raises:
        KeyError: no ``"map"`` or ``"affine"``; TypeError: velocities without an integrator.
    """
    for key in ("map", "affine"):
        if key not in net_output:
            raise KeyError(f"inverse_map: the network output has no {key!r}; keys: {sorted(net_output)}.")
    phi = net_output["map"]
    shape = tuple(phi.shape[2:])
    theta = net_output["affine"].to(torch.promote_types(phi.dtype, torch.float32))
    A, b = affine_from_theta(theta)
    A_inv, b_inv = invert_affine(A.to(torch.float64), b.to(torch.float64))
    theta_inv = torch.cat([A_inv, b_inv.unsqueeze(-1)], dim=-1).to(theta.dtype)
    velocities = net_output.get("velocities") or []
    if len(velocities) == 0:
        psi, d_inv = affine_to_map(*affine_from_theta(theta_inv), shape), None
    else:
        if integrator is None:
            raise TypeError(
                "inverse_map: the result has vSVF velocities; pass the 'integrator' of the forward pass "
                "(net.vsvf_net.warp.integrator)."
            )
        d_inv = invert_velocities(velocities, integrator, shape)
        psi = compose_with_affine(d_inv, theta_inv)
    return (psi, d_inv) if return_deformable else psi
