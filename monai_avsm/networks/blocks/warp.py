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
"""Warping by AVSM maps as modules: images (linear, zero padding) and label maps (nearest or one-hot).

Thin wrappers of :func:`monai_avsm.functional.warp_image` / :func:`~monai_avsm.functional.warp_label`. Unlike
MONAI's :class:`monai.networks.blocks.Warp`, which takes a voxel DDF on the image's own grid, these take an absolute
normalised map, so the source may live on a grid of another size than the map (method spec §1).
"""

from __future__ import annotations

import torch
from torch import nn

from monai_avsm.functional.maps import warp_image, warp_label
from monai_avsm.utils.enums import LabelWarpMode
from monai_avsm.utils.options import look_up_option

__all__ = ["MapWarp", "LabelMapWarp"]


class MapWarp(nn.Module):
    r"""Warp an image by a pull-back map: :math:`I_{warped}(x) = I(\phi(x))`.

    Args:
        mode: ``"bilinear"`` (linear interpolation, 2D and 3D) or ``"nearest"``.
        padding_mode: ``"zeros"`` (images, AVSM default), ``"border"`` or ``"reflection"``.

    Example::

        >>> phi = identity_map((32, 32))
        >>> MapWarp()(image, phi)  # == image
    """

    def __init__(self, mode: str = "bilinear", padding_mode: str = "zeros") -> None:
        super().__init__()
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"MapWarp: 'mode' must be 'bilinear' or 'nearest', got {mode!r}.")
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(
                f"MapWarp: 'padding_mode' must be 'zeros', 'border' or 'reflection', got {padding_mode!r}."
            )
        self.mode = mode
        self.padding_mode = padding_mode

    def forward(self, image: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``image`` ``(B, C, *S_src)``, ``phi`` ``(B, D, *S)`` -> ``(B, C, *S)``."""
        return warp_image(image, phi, mode=self.mode, padding_mode=self.padding_mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, padding_mode={self.padding_mode!r}"


class LabelMapWarp(nn.Module):
    """Warp an integer label map by a pull-back map (``"nearest"``, or ``"onehot"`` linear then argmax).

    Args:
        mode: :class:`~monai_avsm.utils.enums.LabelWarpMode`.
        num_classes: number of labels for ``"onehot"`` (default: from the data).
    """

    def __init__(self, mode: LabelWarpMode | str = LabelWarpMode.NEAREST, num_classes: int | None = None) -> None:
        super().__init__()
        self.mode = look_up_option(mode, LabelWarpMode)
        self.num_classes = num_classes

    def forward(self, label: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``label`` ``(B, 1, *S_src)``, ``phi`` ``(B, D, *S)`` -> ``(B, 1, *S)``, dtype of ``label``."""
        return warp_label(label, phi, mode=self.mode, num_classes=self.num_classes)

    def extra_repr(self) -> str:
        return f"mode={self.mode.value!r}, num_classes={self.num_classes}"
