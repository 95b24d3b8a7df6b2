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
"""Applications on top of the networks and workflows: one-pair registration (:func:`register`), applying written
transforms (:func:`apply_transforms`), Jacobian summaries, the ``monai-avsm`` command line (:mod:`.cli`) and the
scanner-space evaluation set (:mod:`.scanner_space`)."""

from __future__ import annotations

from .register import apply_transforms, default_bundle_dir, jacobian_summary, load_bundle_network, register
from .scanner_space import ScannerSpaceSettings, build_scanner_space_set, read_pairs_csv

__all__ = [
    "register",
    "apply_transforms",
    "jacobian_summary",
    "load_bundle_network",
    "default_bundle_dir",
    "ScannerSpaceSettings",
    "build_scanner_space_set",
    "read_pairs_csv",
]
