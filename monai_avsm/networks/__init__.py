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
"""AVSM networks (``blocks``: parameter-free building blocks; ``nets``: trainable networks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
    from .blocks import LabelMapWarp, MapAdvection, MapWarp, MultiGaussianSmoother, VSVFWarp
    from .nets import AffineNet, AVSMNet, MomentumUNet, MultiStepAffineNet, VSVFNet

_EXPORTS = {
    "LabelMapWarp": ".blocks",
    "MapAdvection": ".blocks",
    "MapWarp": ".blocks",
    "MultiGaussianSmoother": ".blocks",
    "VSVFWarp": ".blocks",
    "AffineNet": ".nets",
    "AVSMNet": ".nets",
    "MomentumUNet": ".nets",
    "MultiStepAffineNet": ".nets",
    "VSVFNet": ".nets",
}
_SUBMODULES = ("blocks", "nets")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "AVSMNet",
    "AffineNet",
    "LabelMapWarp",
    "MapAdvection",
    "MapWarp",
    "MomentumUNet",
    "MultiGaussianSmoother",
    "MultiStepAffineNet",
    "VSVFNet",
    "VSVFWarp",
]
