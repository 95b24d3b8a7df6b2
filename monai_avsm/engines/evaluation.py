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
"""What the registration measures need beyond the network's output, computed after the forward pass.

- :func:`stage_labels`: the moving label (read from its file) warped onto the fixed image's native grid before
  registration (``"identity"``), by the affine part (``"affine"``) and by AVSM (``"avsm"``), the inputs of
  :func:`~monai_avsm.metrics.stage_dice` (``monai-avsm register``) and of the bundle's Dice metrics;
- :class:`NativeStageLabels` and :class:`SwappedPass`: an evaluator's ``postprocessing`` (MONAI's ``decollate=False``
  convention: a callable on the batch merged with the output, whose new keys go to ``engine.state.output``) that put
  these labels and the map of the swapped pair (fixed -> moving, for the symmetry measure) into the output, where the
  metrics of ``bundle/configs/evaluate.json`` (``IgniteMetricHandler`` of :mod:`monai_avsm.metrics`) read them.

Torch only: the one-pair command imports :func:`stage_labels` without MONAI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from monai_avsm.engines.native import NativeResampler, pair_geometry, pair_name

__all__ = ["STAGES", "stage_labels", "NativeStageLabels", "SwappedPass"]

#: the stages of a registration that the Dice is reported at: before, after the affine part, after AVSM.
STAGES = ("identity", "affine", "avsm")


def stage_labels(resampler: NativeResampler, pred: Mapping[str, Any], index: int = 0) -> dict[str, torch.Tensor]:
    """The moving label warped (nearest neighbour, from its file) onto the fixed image's native grid at every stage.

    Args:
        resampler: the pair's :class:`~monai_avsm.engines.NativeResampler`.
        pred: the network's output (``"affine"`` ``(B, D, D + 1)`` and ``"map"`` ``(B, D, *S)``).
        index: the batch item.

    Returns:
        ``{"identity", "affine", "avsm"}`` -> ``(1, *native_shape)`` label maps (:data:`STAGES` order), or ``None``
        values when the pair has no moving label file.
    """
    r = resampler
    points = {
        "identity": r.identity_points(),
        "affine": r.affine_points(pred["affine"][index].detach().cpu()),
        "avsm": r.points(pred["map"][index].detach()),
    }
    return {stage: r.warp(points[stage], label=True) for stage in STAGES}


class NativeStageLabels:
    """Evaluator postprocessing: for every item of the batch, :func:`stage_labels` and the fixed label as read.

    Adds ``moving_label_identity``, ``moving_label_affine``, ``moving_label_avsm`` and ``fixed_label_native``: lists
    (one entry per item; the pairs' native grids differ) of ``(1, *native_shape)`` integer label maps, which MONAI
    metrics take as lists of channel-first tensors.

    Args:
        pred_key: the key of the network's output in the merged dict.

    Raises:
        KeyError: a pair has no moving or fixed label file (the message names the pair).
    """

    def __init__(self, pred_key: str = "pred") -> None:
        self.pred_key = pred_key

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(data)
        pred = d[self.pred_key]
        out: dict[str, list] = {f"moving_label_{stage}": [] for stage in STAGES}
        out["fixed_label_native"] = []
        for b in range(pred["map"].shape[0]):
            g = pair_geometry(d, b)
            r = NativeResampler(g)
            fixed_label = r.fixed_label()
            if fixed_label is None or r.moving(label=True) is None:
                raise KeyError(
                    f"NativeStageLabels: pair {pair_name(g, b)!r} needs 'moving_label' and 'fixed_label' files."
                )
            out["fixed_label_native"].append(fixed_label.as_tensor())
            for stage, label in stage_labels(r, pred, b).items():
                out[f"moving_label_{stage}"].append(label)
        d.update(out)
        return d


class SwappedPass:
    """Evaluator postprocessing: the network run again on the swapped pair (fixed -> moving), no gradients.

    Adds ``map_ts`` ``(B, D, *S)``: the map of ``network(fixed, moving)`` (the ``_ts`` suffix of the network's
    symmetric output: target -> source), which :class:`~monai_avsm.metrics.SymmetryMetric` composes with the
    forward map. The network runs in the mode the evaluator leaves it in after its forward pass.

    Args:
        network: the evaluated network.
        moving_key, fixed_key: the keys of the network's inputs in the merged dict (``SupervisedEvaluator`` keeps
            what :class:`~monai_avsm.engines.PreparePairBatch` returns as ``"image"`` and ``"label"``).
    """

    def __init__(self, network: torch.nn.Module, moving_key: str = "image", fixed_key: str = "label") -> None:
        self.network, self.moving_key, self.fixed_key = network, moving_key, fixed_key

    def __call__(self, data: Mapping[str, Any]) -> dict[str, Any]:
        d = dict(data)
        with torch.no_grad():
            d["map_ts"] = self.network(d[self.fixed_key], d[self.moving_key])["map"]
        return d
