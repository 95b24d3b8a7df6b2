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
r"""World (scanner) space: registration results on native grids, world displacement fields and world affines.

A registration result is a pull-back map ``phi`` ``(B, D, *S)`` in ``MapSpace.NORMALIZED`` on the fixed image's
*working grid* (after ``Orientationd("RAS")`` and resizing), pointing into the moving image's working grid. Each grid
is described by its voxel -> world matrix ``affine`` ``(D + 1, D + 1)`` (MONAI's ``MetaTensor.affine``: voxel index
in torch axis order -> **RAS** world mm) and its spatial shape ``N``. With the normalised coordinate
``u_c = 2 i_c / (N_c - 1) - 1`` of voxel ``i``,

.. math::

    W = \mathrm{affine} \cdot \begin{pmatrix} \mathrm{diag}((N - 1) / 2) & (N - 1) / 2 \\ 0 & 1 \end{pmatrix},
    \qquad p_{world} = W \begin{pmatrix} u \\ 1 \end{pmatrix}

(:func:`normalized_to_world`). A target voxel ``j`` of any grid (affine ``A_t``; typically the fixed image's native
grid as read from its file) pulls from the moving world point

.. math:: q(j) = W_m\, \phi\big(W_f^{-1} A_t\, j\big)

(:func:`map_to_world_points`), its world displacement is ``q(j) - A_t j`` (:func:`world_displacement`) and the warped
image is the moving image (any grid, its own affine) sampled at ``q`` (:func:`resample_world`). An affine result
``theta = [A | b]`` becomes the world matrix ``T = W_m \Theta W_f^{-1}`` with ``q = T p``
(:func:`theta_to_world_affine`).

ITK, ANTs and 3D Slicer's files use the **LPS** world: the same point with ``x`` and ``y`` negated,
``F = diag(-1, -1, 1)`` (:func:`ras_to_lps_affine`, :func:`ras_to_lps_vectors`; both are their own inverse).
Geometry is computed in float64 on the device of the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from monai_avsm.functional.jacobian import jacobian_determinant_ddf, jacobian_matrix
from monai_avsm.functional.maps import identity_map, map_to_grid
from monai_avsm.functional.sampling import grid_sample

__all__ = [
    "normalized_to_world",
    "world_to_normalized",
    "voxel_world_points",
    "map_to_world_points",
    "world_displacement",
    "resample_world",
    "theta_to_world_affine",
    "ras_to_lps_affine",
    "ras_to_lps_vectors",
    "world_jacobian_determinant",
    "apply_affine_points",
    "as_world_matrix",
]

_EXTRAPOLATIONS = ("displacement", "linear")
_CHUNK_VOXELS = 1 << 21  # target voxels per slab in map_to_world_points / resample_world (bounds the memory)


def as_world_matrix(
    affine,
    ndim: int | None = None,
    name: str = "affine",
    caller: str = "as_world_matrix",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A homogeneous voxel -> world or world -> world matrix (tensor, MONAI ``MetaTensor``, array or nested list;
    ``(D + 1, D + 1)`` or ``(1, D + 1, D + 1)``) as a checked float64 ``(D + 1, D + 1)`` tensor on ``device``
    (default: the input's; CPU for arrays).

    Raises:
        TypeError: not a matrix.
        ValueError: not square with ``D`` in (2, 3) (or not ``D = ndim``), or not finite.
    """
    if isinstance(affine, torch.Tensor):
        a = affine.as_tensor() if hasattr(affine, "as_tensor") else affine
        a = a.detach().to(device=device if device is not None else a.device, dtype=torch.float64)
    else:
        try:
            a = torch.as_tensor(np.asarray(affine, dtype=np.float64), device=device)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{caller}: '{name}' must be a square matrix (tensor or array), got {affine!r}.") from e
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] not in (3, 4):
        raise ValueError(f"{caller}: '{name}' must have shape (D + 1, D + 1) with D in (2, 3), got {tuple(a.shape)}.")
    if ndim is not None and a.shape[0] != ndim + 1:
        raise ValueError(
            f"{caller}: '{name}' must have shape ({ndim + 1}, {ndim + 1}) for D={ndim}, got {tuple(a.shape)}."
        )
    if not bool(torch.isfinite(a).all()):
        raise ValueError(f"{caller}: '{name}' must be finite, got {a.tolist()}.")
    return a


