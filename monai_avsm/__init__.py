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
(:func:`~monai_avsm.utils.lazy.lazy_package`), so ``$import monai_avsm`` and then ``$monai_avsm.losses.MKLNCCLoss(...)``
in a bundle config work as with eager imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__ as __version__
from .utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from . import apps as apps
    from . import data as data
    from . import engines as engines
    from . import functional as functional
    from . import handlers as handlers
    from . import losses as losses
    from . import metrics as metrics
    from . import networks as networks
    from . import optimization as optimization
    from . import transforms as transforms
    from . import utils as utils
    from . import visualize as visualize
    from .apps import apply_transforms as apply_transforms
    from .apps import jacobian_summary as jacobian_summary
    from .apps import register as register
    from .apps import register_pairs as register_pairs

__all__, __getattr__, __dir__ = lazy_package(__name__)
