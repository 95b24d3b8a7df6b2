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
r"""Transformation maps: identity, warping, resampling, composition, and conversion to MONAI DDFs (method spec §1).

Convention (``MapSpace.NORMALIZED``, used everywhere in monai_avsm): a map ``phi`` of shape ``(B, D, *S)`` is a
**pull-back** map defined on the target grid ``S``; it gives, for every target voxel, the source position to read,

.. math:: I_{warped}(x) = I_{source}(\phi(x)).

Channel ``c`` is the coordinate along tensor spatial axis ``c`` (torch order, not ITK x, y, z), normalised per axis so
that voxel ``i`` of an axis with ``N`` voxels sits at ``2 i / (N - 1) - 1`` (``[-1, 1]``, ``align_corners=True``).
Because the range does not depend on ``N``, a map can be sampled on, or read from, grids of any size.

MONAI has :class:`monai.networks.blocks.Warp` for voxel-unit DDFs but no absolute maps, composition or map
resampling; those are written here. :func:`map_to_ddf`/:func:`ddf_to_map` bridge the two conventions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from monai_avsm.functional.sampling import grid_sample
from monai_avsm.utils.enums import LabelWarpMode
from monai_avsm.utils.options import look_up_option
from monai_avsm.utils.validation import check_map, check_spatial_tensor

__all__ = [
    "identity_map",
    "map_to_grid",
    "warp_image",
    "warp_label",
    "resample_map",
    "compose_maps",
    "map_to_ddf",
    "ddf_to_map",
]


def identity_map(
    spatial_shape: Sequence[int], dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """Identity map ``(1, D, *spatial_shape)`` in ``MapSpace.NORMALIZED`` (voxel ``i`` at ``2 i / (N - 1) - 1``).

    Raises:
        ValueError: when ``spatial_shape`` does not have 2 or 3 sizes, or a size is below 2.
    """
    shape = tuple(int(s) for s in spatial_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"identity_map: 'spatial_shape' must have 2 or 3 sizes, got {shape}.")
    if min(shape) < 2:
        raise ValueError(f"identity_map: every size of 'spatial_shape' must be >= 2, got {shape}.")
    dtype = dtype or torch.get_default_dtype()
    axes = [torch.linspace(-1.0, 1.0, n, dtype=dtype, device=device) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0)
    return grid.unsqueeze(0)


def map_to_grid(phi: torch.Tensor) -> torch.Tensor:
    """``(B, D, *S)`` map -> ``(B, *S, D)`` sampling grid for :func:`torch.nn.functional.grid_sample`.

    This is the only place where the channel order is reversed: ``grid_sample`` reads its last dimension as
    ``(x, y[, z])`` = (last tensor axis, ..., first tensor axis), while our channel ``c`` is tensor axis ``c``.
    """
    ndim = phi.ndim - 2
    return phi.permute(0, *range(2, ndim + 2), 1).flip(-1)


def _broadcast_batch(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], caller: str):
    if a.shape[0] == b.shape[0]:
        return a, b
    if a.shape[0] == 1:
        return a.expand(b.shape[0], *a.shape[1:]), b
    if b.shape[0] == 1:
        return a, b.expand(a.shape[0], *b.shape[1:])
    raise ValueError(
        f"{caller}: batch sizes of '{names[0]}' ({a.shape[0]}) and '{names[1]}' ({b.shape[0]}) must match or be 1."
    )


def warp_image(
    image: torch.Tensor, phi: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros"
) -> torch.Tensor:
    r"""Warp ``image`` by the pull-back map ``phi``: :math:`I_{warped}(x) = I(\phi(x))`.

    Args:
        image: source ``(B, C, *S_src)``; its grid may differ from the map's.
        phi: map ``(B, D, *S)`` in ``MapSpace.NORMALIZED`` (batch 1 broadcasts).
        mode: ``"bilinear"`` (linear in 2D and 3D) or ``"nearest"``.
        padding_mode: ``"zeros"`` for images (AVSM), ``"border"`` for maps and displacement fields.

    Returns:
        the warped image ``(B, C, *S)`` on the map's grid, in the image's dtype.
    """
    ndim = check_map(phi, "phi", "warp_image")
    if check_spatial_tensor(image, "image", "warp_image") != ndim:
        raise ValueError(
            f"warp_image: 'image' has {image.ndim - 2} spatial dims but 'phi' has {ndim}: "
            f"got shapes {tuple(image.shape)} and {tuple(phi.shape)}."
        )
    image, phi = _broadcast_batch(image, phi, ("image", "phi"), "warp_image")
    grid = map_to_grid(phi.to(image.dtype))
    return grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def warp_label(
    label: torch.Tensor,
    phi: torch.Tensor,
    mode: LabelWarpMode | str = LabelWarpMode.NEAREST,
    num_classes: int | None = None,
) -> torch.Tensor:
    """Warp an integer label map ``(B, 1, *S_src)`` by ``phi``; outside the source, the label is 0 (background).

    Args:
        label: integer-valued label map (integer or floating dtype), one channel.
        phi: map ``(B, D, *S)`` in ``MapSpace.NORMALIZED``.
        mode: ``"nearest"`` neighbour, or ``"onehot"``: each label's indicator is warped linearly and the label with
            the largest weight is taken (smoother boundaries; memory grows with the number of labels).
        num_classes: number of labels for ``"onehot"`` (default: ``max(label) + 1``).

    Returns:
        the warped labels ``(B, 1, *S)`` in the dtype of ``label``.

    Raises:
        ValueError: if ``label`` has more than one channel, or values that are not non-negative integers.
    """
    mode = look_up_option(mode, LabelWarpMode)
    if not isinstance(label, torch.Tensor) or label.ndim != phi.ndim or label.shape[1] != 1:
        shape = tuple(label.shape) if isinstance(label, torch.Tensor) else type(label).__name__
        raise ValueError(f"warp_label: 'label' must have shape (B, 1, *S) like 'phi' {tuple(phi.shape)}, got {shape}.")
    if label.is_floating_point() and not bool((label == torch.round(label)).all()):
        raise ValueError("warp_label: 'label' must hold integer values (a label map), got non-integer values.")
    if label.numel() and int(label.min()) < 0:
        raise ValueError(f"warp_label: 'label' values must be >= 0, got minimum {int(label.min())}.")
    work_dtype = phi.dtype if phi.is_floating_point() else torch.get_default_dtype()
    if mode == LabelWarpMode.NEAREST:
        out = warp_image(label.to(work_dtype), phi, mode="nearest", padding_mode="zeros")
        return torch.round(out).to(label.dtype)
    n = int(num_classes) if num_classes is not None else int(label.max()) + 1
    onehot = F.one_hot(label[:, 0].long(), n).movedim(-1, 1).to(work_dtype)
    warped = warp_image(onehot, phi, mode="bilinear", padding_mode="zeros")
    # outside the source every class weight is 0: argmax then picks class 0 (background), as zero padding would
    return warped.argmax(dim=1, keepdim=True).to(label.dtype)


def resample_map(phi: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Sample the map ``phi`` on a grid of another size (same physical domain), linear interpolation.

    The target grid's voxel centres all lie inside the source domain (both span ``[-1, 1]``), so this is the border
    padded ``grid_sample`` of the identity of ``spatial_shape`` and is computed with ``F.interpolate``
    (``align_corners=True``), which samples exactly those positions.
    """
    ndim = check_map(phi, "phi", "resample_map")
    shape = tuple(int(s) for s in spatial_shape)
    if len(shape) != ndim:
        raise ValueError(f"resample_map: 'spatial_shape' must have {ndim} sizes, got {shape}.")
    if shape == tuple(phi.shape[2:]):
        return phi
    return F.interpolate(phi, size=shape, mode="bilinear" if ndim == 2 else "trilinear", align_corners=True)


