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
"""AVSM losses as MONAI losses (``torch.nn.modules.loss._Loss`` with ``reduction``), usable from bundle configs by
dotted ``_target_`` (e.g. ``"monai_avsm.losses.MKLNCCLoss"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .affine import AffineRegularizationLoss as AffineRegularizationLoss
    from .affine import AffineRegularizationWeight as AffineRegularizationWeight
    from .affine import AffineSymmetryLoss as AffineSymmetryLoss
    from .avsm import AVSMLoss as AVSMLoss
    from .global_ncc import GlobalNCCLoss as GlobalNCCLoss
    from .mk_lncc import MKLNCCLoss as MKLNCCLoss
    from .vsvf import MapSymmetryLoss as MapSymmetryLoss
    from .vsvf import MomentumRegularizationLoss as MomentumRegularizationLoss

__all__, __getattr__, __dir__ = lazy_package(__name__)
