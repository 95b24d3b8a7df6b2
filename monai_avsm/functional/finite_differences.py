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
r"""Central finite differences with linear extrapolation at the boundary (method spec §3; authors' code ``dXc``).

.. math:: \partial_d f[i] = (f[i+1] - f[i-1]) / (2 h_d)

inside; at the two ends the ghost value is linearly extrapolated (``f[-1] = 2 f[0] - f[1]``), which turns the
central difference into the one-sided difference ``(f[1] - f[0]) / h_d``. Linear functions are differentiated
exactly everywhere, including the boundary. (Same as ``torch.gradient(edge_order=1)``, written out so one call
gives one axis.)
"""

from __future__ import annotations

import torch

__all__ = ["central_difference", "central_difference_transpose"]


def central_difference(
    f: torch.Tensor, dim: int, spacing: float = 1.0, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Derivative of ``f`` along tensor dimension ``dim`` (size >= 2) with grid spacing ``spacing``.

    ``out``: a tensor of the shape of ``f`` (any strides, e.g. a slice of a Jacobian) to write the result into, with
    the same operations in the same order (the same values) and no concatenation; not differentiable (``out=``
    writes refuse inputs that require a gradient).

    Returns a tensor of the shape of ``f`` (``out`` when given).
    """
    n = f.shape[dim]
    if n < 2:
        raise ValueError(f"central_difference: size along dim {dim} must be >= 2, got {n}.")
    if out is not None:
        torch.sub(f.narrow(dim, 1, 1), f.narrow(dim, 0, 1), out=out.narrow(dim, 0, 1))
        torch.sub(f.narrow(dim, n - 1, 1), f.narrow(dim, n - 2, 1), out=out.narrow(dim, n - 1, 1))
        if n > 2:
            torch.sub(f.narrow(dim, 2, n - 2), f.narrow(dim, 0, n - 2), out=out.narrow(dim, 1, n - 2)).mul_(0.5)
        return out.div_(spacing)
    first = f.narrow(dim, 1, 1) - f.narrow(dim, 0, 1)
    last = f.narrow(dim, n - 1, 1) - f.narrow(dim, n - 2, 1)
    if n == 2:
        return torch.cat([first, last], dim=dim) / spacing
    inner = (f.narrow(dim, 2, n - 2) - f.narrow(dim, 0, n - 2)) * 0.5
    return torch.cat([first, inner, last], dim=dim) / spacing


def central_difference_transpose(y: torch.Tensor, dim: int, spacing: float = 1.0) -> torch.Tensor:
    """Apply the transpose of :func:`central_difference` (a linear operator along ``dim``) to ``y``.

    Used by hand-written backward passes: ``<central_difference(f), y> = <f, central_difference_transpose(y)>``.
    Row ``i`` of the operator puts ``+c_i`` at column ``i + 1`` and ``-c_i`` at ``i - 1`` inside (``c_i = 1 / 2h``);
    the boundary rows put ``-c, +c`` (first) and ``-c, +c`` (last) at their two one-sided columns (``c = 1 / h``).
    """
    n = y.shape[dim]
    if n < 2:
        raise ValueError(f"central_difference_transpose: size along dim {dim} must be >= 2, got {n}.")
    coef = torch.full((n,), 0.5 / spacing, dtype=y.dtype, device=y.device)
    coef[0] = coef[-1] = 1.0 / spacing
    w = y * coef.reshape([n if k == (dim % y.ndim) else 1 for k in range(y.ndim)])
    out = torch.zeros_like(w)
    out.narrow(dim, 1, n - 1).add_(w.narrow(dim, 0, n - 1))
    out.narrow(dim, 0, n - 1).sub_(w.narrow(dim, 1, n - 1))
    out.narrow(dim, 0, 1).sub_(w.narrow(dim, 0, 1))
    out.narrow(dim, n - 1, 1).add_(w.narrow(dim, n - 1, 1))
    return out
