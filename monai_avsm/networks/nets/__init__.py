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
"""Trainable AVSM networks: the multi-step affine net, the momentum U-Net, the multi-step vSVF net and AVSMNet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .affine_net import AffineNet as AffineNet
    from .affine_net import MultiStepAffineNet as MultiStepAffineNet
    from .avsm_net import AVSMNet as AVSMNet
    from .base import MultiStepRegistrationNet as MultiStepRegistrationNet
    from .base import split_symmetric as split_symmetric
    from .momentum_net import MomentumUNet as MomentumUNet
    from .vsvf_net import VSVFNet as VSVFNet

__all__, __getattr__, __dir__ = lazy_package(__name__)
