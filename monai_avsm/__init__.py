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
"""monai_avsm: AVSM (joint affine + vSVF deep image registration, Shen et al., CVPR 2019) for MONAI.

Layout (data flows one way): ``functional`` (stateless maths) -> ``networks.blocks`` / ``networks.nets`` ->
``losses`` / ``metrics`` -> handlers and workflows -> ``apps`` (``monai_avsm.register``, the ``monai-avsm`` command)
and ``bundle/`` configs. See ``docs/conventions.md`` for the
coordinate conventions used everywhere.
"""

from __future__ import annotations

__version__ = "0.1.0"

# the subpackages, so that ``import monai_avsm`` is enough for ``$monai_avsm.losses.MKLNCCLoss(...)`` in bundle configs
from . import (  # noqa: E402
    apps,  # noqa: E402  (after the others: it uses them)
    data,
    engines,
    functional,
    handlers,
    losses,
    metrics,
    networks,
    optimization,
    transforms,
    utils,
)
from .apps import apply_transforms, jacobian_summary, register  # noqa: E402

__all__ = [
    "__version__",
    "register",
    "apply_transforms",
    "jacobian_summary",
    "apps",
    "data",
    "engines",
    "functional",
    "handlers",
    "losses",
    "metrics",
    "networks",
    "optimization",
    "transforms",
    "utils",
]
