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
"""Named options of monai_avsm, validated with :func:`monai_avsm.utils.look_up_option` (MONAI's, with a fast path).

Every coordinate convention used in the package is one of :class:`MapSpace`; see ``docs/conventions.md``.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "StrEnum",
    "LossReduction",
    "MapSpace",
    "BoundaryMode",
    "KernelNormalization",
    "ComposeOrder",
    "LabelWarpMode",
]


class StrEnum(str, Enum):
    """A string-valued enum, as :class:`monai.utils.StrEnum` (``str(member)`` is its value), defined here so that the
    option enums import without MONAI (its import costs seconds; see :mod:`monai_avsm.utils.options`). MONAI's
    :func:`~monai.utils.look_up_option` accepts these enums as they are."""

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return self.value


class MapSpace(StrEnum):
    """Coordinate spaces of transformation maps and displacement fields.

    - ``NORMALIZED``: absolute pull-back map, shape ``(B, D, *S)``; channel ``c`` is the coordinate along
      tensor spatial axis ``c`` (torch order, not ITK x, y, z), voxel ``i`` of an axis with ``N`` voxels sits at
      ``2 i / (N - 1) - 1`` (``[-1, 1]``, ``align_corners=True``). The internal space of every AVSM map.
    - ``VOXEL``: displacement field in voxel units, MONAI's :class:`monai.networks.blocks.Warp` convention:
      ``warped(i) = source(i + ddf(i))``, channel ``c`` along tensor axis ``c``.
    """

    NORMALIZED = "normalized"
    VOXEL = "voxel"


class BoundaryMode(StrEnum):
    """Boundary handling of the FFT multi-Gaussian smoother.

    - ``ZERO``: linear convolution with zero padding outside the domain (no wrap-around).
    - ``PERIODIC``: circular convolution, as in the authors' code (opposite faces influence each other).
    """

    ZERO = "zero"
    PERIODIC = "periodic"


class KernelNormalization(StrEnum):
    """How the physical domain is scaled to the unit in which smoother sigmas are given (method spec §1).

    - ``ISOTROPIC``: physical space scaled so that the longest physical side of the image is 1; a Gaussian is
      isotropic in millimetres (the project default, the paper's "isotropic in physical space").
    - ``PER_AXIS``: every axis mapped to ``[0, 1]`` whatever its physical length (the authors' code); anisotropic
      in millimetres for anisotropic images.
    """

    ISOTROPIC = "isotropic"
    PER_AXIS = "per_axis"


class ComposeOrder(StrEnum):
    """Order in which an affine update is composed with the current estimate (multi-step affine net, eq. 1).

    - ``PULLBACK``: ``phi_t = phi_{t-1} o phi~_t``, i.e. ``A_t = A_{t-1} A~_t``, ``b_t = A_{t-1} b~_t + b_{t-1}``.
      The update is estimated between the source warped by ``phi_{t-1}`` and the target, so for pull-back maps this
      order is exact (project default).
    - ``PAPER``: ``phi_t = phi~_t o phi_{t-1}``, i.e. eq. (1) of the paper and the authors' code:
      ``A_t = A~_t A_{t-1}``, ``b_t = A~_t b_{t-1} + b~_t``. Agrees with ``PULLBACK`` to first order near identity.
    """

    PULLBACK = "pullback"
    PAPER = "paper"


class LabelWarpMode(StrEnum):
    """How a label map is warped: ``NEAREST`` neighbour, or ``ONEHOT`` (linear interpolation of the one-hot
    encoding, then argmax: smoother boundaries, more memory)."""

    NEAREST = "nearest"
    ONEHOT = "onehot"


class LossReduction(StrEnum):
    """How a loss reduces over the batch: the values of :class:`monai.utils.LossReduction` (``"none"``, ``"mean"``,
    ``"sum"``), defined here so that the losses import without MONAI (see :mod:`monai_avsm.utils.options`); MONAI's
    members are accepted wherever these are."""

    NONE = "none"
    MEAN = "mean"
    SUM = "sum"
