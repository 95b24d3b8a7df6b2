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
"""Enums and input checks shared across monai_avsm."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .enums import BoundaryMode, ComposeOrder, KernelNormalization, LabelWarpMode, LossReduction, MapSpace, StrEnum
from .lazy import lazy_exports
from .options import look_up_option

if TYPE_CHECKING:
    from .validation import (
        check_binary_mask,
        check_finite,
        check_image_pair,
        check_map,
        check_same_spatial_shape,
        check_spatial_tensor,
        ensure_spacing,
    )

__all__ = [
    "BoundaryMode",
    "ComposeOrder",
    "KernelNormalization",
    "LabelWarpMode",
    "LossReduction",
    "MapSpace",
    "StrEnum",
    "look_up_option",
    "check_binary_mask",
    "check_finite",
    "check_image_pair",
    "check_map",
    "check_same_spatial_shape",
    "check_spatial_tensor",
    "ensure_spacing",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
