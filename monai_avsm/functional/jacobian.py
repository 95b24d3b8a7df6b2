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
r"""Jacobian determinant of maps and displacement fields, and fold statistics (method spec §6, paper §3).

For a map :math:`\phi` the Jacobian is :math:`J_{ij} = \partial \phi_i / \partial x_j`; for a displacement field
:math:`u`, :math:`J = I + \partial u / \partial x`. Derivatives are central differences with linear extrapolation
at the boundary (:func:`~monai_avsm.functional.finite_differences.central_difference`).

Units: a map whose values and grid are in the same per-axis coordinates (``MapSpace.NORMALIZED``, voxels, or
millimetres) has the same determinant in all of them, because the per-axis scalings of :math:`\phi` and :math:`x`
cancel in :math:`\det J`. A displacement field must be differentiated in its own units: voxel DDFs (MONAI) with
spacing 1, physical (mm) DDFs with the voxel spacing.

A fold is a voxel with :math:`\det J \le 0` (:func:`fold_mask`): the map is not locally invertible there. This is the
one definition used everywhere in monai_avsm (:func:`fold_statistics`, :func:`~monai_avsm.metrics.compute_folds`, the
writers' Jacobian summary, :func:`~monai_avsm.functional.world_jacobian_determinant` and ``monai-avsm jacobian``). The
paper's Table 1 counts :math:`\det J < 0`; the two differ only on voxels whose determinant is exactly zero, which a
floating-point determinant of a real field practically never is. The authors' code counted the product of the
diagonal partials :math:`\prod_i \partial \phi_i / \partial x_i` instead of the determinant;
:func:`jacobian_diagonal_product` gives it for comparison with the paper's numbers only.

MONAI has no Jacobian or folding metric; this is new code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from monai_avsm.functional.finite_differences import central_difference
from monai_avsm.utils.validation import check_map, ensure_spacing

__all__ = [
    "jacobian_matrix",
    "jacobian_determinant",
    "jacobian_determinant_ddf",
    "jacobian_diagonal_product",
    "matrix_determinant",
    "matrix_cofactors",
    "fold_mask",
    "crop_margin",
    "fold_statistics",
]


def jacobian_matrix(field: torch.Tensor, spacing: Sequence[float], add_identity: bool = False) -> torch.Tensor:
    """``J[:, i, j] = d field_i / d x_j``, shape ``(B, D, D, *S)``; ``add_identity`` for displacement fields.

    Differentiable when ``field`` requires a gradient (and grad mode is on); otherwise the differences are written
    straight into the result (no concatenation, no stacking: the same values, about half the time)."""
    ndim = field.ndim - 2
    if not (field.requires_grad and torch.is_grad_enabled()):
        jac = torch.empty((field.shape[0], ndim, ndim, *field.shape[2:]), dtype=field.dtype, device=field.device)
        for j in range(ndim):
            central_difference(field, j + 2, float(spacing[j]), out=jac[:, :, j])
        if add_identity:
            for i in range(ndim):
                jac[:, i, i] += 1.0
        return jac
    cols = [central_difference(field, dim=j + 2, spacing=spacing[j]) for j in range(ndim)]  # each (B, D, *S)
    jac = torch.stack(cols, dim=2)
    if add_identity:
        eye = torch.eye(ndim, dtype=field.dtype, device=field.device).reshape(1, ndim, ndim, *([1] * ndim))
        jac = jac + eye
    return jac


def matrix_determinant(jac: torch.Tensor) -> torch.Tensor:
    """Determinant of a field of ``D x D`` matrices ``(B, D, D, *S)`` -> ``(B, 1, *S)`` by the explicit 2x2 / 3x3
    formula (the one determinant of every Jacobian in monai_avsm)."""
    if jac.shape[1] == 2:
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
    else:
        a, b, c = jac[:, 0, 0], jac[:, 0, 1], jac[:, 0, 2]
        d, e, f = jac[:, 1, 0], jac[:, 1, 1], jac[:, 1, 2]
        g, h, i = jac[:, 2, 0], jac[:, 2, 1], jac[:, 2, 2]
        det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    return det.unsqueeze(1)


def matrix_cofactors(jac: torch.Tensor) -> torch.Tensor:
    r"""Cofactors of a field of ``D x D`` matrices ``(B, D, D, *S)``, the derivative of :func:`matrix_determinant`:

    .. math:: C_{ij} = \frac{\partial \det J}{\partial J_{ij}} = (-1)^{i+j} M_{ij}

    (:math:`M_{ij}` the minor without row :math:`i` and column :math:`j`; :math:`C = \det(J)\, J^{-T}` where
    :math:`J` is invertible). Returns ``(B, D, D, *S)``."""
    if jac.shape[1] == 2:
        a, b, c, d = jac[:, 0, 0], jac[:, 0, 1], jac[:, 1, 0], jac[:, 1, 1]
        rows = [[d, -c], [-b, a]]
    else:
        a, b, c = jac[:, 0, 0], jac[:, 0, 1], jac[:, 0, 2]
        d, e, f = jac[:, 1, 0], jac[:, 1, 1], jac[:, 1, 2]
        g, h, i = jac[:, 2, 0], jac[:, 2, 1], jac[:, 2, 2]
        rows = [
            [e * i - f * h, f * g - d * i, d * h - e * g],
            [c * h - b * i, a * i - c * g, b * g - a * h],
            [b * f - c * e, c * d - a * f, a * e - b * d],
        ]
    return torch.stack([torch.stack(r, dim=1) for r in rows], dim=1)


def jacobian_determinant(phi: torch.Tensor) -> torch.Tensor:
    """Determinant of the Jacobian of a map ``(B, D, *S)`` in ``MapSpace.NORMALIZED`` -> ``(B, 1, *S)``."""
    check_map(phi, "phi", "jacobian_determinant")
    h = [2.0 / (n - 1) for n in phi.shape[2:]]
    return matrix_determinant(jacobian_matrix(phi, h))


def jacobian_determinant_ddf(
    ddf: torch.Tensor, spacing: Sequence[float] | None = None, voxel_axes: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Determinant of :math:`I + \partial u / \partial x` for a displacement field ``(B, D, *S)`` -> ``(B, 1, *S)``.

    Args:
        ddf: displacement field, channel ``c`` along tensor axis ``c``: voxel units (MONAI ``Warp``) with
            ``spacing=None``, or physical units with the voxel ``spacing`` of those units (or ``voxel_axes``).
        spacing: voxel spacing per tensor axis, in the units of ``ddf``.
        voxel_axes: instead of ``spacing``, for a grid whose voxel axes are not the world axes (an oblique scan): the
            ``(D, D)`` linear part :math:`M` of its voxel -> world matrix (column ``a`` = voxel axis ``a`` in world
            units), so that :math:`\partial u / \partial x = (\partial u / \partial j)\, M^{-1}`
            (``diag(spacing)`` is the axis-aligned case), used as
            :math:`\det(I + (\partial u / \partial j) M^{-1}) = \det(M + \partial u / \partial j) / \det M`.
    """
    ndim = check_map(ddf, "ddf", "jacobian_determinant_ddf")
    if voxel_axes is None:
        sp = ensure_spacing(spacing, ndim, "jacobian_determinant_ddf")
        return matrix_determinant(jacobian_matrix(ddf, sp, add_identity=True))
    if spacing is not None:
        raise ValueError("jacobian_determinant_ddf: give 'spacing' or 'voxel_axes', not both.")
    axes = torch.as_tensor(voxel_axes, dtype=torch.float64, device=ddf.device)
    if tuple(axes.shape) != (ndim, ndim):
        raise ValueError(f"jacobian_determinant_ddf: 'voxel_axes' must be ({ndim}, {ndim}), got {tuple(axes.shape)}.")
    # det(I + (du/dj) M^-1) = det(M + du/dj) / det(M): no per-voxel matrix product (a third of the time)
    du_dj = jacobian_matrix(ddf, [1.0] * ndim)  # du_c / dj_a: (B, D, D, *S)
    m = axes.to(ddf.dtype).reshape(1, ndim, ndim, *([1] * ndim))
    shifted = du_dj.add_(m) if not du_dj.requires_grad else du_dj + m
    return matrix_determinant(shifted) / torch.linalg.det(axes).to(ddf.dtype)


