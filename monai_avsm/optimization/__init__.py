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
r"""Per-pair optimisation (method spec §8): the affine-opt and vSVF-opt baselines of the paper's Table 1, and the
test-time refinement of an ``AVSMNet`` output.

- :func:`affine_opt`: :math:`\theta = [A | b]` per pair, coarse to fine, mk-LNCC, Adam;
- :func:`vsvf_opt`: the vSVF momentum per pair, coarse to fine, L-BFGS, the network's smoother and integrator;
- :func:`refine`: one more vSVF step optimised from the network's final map, never worse than the network;
- :func:`initial_alignment`: world-space alignment of two scans from any starting position (centre of mass, a
  rotation search, affine-opt on two resolutions, the best-scoring candidate wins); :func:`center_of_mass_alignment`
  alone for the fast path.
- :func:`deformable_opt`: vSVF optimisation at the fixed image's own grid, levels 1/4, 1/2, 1 with anatomy presets
  (:data:`PRESETS`), a fold safeguard, a time budget and mk-LNCC or mutual information.

Typical use::

    from monai_avsm.optimization import affine_opt, vsvf_opt

    aff = affine_opt(moving, fixed)
    out = vsvf_opt(moving, fixed, initial_map=aff["map"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .affine import affine_opt as affine_opt
    from .alignment import center_of_mass_alignment as center_of_mass_alignment
    from .alignment import initial_alignment as initial_alignment
    from .deformable import PRESETS as PRESETS
    from .deformable import DeformablePreset as DeformablePreset
    from .deformable import deformable_opt as deformable_opt
    from .refinement import refine as refine
    from .vsvf import vsvf_opt as vsvf_opt

__all__, __getattr__, __dir__ = lazy_package(__name__)
