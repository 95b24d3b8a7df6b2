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
"""Registration metrics: the per-pair measures of the paper's evaluation (§3) as functions and MONAI cumulative metrics
(``bundle/configs/evaluate.json`` attaches them to the evaluator through ``IgniteMetricHandler``).

- Dice per label of warped labels: :func:`dice_per_label` and :func:`stage_dice` (no MONAI import, for the
  one-pair command), :class:`DicePerLabelMetric` (the same numbers; MONAI's ``compute_dice`` convention, tested
  equal);
- folding (Jacobian determinant): :func:`compute_folds`, :class:`FoldingMetric`;
- map symmetry of two passes A->B, B->A: :func:`compute_symmetry_error`, :class:`SymmetryMetric`;
- inverse consistency of a transform and its computed inverse, in mm: :func:`compute_inverse_consistency`.

MONAI has no folding, symmetry or inverse-consistency metric.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
    from .dice import dice_per_label, stage_dice
    from .dice_metric import DicePerLabelMetric
    from .folding import FoldingMetric, compute_folds
    from .inverse_consistency import compute_inverse_consistency
    from .symmetry import SymmetryMetric, compute_symmetry_error

_EXPORTS = {
    "dice_per_label": ".dice",
    "stage_dice": ".dice",
    "DicePerLabelMetric": ".dice_metric",
    "FoldingMetric": ".folding",
    "compute_folds": ".folding",
    "compute_inverse_consistency": ".inverse_consistency",
    "SymmetryMetric": ".symmetry",
    "compute_symmetry_error": ".symmetry",
}
_SUBMODULES = ("base", "dice", "dice_metric", "folding", "inverse_consistency", "symmetry")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

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
