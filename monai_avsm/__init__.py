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

Layout (imports run one way, checked by ``tests/test_layering.py``): ``utils`` -> ``functional`` (stateless maths)
-> ``networks`` / ``losses`` / ``metrics`` / ``transforms`` / ``data`` / ``visualize`` -> ``optimization`` ->
``engines`` / ``handlers`` -> ``apps`` (``monai_avsm.register``, the ``monai-avsm`` command, the data set builders)
and the ``bundle/`` configs. See ``docs/conventions.md`` for the coordinate conventions used everywhere.

``import monai_avsm`` imports no torch and no MONAI: the subpackages (and ``register`` ...) are imported on first use
(:func:`~monai_avsm.utils.lazy.lazy_exports`), so ``$import monai_avsm`` and then ``$monai_avsm.losses.MKLNCCLoss(...)``
in a bundle config work as with eager imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .utils.lazy import lazy_exports

if TYPE_CHECKING:  # where each name of __all__ is defined: read by type checkers, IDEs and lazy_exports
    from . import (
        apps,
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
        visualize,
    )
    from .apps import apply_transforms, jacobian_summary, register, register_pairs

__all__ = [
    "__version__",
    "register",
    "register_pairs",
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
    "visualize",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
