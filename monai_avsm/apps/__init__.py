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
"""Applications on top of the networks and workflows: one-pair and batch registration (:func:`register`,
:func:`register_pairs`, in :mod:`.registration`), the shipped bundle (:mod:`.bundle`), applying written transforms
(:func:`apply_transforms`, :mod:`.apply`), Jacobian summaries (:mod:`.jacobian`), the ``monai-avsm`` command line
(:mod:`.cli`), and the data set builders and checks with a command line (as MONAI keeps its data set builders under
``monai.apps``): the sample data set (:mod:`.sample`), the OAI check (:mod:`.oai`) and the scanner-space evaluation
set (:mod:`.scanner_space`). Imported on first use (``import monai_avsm.apps`` imports nothing heavy, and ``python
-m monai_avsm.apps.sample`` does not find its module imported already)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .apply import apply_transforms as apply_transforms
    from .bundle import default_bundle_dir as default_bundle_dir
    from .bundle import load_bundle_network as load_bundle_network
    from .bundle import load_inference_network as load_inference_network
    from .jacobian import jacobian_summary as jacobian_summary
    from .oai import check_oai_dataset as check_oai_dataset
    from .oai import load_oai_config as load_oai_config
    from .registration import register as register
    from .registration import register_pairs as register_pairs
    from .sample import build_sample_dataset as build_sample_dataset
    from .scanner_space import ScannerSpaceSettings as ScannerSpaceSettings
    from .scanner_space import build_scanner_space_set as build_scanner_space_set

__all__, __getattr__, __dir__ = lazy_package(__name__)
