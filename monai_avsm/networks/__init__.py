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

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .blocks import LabelMapWarp as LabelMapWarp
    from .blocks import MapAdvection as MapAdvection
    from .blocks import MapWarp as MapWarp
    from .blocks import MultiGaussianSmoother as MultiGaussianSmoother
    from .blocks import VSVFWarp as VSVFWarp
    from .nets import AffineNet as AffineNet
    from .nets import AVSMNet as AVSMNet
    from .nets import MomentumUNet as MomentumUNet
    from .nets import MultiStepAffineNet as MultiStepAffineNet
    from .nets import VSVFNet as VSVFNet

__all__, __getattr__, __dir__ = lazy_package(__name__)
