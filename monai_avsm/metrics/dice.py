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
r"""Dice overlap per label of two label maps, for the per-pair reports: the one Dice implementation of monai_avsm.

:math:`\mathrm{Dice}_l = 2 |P_l \cap G_l| / (|P_l| + |G_l|)` for every foreground label :math:`l`, with MONAI's
``compute_dice(include_background=False, ignore_empty=False)`` convention for a label absent from the ground truth
(1 when the prediction lacks it too, else 0); tested equal to MONAI's. Written with one ``torch.bincount`` instead of
MONAI's one-hot tensors because the one-pair command must not pay ``import monai`` (about 3 s on 2 CPU cores), and
a one-hot encoding of a 2.4-million-voxel grid per label is the slower path anyway.

- :func:`dice_per_label`: two label maps;
- :func:`stage_dice`: the moving label warped at each stage of a registration (before, affine part, AVSM) against
  the fixed label, as ``monai-avsm register`` reports it;
- :class:`~monai_avsm.metrics.DicePerLabelMetric` (``metrics/dice_metric.py``, which imports MONAI): the same
  numbers as a MONAI cumulative metric, for the bundle's evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["dice_per_label", "stage_dice"]


def dice_per_label(pred_label: torch.Tensor, target_label: torch.Tensor, num_classes: int) -> list[float]:
    """Dice of every foreground label ``1 .. num_classes - 1`` of two integer label maps of one shape.

    Raises:
        ValueError: different shapes, or labels outside ``0 .. num_classes - 1``.
    """
    p = torch.as_tensor(pred_label).reshape(-1).long()
    t = torch.as_tensor(target_label).reshape(-1).long()
    if p.shape != t.shape:
        raise ValueError(
            f"dice_per_label: the label maps have different sizes, {tuple(pred_label.shape)} and "
            f"{tuple(target_label.shape)}."
        )
    n = int(num_classes)
    for name, x in (("pred_label", p), ("target_label", t)):
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= n):
            raise ValueError(f"dice_per_label: '{name}' has labels outside 0 .. {n - 1} (num_classes={n}).")
    joint = torch.bincount(p * n + t, minlength=n * n).reshape(n, n).double()  # joint[i, j]: pred i, target j
    inter = joint.diagonal()
    size_p, size_t = joint.sum(1), joint.sum(0)
    out = []
    for label in range(1, n):
        if size_t[label] == 0:
            out.append(1.0 if size_p[label] == 0 else 0.0)
        else:
            out.append(float(2 * inter[label] / (size_p[label] + size_t[label])))
    return out


def stage_dice(
    stage_labels: Mapping[str, torch.Tensor], fixed_label: torch.Tensor, num_classes: int
) -> dict[str, list[float]]:
    """:func:`dice_per_label` of the moving label as warped at each stage of a registration against ``fixed_label``.

    Args:
        stage_labels: stage name -> the warped moving label on the fixed label's grid, e.g. ``{"identity", "affine",
            "avsm"}`` from :func:`monai_avsm.engines.evaluation.stage_labels` (before registration, after the affine
            part, after AVSM, on the fixed image's native grid).
        fixed_label: the fixed label map.
        num_classes: labels including background (0).

    Returns:
        stage name -> the Dice of the labels ``1 .. num_classes - 1``, in the order of ``stage_labels``.
    """
    return {stage: dice_per_label(label, fixed_label, num_classes) for stage, label in stage_labels.items()}