def jacobian_diagonal_product(phi: torch.Tensor) -> torch.Tensor:
    r""":math:`\prod_i \partial \phi_i / \partial x_i` of a normalised map, ``(B, 1, *S)``: what the authors' code
    reported as the "Jacobian" (not the determinant). Only for comparison with the paper's fold counts."""
    ndim = check_map(phi, "phi", "jacobian_diagonal_product")
    h = [2.0 / (n - 1) for n in phi.shape[2:]]
    out = None
    for i in range(ndim):
        d = central_difference(phi[:, i : i + 1], dim=i + 2, spacing=h[i])
        out = d if out is None else out * d
    return out


def crop_margin(x: torch.Tensor, margin: int | Sequence[int]) -> torch.Tensor:
    """Crop ``margin`` voxels (one value, or one per spatial axis) from both ends of every spatial axis."""
    ndim = x.ndim - 2
    margins = [int(margin)] * ndim if isinstance(margin, int) else [int(m) for m in margin]
    if len(margins) != ndim or any(m < 0 for m in margins):
        raise ValueError(f"crop_margin: 'margin' must be >= 0, one value or {ndim} values, got {margin}.")
    for n, m in zip(x.shape[2:], margins):
        if n - 2 * m < 1:
            raise ValueError(f"crop_margin: margin {margins} leaves no voxel of spatial shape {tuple(x.shape[2:])}.")
    return x[(slice(None), slice(None)) + tuple(slice(m, n - m) for n, m in zip(x.shape[2:], margins))]


def fold_mask(det: torch.Tensor) -> torch.Tensor:
    r"""Where a Jacobian determinant image folds: :math:`\det J \le 0` (boolean, same shape)."""
    return det <= 0


def fold_statistics(det: torch.Tensor, margin: int | Sequence[int] = 0) -> dict[str, torch.Tensor]:
    """Fold statistics per batch item from a determinant (or diagonal product) image ``(B, 1, *S)``.

    Returns:
        ``{"count": (B,), "fraction": (B,), "mean_abs": (B,)}``: the number of folding voxels (:func:`fold_mask`), their
        fraction of the (cropped) volume, and the mean absolute value over them (0 where there is no fold).
    """
    det = crop_margin(det, margin)  # margin 0 keeps every voxel
    flat = det.reshape(det.shape[0], -1)
    folded = fold_mask(flat)
    count = folded.sum(dim=1).to(flat.dtype)
    total_abs = torch.where(folded, flat.abs(), torch.zeros_like(flat)).sum(dim=1)
    mean_abs = torch.where(count > 0, total_abs / count.clamp_min(1), torch.zeros_like(count))
    return {"count": count, "fraction": count / flat.shape[1], "mean_abs": mean_abs}
