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
"""Building blocks of AVSM as ``nn.Module``s: map warping, the multi-Gaussian smoother, RK4 map advection and
the vSVF warp block."""

from __future__ import annotations

from monai_avsm.utils.lazy import exported_names

from .integrator import MapAdvection as MapAdvection
from .smoother import MultiGaussianSmoother as MultiGaussianSmoother
from .vsvf_warp import VSVFWarp as VSVFWarp
from .warp import LabelMapWarp as LabelMapWarp
from .warp import MapWarp as MapWarp

__all__ = exported_names(__name__)
