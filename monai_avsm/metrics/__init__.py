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
"""Registration metrics MONAI lacks: folding (Jacobian determinant), map symmetry and
inverse consistency. Dice of warped labels uses
MONAI's ``DiceMetric``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # where each name of __all__ is defined: read by type checkers, IDEs and lazy_exports
    from .dice import dice_per_label, stage_dice
    from .dice_metric import DicePerLabelMetric
    from .folding import FoldingMetric, compute_folds
    from .inverse_consistency import compute_inverse_consistency
    from .symmetry import SymmetryMetric, compute_symmetry_error

__all__ = [
    "dice_per_label",
    "stage_dice",
    "DicePerLabelMetric",
    "FoldingMetric",
    "SymmetryMetric",
    "compute_folds",
    "compute_symmetry_error",
    "compute_inverse_consistency",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