def _as_shape(spatial_shape, ndim: int, name: str, caller: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in spatial_shape)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{caller}: '{name}' must be a sequence of {ndim} ints, got {spatial_shape!r}.") from e
    if len(shape) != ndim:
        raise ValueError(f"{caller}: '{name}' must have {ndim} sizes, got {shape}.")
    return shape


def _plain(x: torch.Tensor) -> torch.Tensor:
    """A MONAI ``MetaTensor`` -> plain tensor (its meta data would otherwise follow every operation)."""
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def apply_affine_points(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Homogeneous ``(D + 1, D + 1)`` matrix applied to points ``(D, *S)`` (channel = coordinate), in the points'
    dtype and on their device: ``M[:D, :D] p + M[:D, D]``."""
    ndim = points.shape[0]
    matrix = matrix.to(points)
    flat = points.reshape(ndim, -1)
    out = torch.addmm(matrix[:ndim, ndim : ndim + 1], matrix[:ndim, :ndim], flat)  # one GEMM (einsum: 3x slower)
    return out.reshape(points.shape)


def _index_grid(shape: Sequence[int], start: int, stop: int, device) -> torch.Tensor:
    """Voxel indices ``(D, stop - start, *shape[1:])`` (float64) of the slab ``start:stop`` of axis 0."""
    axes = [torch.arange(start, stop, dtype=torch.float64, device=device)]
    axes += [torch.arange(n, dtype=torch.float64, device=device) for n in shape[1:]]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0)


def _slabs(shape: Sequence[int], channels: int = 1):
    """``(start, stop)`` slabs of axis 0 of about ``_CHUNK_VOXELS / channels`` voxels each."""
    per_slice = max(int(np.prod(shape[1:])) * max(channels, 1), 1)
    step = max(_CHUNK_VOXELS // per_slice, 1)
    for start in range(0, shape[0], step):
        yield start, min(start + step, shape[0])


def normalized_to_world(affine, spatial_shape: Sequence[int]) -> torch.Tensor:
    r"""Matrix ``W`` ``(D + 1, D + 1)`` (float64) from normalised coordinates of a grid to world coordinates.

    .. math::

        W = \mathrm{affine} \cdot \begin{pmatrix} \mathrm{diag}(s) & s \\ 0 & 1 \end{pmatrix},
        \quad s_c = (N_c - 1) / 2,

    since voxel ``i_c = (u_c + 1) (N_c - 1) / 2``. ``u`` is in torch axis order, in ``[-1, 1]`` on the grid.

    Args:
        affine: voxel index (torch axis order) -> world matrix ``(D + 1, D + 1)`` of the grid (MONAI's
            ``MetaTensor.affine``, RAS mm; any world convention is kept as it is).
        spatial_shape: the grid's ``D`` sizes ``N`` (each >= 2).

    Returns:
        ``W`` on the device of ``affine`` (CPU for arrays), float64.
    """
    a = as_world_matrix(affine, None, "affine", "normalized_to_world")
    ndim = a.shape[0] - 1
    shape = _as_shape(spatial_shape, ndim, "spatial_shape", "normalized_to_world")
    if min(shape) < 2:
        raise ValueError(f"normalized_to_world: every size of 'spatial_shape' must be >= 2, got {shape}.")
    s = torch.tensor([(n - 1) / 2.0 for n in shape], dtype=torch.float64, device=a.device)
    n2i = torch.eye(ndim + 1, dtype=torch.float64, device=a.device)
    n2i[:ndim, :ndim] = torch.diag(s)
    n2i[:ndim, ndim] = s
    return a @ n2i


def world_to_normalized(affine, spatial_shape: Sequence[int]) -> torch.Tensor:
    r"""Inverse of :func:`normalized_to_world`: world -> normalised coordinates of the grid, ``W^{-1}`` (float64).

    Raises:
        ValueError: if ``affine`` is singular.
    """
    w = normalized_to_world(affine, spatial_shape)
    if abs(float(torch.linalg.det(w[:-1, :-1]))) < 1e-12:
        raise ValueError(f"world_to_normalized: 'affine' is singular, got {w.tolist()}.")
    return torch.linalg.inv(w)


def voxel_world_points(affine, spatial_shape: Sequence[int]) -> torch.Tensor:
    r"""World coordinates ``affine @ (j, 1)`` of every voxel ``j`` of a grid, ``(D, *spatial_shape)`` float64."""
    a = as_world_matrix(affine, None, "affine", "voxel_world_points")
    shape = _as_shape(spatial_shape, a.shape[0] - 1, "spatial_shape", "voxel_world_points")
    return apply_affine_points(a, _index_grid(shape, 0, shape[0], a.device))


def _jacobian_normalized(phi: torch.Tensor) -> torch.Tensor:
    """``d phi_c / d u_a`` ``(1, D * D, *S)`` of a map ``(1, D, *S)`` (central differences, one-sided at the edges:
    :func:`~monai_avsm.functional.jacobian.jacobian_matrix`)."""
    h = [2.0 / (n - 1) for n in phi.shape[2:]]
    return jacobian_matrix(phi, h).flatten(1, 2)  # channel c * D + a


def map_to_world_points(
    phi: torch.Tensor,
    fixed_affine,
    moving_affine,
    moving_shape: Sequence[int],
    target_affine=None,
    target_shape: Sequence[int] | None = None,
    extrapolation: str = "displacement",
) -> torch.Tensor:
    r"""World points of the moving image that every voxel of a target grid pulls from.

    For a target voxel ``j`` (grid ``target_affine``, ``target_shape``):

    .. math::

        p = A_t j, \quad u = W_f^{-1} p, \quad v = \phi(u), \quad q = W_m v,

    with ``W_f``/``W_m`` the :func:`normalized_to_world` matrices of the fixed and moving working grids. ``phi`` is
    read at ``u`` by linear interpolation (``grid_sample``, ``align_corners=True``). Outside the fixed working grid
    (``|u_c| > 1``; e.g. the outer half voxel of a native grid after ``Resized``) ``phi`` is extended by

    - ``"displacement"`` (default): the normalised displacement ``phi - id`` of the nearest border point,
      ``v = u + (\phi - id)(\mathrm{clamp}(u))`` (border padding of the displacement: far away the map is a
      translation, no folds);
    - ``"linear"``: first-order extrapolation ``v = \phi(\bar u) + J_\phi(\bar u) (u - \bar u)``,
      ``\bar u = \mathrm{clamp}(u, -1, 1)``, with the Jacobian from central differences (one-sided at the border);
      exact for affine maps, so the field equals :func:`theta_to_world_affine` everywhere.

    Args:
        phi: map ``(D, *S)`` or ``(1, D, *S)`` in ``MapSpace.NORMALIZED`` on the fixed working grid, pointing into
            the moving working grid.
        fixed_affine: voxel -> world (RAS mm) matrix ``(D + 1, D + 1)`` of the fixed working grid (shape ``S``).
        moving_affine: voxel -> world matrix of the moving working grid.
        moving_shape: spatial shape of the moving working grid (the grid ``phi``'s values are normalised to).
        target_affine: voxel -> world matrix of the grid to compute the points on (e.g. the fixed image's native
            grid, ``fixed_original_affine``); default: the fixed working grid (then ``q = W_m \phi``, no sampling).
        target_shape: spatial shape of the target grid; required with ``target_affine``.
        extrapolation: ``"displacement"`` or ``"linear"`` (see above).

    Returns:
        the world points ``q`` ``(D, *target_shape)``, float64, on ``phi``'s device.
    """
    caller = "map_to_world_points"
    if not isinstance(phi, torch.Tensor):
        raise TypeError(f"{caller}: 'phi' must be a torch.Tensor, got {type(phi).__name__}.")
    phi = _plain(phi)
    if phi.ndim in (4, 5) and phi.shape[0] == 1:
        phi = phi[0]
    if phi.ndim not in (3, 4) or phi.shape[0] != phi.ndim - 1 or not phi.is_floating_point():
        raise ValueError(
            f"{caller}: 'phi' must be a floating map (D, *S) or (1, D, *S) with D = len(S) in (2, 3), "
            f"got shape {tuple(phi.shape)} and dtype {phi.dtype}."
        )
    if extrapolation not in _EXTRAPOLATIONS:
        raise ValueError(f"{caller}: 'extrapolation' must be one of {_EXTRAPOLATIONS}, got {extrapolation!r}.")
    ndim, device = phi.shape[0], phi.device
    fixed_shape = tuple(phi.shape[1:])
    if min(fixed_shape) < 2:
        raise ValueError(f"{caller}: every spatial size of 'phi' must be >= 2, got shape {tuple(phi.shape)}.")
    fixed = as_world_matrix(fixed_affine, ndim, "fixed_affine", caller, device)
    moving = as_world_matrix(moving_affine, ndim, "moving_affine", caller, device)
    moving_shape = _as_shape(moving_shape, ndim, "moving_shape", caller)
    w_moving = normalized_to_world(moving, moving_shape)
    phi = phi.detach().to(torch.float64)
    if target_affine is None:
        if target_shape is not None and _as_shape(target_shape, ndim, "target_shape", caller) != fixed_shape:
            raise ValueError(
                f"{caller}: without 'target_affine' the target is the fixed working grid {fixed_shape}, "
                f"got 'target_shape' {tuple(target_shape)}."
            )
        return apply_affine_points(w_moving, phi)
    if target_shape is None:
        raise ValueError(f"{caller}: 'target_shape' is required with 'target_affine'.")
    target = as_world_matrix(target_affine, ndim, "target_affine", caller, device)
    target_shape = _as_shape(target_shape, ndim, "target_shape", caller)
    to_fixed = world_to_normalized(fixed, fixed_shape) @ target  # target voxel -> fixed normalised
    phi = phi.unsqueeze(0)
    disp = phi - identity_map(fixed_shape, dtype=torch.float64, device=device)
    jac = _jacobian_normalized(phi) if extrapolation == "linear" else None
    out = torch.empty((ndim, *target_shape), dtype=torch.float64, device=device)
    for start, stop in _slabs(target_shape, ndim):
        u = apply_affine_points(to_fixed, _index_grid(target_shape, start, stop, device))  # (D, *slab)
        u_in = u.clamp(-1.0, 1.0)
        grid = map_to_grid(u_in.unsqueeze(0))
        d = grid_sample(disp, grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
        if jac is None:
            v = u + d
        else:
            v = u_in + d
            outside = u - u_in
            if bool((outside != 0).any()):
                j = grid_sample(jac, grid, mode="bilinear", padding_mode="border", align_corners=True)[0]
                j = j.reshape(ndim, ndim, *j.shape[1:])
                v = v + torch.einsum("ca...,a...->c...", j, outside)
        out[:, start:stop] = apply_affine_points(w_moving, v)
    return out


def world_displacement(points: torch.Tensor, target_affine) -> torch.Tensor:
    r"""World displacement ``points(j) - A_t j`` ``(D, *S)`` (mm, the world convention of the inputs).

    Args:
        points: world points ``(D, *S)`` on the target grid, e.g. from :func:`map_to_world_points`.
        target_affine: voxel -> world matrix ``A_t`` of that grid.
    """
    caller = "world_displacement"
    if not isinstance(points, torch.Tensor) or points.ndim not in (3, 4) or points.shape[0] != points.ndim - 1:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"{caller}: 'points' must be a tensor (D, *S) with D = len(S) in (2, 3), got {shape}.")
    points = _plain(points)
    target = as_world_matrix(target_affine, points.shape[0], "target_affine", caller, points.device)
    shape = tuple(points.shape[1:])
    return points.to(torch.float64) - apply_affine_points(target, _index_grid(shape, 0, shape[0], points.device))


def resample_world(
    image: torch.Tensor, image_affine, points: torch.Tensor, mode: str = "bilinear", padding: float = 0
) -> torch.Tensor:
    r"""Sample an image at world points: ``out(j) = I(A_I^{-1} q(j))``.

    Linear (``"bilinear"``, trilinear in 3D) or nearest neighbour interpolation; outside the image the value is
    ``padding`` (linear interpolation blends with it over the outer half voxel, as ``grid_sample`` zero padding does).

    Args:
        image: channel-first image ``(C, *S_img)`` (or ``(1, C, *S_img)``), any dtype; labels with ``"nearest"``.
        image_affine: its voxel -> world matrix ``A_I`` ``(D + 1, D + 1)``, same world convention as ``points``.
        points: world points ``q`` ``(D, *S_out)``.
        mode: ``"bilinear"`` or ``"nearest"``.
        padding: value outside the image.

    Returns:
        ``(C, *S_out)`` (or ``(1, C, *S_out)``) in the image's dtype; integer images come back with the (rounded)
        values of their voxels, nearest neighbour keeps them exactly.
    """
    caller = "resample_world"
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"{caller}: 'mode' must be 'bilinear' or 'nearest', got {mode!r}.")
    if not isinstance(points, torch.Tensor) or points.ndim not in (3, 4) or points.shape[0] != points.ndim - 1:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"{caller}: 'points' must be a tensor (D, *S_out) with D = len(S_out) in (2, 3), got {shape}.")
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{caller}: 'image' must be a torch.Tensor, got {type(image).__name__}.")
    ndim = points.shape[0]
    image, points = _plain(image), _plain(points)
    batched = image.ndim == ndim + 2
    if batched and image.shape[0] == 1:
        image = image[0]
    if image.ndim != ndim + 1:
        raise ValueError(
            f"{caller}: 'image' must have shape (C, *S) with {ndim} spatial dims like 'points' "
            f"{tuple(points.shape)}, got {tuple(image.shape)}."
        )
    device = image.device
    to_index = world_to_normalized(as_world_matrix(image_affine, ndim, "image_affine", caller, device), image.shape[1:])
    work = image.dtype if image.dtype in (torch.float32, torch.float64) else torch.float64
    src = (image.to(work) - padding).unsqueeze(0)
    out_shape = tuple(points.shape[1:])
    out = torch.empty((image.shape[0], *out_shape), dtype=work, device=device)
    for start, stop in _slabs(out_shape, image.shape[0] + ndim):
        u = apply_affine_points(to_index, points[:, start:stop].to(device=device, dtype=torch.float64))
        grid = map_to_grid(u.unsqueeze(0)).to(work)
        out[:, start:stop] = grid_sample(src, grid, mode=mode, padding_mode="zeros", align_corners=True)[0]
    out = out + padding
    if not image.dtype.is_floating_point and image.dtype != torch.bool:
        out = torch.round(out)
    out = out.to(image.dtype)
    return out.unsqueeze(0) if batched else out


def theta_to_world_affine(
    theta: torch.Tensor, fixed_affine, fixed_shape: Sequence[int], moving_affine, moving_shape: Sequence[int]
) -> torch.Tensor:
    r"""World matrix ``T`` ``(D + 1, D + 1)`` (float64) of an affine result: ``q = T p``, fixed -> moving world.

    .. math:: T = W_m\, \Theta\, W_f^{-1}, \quad \Theta = \begin{pmatrix} A & b \\ 0 & 1 \end{pmatrix}

    with ``theta = [A | b]`` acting on normalised coordinates (:func:`~monai_avsm.functional.affine_to_map`) and
    ``W`` from :func:`normalized_to_world`. ``T`` is a pull-back (point) transform, as ITK's and ANTs' transforms
    of a fixed -> moving registration (convert with :func:`ras_to_lps_affine` for their files).

    Args:
        theta: ``(D, D + 1)`` or ``(1, D, D + 1)``.
        fixed_affine, fixed_shape: voxel -> world matrix and shape of the fixed working grid.
        moving_affine, moving_shape: the same for the moving working grid.
    """
    caller = "theta_to_world_affine"
    if not isinstance(theta, torch.Tensor):
        raise TypeError(f"{caller}: 'theta' must be a torch.Tensor, got {type(theta).__name__}.")
    theta = _plain(theta)
    if theta.ndim == 3 and theta.shape[0] == 1:
        theta = theta[0]
    if theta.ndim != 2 or theta.shape[0] not in (2, 3) or theta.shape[1] != theta.shape[0] + 1:
        raise ValueError(f"{caller}: 'theta' must have shape (D, D + 1) or (1, D, D + 1), got {tuple(theta.shape)}.")
    ndim, device = theta.shape[0], theta.device
    fixed = as_world_matrix(fixed_affine, ndim, "fixed_affine", caller, device)
    moving = as_world_matrix(moving_affine, ndim, "moving_affine", caller, device)
    fixed_shape = _as_shape(fixed_shape, ndim, "fixed_shape", caller)
    moving_shape = _as_shape(moving_shape, ndim, "moving_shape", caller)
    big = torch.eye(ndim + 1, dtype=torch.float64, device=device)
    big[:ndim] = theta.detach().to(torch.float64)
    return normalized_to_world(moving, moving_shape) @ big @ world_to_normalized(fixed, fixed_shape)


def _flip(ndim_plus_one: int, ref: torch.Tensor) -> torch.Tensor:
    f = torch.ones(ndim_plus_one, dtype=ref.dtype, device=ref.device)
    f[:2] = -1.0
    return torch.diag(f)


def ras_to_lps_affine(T) -> torch.Tensor:
    r"""RAS <-> LPS conversion of a world matrix ``(..., D + 1, D + 1)``: ``F T F``, ``F = diag(-1, -1, 1[, 1])``.

    Works for voxel -> world matrices and world -> world transforms alike; it is its own inverse (LPS -> RAS).
    Returns a float64 tensor (arrays are converted).
    """
    t = _plain(T) if isinstance(T, torch.Tensor) else torch.as_tensor(np.asarray(T, dtype=np.float64))
    if t.ndim < 2 or t.shape[-1] != t.shape[-2] or t.shape[-1] not in (3, 4):
        raise ValueError(
            f"ras_to_lps_affine: 'T' must have shape (..., D + 1, D + 1), D in (2, 3), got {tuple(t.shape)}."
        )
    t = t.to(torch.float64)
    f = _flip(t.shape[-1], t)
    return f @ t @ f


def ras_to_lps_vectors(disp: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """RAS <-> LPS conversion of vectors or points (channel ``dim`` = coordinate): the first two components negated.

    Its own inverse (LPS -> RAS). Keeps the dtype; a new tensor is returned.
    """
    if not isinstance(disp, torch.Tensor):
        raise TypeError(f"ras_to_lps_vectors: 'disp' must be a torch.Tensor, got {type(disp).__name__}.")
    if disp.ndim == 0 or disp.shape[dim] not in (2, 3):
        raise ValueError(
            f"ras_to_lps_vectors: 'disp' must have 2 or 3 components along dim {dim}, got shape {tuple(disp.shape)}."
        )
    sign = torch.ones(disp.shape[dim], dtype=disp.dtype, device=disp.device)
    sign[:2] = -1
    shape = [1] * disp.ndim
    shape[dim] = -1
    return _plain(disp) * sign.reshape(shape)


def world_jacobian_determinant(points: torch.Tensor, target_affine, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Determinant of the Jacobian of a world transformation ``p -> q(p)`` sampled on a grid, ``(1, *S)`` float64.

    With ``p = M j + o`` the grid's voxel -> world matrix and :math:`\partial q / \partial j` from central differences
    (one-sided at the faces): :func:`~monai_avsm.functional.jacobian.jacobian_determinant_ddf` of the displacement
    :math:`q(p) - p` with ``voxel_axes=M`` (folds are :math:`\det J \le 0`,
    :func:`~monai_avsm.functional.jacobian.fold_mask`):

    .. math:: \det J(p) = \det\Big( \frac{\partial q}{\partial j}\, M^{-1} \Big)

    (mm per mm; 1 = volume kept, < 1 shrinks, <= 0 folds). Invariant to the world convention (RAS or LPS) as long as
    ``points`` and ``target_affine`` use the same one.

    Args:
        points: world points ``(D, *S)`` (e.g. :func:`map_to_world_points`, or ``A_t j + d`` of a displacement field).
        target_affine: voxel -> world matrix of the grid ``S``.
        dtype: of the derivatives: ``float64`` (default), or ``float32`` (half the time; the derivatives are taken
            of the displacement :math:`q(p) - p`, small numbers, so the determinant keeps about 6 digits).

    Returns:
        ``(1, *S)`` in ``dtype``.
    """
    caller = "world_jacobian_determinant"
    if not isinstance(points, torch.Tensor) or points.ndim not in (3, 4) or points.shape[0] != points.ndim - 1:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"{caller}: 'points' must be a tensor (D, *S) with D = len(S) in (2, 3), got {shape}.")
    points = _plain(points).to(torch.float64)
    ndim = points.shape[0]
    if min(points.shape[1:]) < 2:
        raise ValueError(f"{caller}: every spatial size must be >= 2, got {tuple(points.shape[1:])}.")
    target = as_world_matrix(target_affine, ndim, "target_affine", caller, points.device)
    disp = (points - voxel_world_points(target, points.shape[1:]).to(points)).to(dtype)  # q(p) - p
    return jacobian_determinant_ddf(disp[None], voxel_axes=target[:ndim, :ndim])[0]
