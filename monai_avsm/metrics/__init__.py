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

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .dice import dice_per_label as dice_per_label
    from .dice import stage_dice as stage_dice
    from .dice_metric import DicePerLabelMetric as DicePerLabelMetric
    from .folding import FoldingMetric as FoldingMetric
    from .folding import compute_folds as compute_folds
    from .inverse_consistency import compute_inverse_consistency as compute_inverse_consistency
    from .symmetry import SymmetryMetric as SymmetryMetric
    from .symmetry import compute_symmetry_error as compute_symmetry_error

__all__, __getattr__, __dir__ = lazy_package(__name__)
