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

from .enums import BoundaryMode as BoundaryMode
from .enums import ComposeOrder as ComposeOrder
from .enums import KernelNormalization as KernelNormalization
from .enums import LabelWarpMode as LabelWarpMode
from .enums import LossReduction as LossReduction
from .enums import MapSpace as MapSpace
from .enums import StrEnum as StrEnum
from .lazy import lazy_package
from .options import look_up_option as look_up_option

if TYPE_CHECKING:
    from .validation import check_binary_mask as check_binary_mask
    from .validation import check_finite as check_finite
    from .validation import check_image_pair as check_image_pair
    from .validation import check_map as check_map
    from .validation import check_same_spatial_shape as check_same_spatial_shape
    from .validation import check_spatial_tensor as check_spatial_tensor
    from .validation import ensure_spacing as ensure_spacing

__all__, __getattr__, __dir__ = lazy_package(__name__)