def compose_maps(phi_outer: torch.Tensor, phi_inner: torch.Tensor) -> torch.Tensor:
    r"""Composition of pull-back maps :math:`(\phi_{outer} \circ \phi_{inner})(x) = \phi_{outer}(\phi_{inner}(x))`.

    Warping an image by the result equals warping it by ``phi_outer`` and then the result by ``phi_inner``:
    :math:`I \circ \phi_{outer} \circ \phi_{inner}`. ``phi_outer`` is interpolated linearly with border padding.

    Args:
        phi_outer: ``(B, D, *S_outer)``, applied last (read at the positions ``phi_inner`` gives).
        phi_inner: ``(B, D, *S)``, applied first; the result lives on its grid.
    """
    ndim = check_map(phi_outer, "phi_outer", "compose_maps")
    if check_map(phi_inner, "phi_inner", "compose_maps") != ndim:
        raise ValueError(
            f"compose_maps: 'phi_outer' and 'phi_inner' must have the same number of spatial dims, "
            f"got shapes {tuple(phi_outer.shape)} and {tuple(phi_inner.shape)}."
        )
    return warp_image(phi_outer, phi_inner, mode="bilinear", padding_mode="border")


def _voxel_scale(spatial_shape: Sequence[int], ref: torch.Tensor) -> torch.Tensor:
    """Voxels per normalised unit, ``(N - 1) / 2``, shaped ``(1, D, 1, ..., 1)`` to broadcast against a map."""
    ndim = len(spatial_shape)
    scale = torch.tensor([(n - 1) / 2.0 for n in spatial_shape], dtype=ref.dtype, device=ref.device)
    return scale.reshape(1, ndim, *([1] * ndim))


def map_to_ddf(phi: torch.Tensor) -> torch.Tensor:
    r"""Normalised pull-back map -> MONAI voxel-unit DDF on the same grid.

    .. math:: u_c(i) = (\phi_c(i) + 1) (N_c - 1) / 2 - i_c

    so that ``monai.networks.blocks.Warp()(image, u)`` equals :func:`warp_image` ``(image, phi)`` when the image
    has the map's grid (MONAI's Warp needs equal grids; :func:`warp_image` does not).
    """
    check_map(phi, "phi", "map_to_ddf")
    shape = tuple(phi.shape[2:])
    scale = _voxel_scale(shape, phi)
    ident = identity_map(shape, dtype=phi.dtype, device=phi.device)
    return (phi - ident) * scale


def ddf_to_map(ddf: torch.Tensor) -> torch.Tensor:
    r"""MONAI voxel-unit DDF -> normalised pull-back map on the same grid (inverse of :func:`map_to_ddf`).

    .. math:: \phi_c(i) = 2 (i_c + u_c(i)) / (N_c - 1) - 1
    """
    check_map(ddf, "ddf", "ddf_to_map")
    shape = tuple(ddf.shape[2:])
    scale = _voxel_scale(shape, ddf)
    ident = identity_map(shape, dtype=ddf.dtype, device=ddf.device)
    return ident + ddf / scale
