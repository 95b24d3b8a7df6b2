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
(:mod:`.cli`) and the scanner-space evaluation set (:mod:`.scanner_space`). Imported on first use (``import
monai_avsm.apps`` imports nothing heavy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
    from .apply import apply_transforms
    from .bundle import default_bundle_dir, load_bundle_network, load_inference_network
    from .jacobian import jacobian_summary
    from .registration import register, register_pairs
    from .scanner_space import ScannerSpaceSettings, build_scanner_space_set

_EXPORTS = {
    "register": ".registration",
    "register_pairs": ".registration",
    "apply_transforms": ".apply",
    "jacobian_summary": ".jacobian",
    "load_bundle_network": ".bundle",
    "load_inference_network": ".bundle",
    "default_bundle_dir": ".bundle",
    "ScannerSpaceSettings": ".scanner_space",
    "build_scanner_space_set": ".scanner_space",
}
_SUBMODULES = ("apply", "bundle", "cli", "jacobian", "registration", "scanner_space")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "register",
    "register_pairs",
    "apply_transforms",
    "jacobian_summary",
    "load_bundle_network",
    "load_inference_network",
    "default_bundle_dir",
    "ScannerSpaceSettings",
    "build_scanner_space_set",
]
