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
r"""Affine transformations ``phi(x) = A x + b`` on the normalised grid (method spec §2, paper eq. 1).

``A`` is ``(B, D, D)`` and ``b`` is ``(B, D)``, acting on ``MapSpace.NORMALIZED`` coordinates in tensor axis order,
so the transform acts about the image centre. The identity is ``A = I``, ``b = 0``.

MONAI's ``AffineTransform``/``AffineHead`` act on other coordinates (voxel corner origin, or reversed axis order) and
do not compose parameters; the few lines needed for AVSM are here.
"""

from __future__ import annotations

import torch

from monai_avsm.functional.maps import identity_map
from monai_avsm.utils.enums import ComposeOrder
from monai_avsm.utils.options import look_up_option

__all__ = [
    "check_affine",
    "identity_affine",
    "affine_to_map",
    "compose_affines",
    "update_affine",
    "invert_affine",
    "theta_from_affine",
    "affine_from_theta",
]


def check_affine(A: torch.Tensor, b: torch.Tensor, caller: str) -> int:
    """Check ``A`` ``(B, D, D)`` and ``b`` ``(B, D)`` with ``D`` in (2, 3); return ``D``."""
    if not isinstance(A, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"{caller}: 'A' and 'b' must be torch.Tensors.")
    if A.ndim != 3 or A.shape[1] != A.shape[2] or A.shape[1] not in (2, 3):
        raise ValueError(f"{caller}: 'A' must have shape (B, D, D) with D in (2, 3), got {tuple(A.shape)}.")
    if b.shape != A.shape[:2]:
        raise ValueError(f"{caller}: 'b' must have shape (B, D) = {tuple(A.shape[:2])}, got {tuple(b.shape)}.")
    return A.shape[1]


def identity_affine(
    batch_size: int, ndim: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The identity ``(A, b) = (I, 0)`` for a batch."""
    A = torch.eye(ndim, dtype=dtype, device=device).expand(batch_size, ndim, ndim).clone()
    b = torch.zeros(batch_size, ndim, dtype=dtype, device=device)
    return A, b


def affine_to_map(A: torch.Tensor, b: torch.Tensor, spatial_shape) -> torch.Tensor:
    r"""The map :math:`\phi(x) = A x + b` on a grid of ``spatial_shape``, ``(B, D, *S)``, ``MapSpace.NORMALIZED``."""
    ndim = check_affine(A, b, "affine_to_map")
    if len(spatial_shape) != ndim:
        raise ValueError(f"affine_to_map: 'spatial_shape' must have {ndim} sizes, got {tuple(spatial_shape)}.")
    ident = identity_map(spatial_shape, dtype=A.dtype, device=A.device)[0]  # (D, *S)
    phi = torch.einsum("bij,j...->bi...", A, ident)
    return phi + b.reshape(*b.shape, *([1] * ndim))


def compose_affines(
    outer: tuple[torch.Tensor, torch.Tensor], inner: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Parameters of :math:`\phi_{outer} \circ \phi_{inner}`: :math:`(A_o A_i,\ A_o b_i + b_o)`."""
    A_o, b_o = outer
    A_i, b_i = inner
    check_affine(A_o, b_o, "compose_affines")
    check_affine(A_i, b_i, "compose_affines")
    return A_o @ A_i, (A_o @ b_i.unsqueeze(-1)).squeeze(-1) + b_o


def update_affine(
    current: tuple[torch.Tensor, torch.Tensor],
    update: tuple[torch.Tensor, torch.Tensor],
    order: ComposeOrder | str = ComposeOrder.PULLBACK,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step of the multi-step affine network: combine the estimate ``current`` with a step's ``update``.

    - ``"pullback"`` (default): :math:`\phi_t = \phi_{t-1} \circ \tilde\phi_t`, i.e.
      :math:`A_t = A_{t-1} \tilde A_t,\ b_t = A_{t-1} \tilde b_t + b_{t-1}`. The step sees
      :math:`I_0 \circ \phi_{t-1}` and estimates :math:`\tilde\phi_t` with
      :math:`I_0 \circ \phi_{t-1} \circ \tilde\phi_t \approx I_1`, so this is exact for pull-back maps.
    - ``"paper"``: paper eq. (1) and the authors' code, :math:`A_t = \tilde A_t A_{t-1}`,
      :math:`b_t = \tilde A_t b_{t-1} + \tilde b_t` (:math:`\tilde\phi_t \circ \phi_{t-1}`).

    Deviation: the default differs from eq. (1); both agree to first order near the identity
    (``docs/deviations.md``).
    """
    order = look_up_option(order, ComposeOrder)
    if order == ComposeOrder.PULLBACK:
        return compose_affines(current, update)
    return compose_affines(update, current)


def invert_affine(A: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Inverse :math:`(A^{-1}, -A^{-1} b)` of :math:`\phi(x) = A x + b`."""
    check_affine(A, b, "invert_affine")
    A_inv = torch.linalg.inv(A)
    return A_inv, -(A_inv @ b.unsqueeze(-1)).squeeze(-1)


def theta_from_affine(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(A (B, D, D), b (B, D))`` -> ``theta = [A | b]`` ``(B, D, D + 1)``."""
    return torch.cat([A, b.unsqueeze(-1)], dim=-1)


def affine_from_theta(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``theta = [A | b]`` ``(B, D, D + 1)`` -> ``(A, b)``."""
    return theta[..., :-1], theta[..., -1]
