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
r"""Handlers of the bundle's inference and evaluation: results written on the fixed image's native grid in world
space, and the report of the paper's evaluation measures (method spec §6) per pair.

- :class:`RegistrationWriter` (inference): per pair a folder with the warped moving image and label on the fixed
  image's native grid, the dense displacement field as an ITK/ANTs/Slicer warp (world space, LPS vectors), the
  affine part as ITK transform files (``.tfm`` and ANTs' ``.mat``), a PNG preview and a JSON record.
- :class:`RegistrationEvaluation` (evaluation): the per-pair rows, ``metrics.csv``, ``summary.json``, box plots and a
  table in the log, from the MONAI metrics the evaluator computes (``bundle/configs/evaluate.json``): the Dice of the
  warped moving label against the fixed label on the fixed native grid before registration, after the affine part
  and after AVSM (:class:`~monai_avsm.metrics.DicePerLabelMetric` on the labels of
  :class:`~monai_avsm.engines.NativeStageLabels`), folds (true determinant of the Jacobian <= 0) and mean |det J|
  over them (:class:`~monai_avsm.metrics.FoldingMetric`), the symmetry measure
  :math:`\ln(\frac{1}{|V|}\|\Phi_{AB} \circ \Phi_{BA} - id\|^2)` on the interior
  (:class:`~monai_avsm.metrics.SymmetryMetric` with :class:`~monai_avsm.engines.SwappedPass`); it adds the time of
  the network's forward pass and the device.

Both read the pair's files and geometry from the batch (the loading ``Compose`` keeps them), so they work with
MONAI's stock ``SupervisedEvaluator`` (``decollate=False``).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from monai.engines.utils import IterationEvents
from monai.utils import evenly_divisible_all_gather

from monai_avsm.engines.accurate import accurate_registration
from monai_avsm.engines.evaluation import STAGES
from monai_avsm.engines.native import NativeResampler, pair_geometry, pair_name
from monai_avsm.engines.results import write_pair_outputs
from monai_avsm.handlers._ignite import Engine, Events
from monai_avsm.utils.jsonable import to_jsonable

__all__ = ["RegistrationWriter", "RegistrationEvaluation"]


def _unique_folder(root: str, name: str) -> str:
    """``root/name``, else the first free ``root/name_2``, ``name_3``, ... (created). Safe when several processes
    write into one ``root`` (sharded inference): ``os.makedirs`` claims a name atomically, a taken one is skipped."""
    n = 1
    while True:
        path = os.path.join(root, name if n == 1 else f"{name}_{n}")
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            n += 1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class RegistrationWriter:
    """Write each pair's registration into ``output_dir/<moving>_to_<fixed>/`` (a new folder; never overwrites).

    Files: ``warped.nii.gz`` (moving image, original intensities, on the fixed native grid), ``warped_label.nii.gz``
    (when the pair has a moving label; nearest neighbour), ``displacement_field.nii.gz`` (world-space pull-back
    displacement, ITK vector image in LPS: ``antsApplyTransforms -t displacement_field.nii.gz``, ITK
    ``DisplacementFieldTransform``, Slicer "Transforms"), ``affine.tfm`` and ``affine.mat`` (the affine part alone,
    ITK ``AffineTransform``; the displacement field already includes it), ``deformable_field.nii.gz`` (the
    deformable part alone), ``jacobian_determinant.nii.gz``, the inverse direction (``inverse_*``: the fixed image
    and label on the moving native grid, the inverse fields and affine), ``preview.png`` (working grid: moving,
    fixed, warped, checkerboard, deformed grid) and ``registration.json`` (files, geometry, inverse consistency,
    folds, times). The files are those of :func:`~monai_avsm.engines.write_pair_outputs`, shared with
    :func:`monai_avsm.register`.

    Args:
        output_dir: root folder (use :func:`~monai_avsm.engines.new_output_dir` for a fresh one per run).
        preview: write the PNG (needs matplotlib).
        network: the registration network; its vSVF integrator computes the inverse transforms (without it the
            inverse is written only for affine-only results).
        field, affine, label: write the displacement fields, the affine files, the warped labels.
        inverse: write the inverse direction (:func:`~monai_avsm.engines.write_pair_outputs`).
        mode: ``"fast"`` writes the network's result (the paper's one pass); ``"accurate"`` starts from it and runs
            :func:`~monai_avsm.engines.accurate.accurate_registration` on the pair's files (initial alignment with
            the network's affine as one candidate, then vSVF optimisation at the fixed image's own grid), as
            ``monai-avsm register`` does by default, and writes that.
        max_seconds: wall-time budget of the accurate mode's optimisation per pair.
        similarity: the accurate mode's similarity, ``"lncc"`` or ``"mi"``.
    """

    def __init__(
        self,
        output_dir: str,
        network: torch.nn.Module | None = None,
        preview: bool = True,
        field: bool = True,
        affine: bool = True,
        label: bool = True,
        inverse: bool = True,
        mode: str = "fast",
        max_seconds: float | None = None,
        similarity: str = "lncc",
    ) -> None:
        if mode not in ("fast", "accurate"):
            raise ValueError(f"RegistrationWriter: 'mode' must be 'fast' or 'accurate', got {mode!r}.")
        self.output_dir = str(output_dir)
        self.network = network
        self.preview, self.field, self.affine, self.label, self.inverse = preview, field, affine, label, inverse
        self.mode, self.max_seconds, self.similarity = mode, max_seconds, similarity
        self.written: list[dict] = []
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        batch, pred = engine.state.batch, engine.state.output["pred"]
        for b in range(pred["map"].shape[0]):
            self.write_pair(batch, pred, b)

    def write_pair(self, batch: dict, pred: dict, index: int = 0) -> dict:
        g = pair_geometry(batch, index)
        folder = _unique_folder(self.output_dir, pair_name(g, index))
        integrator = None
        vsvf = getattr(self.network, "vsvf_net", None) if self.network is not None else None
        if vsvf is not None:
            integrator = vsvf.warp.integrator
        resampler = NativeResampler(g)
        report = None
        if self.mode == "accurate":
            if not (g.get("moving_file") and g.get("fixed_file")):
                raise ValueError("RegistrationWriter: mode='accurate' needs the pair's files (the batch has no names).")
            images = {k: resampler.image(k) for k in ("moving", "fixed", "moving_label", "fixed_label")}
            images = {k: v for k, v in images.items() if v is not None}
            network_affine = resampler.world_affine(pred["affine"][index].detach().cpu())
            files = {k: g.get(f"{k}_file") for k in images}
            device = pred["map"].device
            pred, g, integrator, report = accurate_registration(
                images, None, files, network_affine, device, self.max_seconds, None, None, self.similarity
            )
            index = 0
            resampler = NativeResampler(g, images=images)
        record = write_pair_outputs(
            folder,
            g,
            pred,
            index,
            integrator=integrator,
            preview=self.preview,
            field=self.field,
            affine=self.affine,
            label=self.label,
            inverse=self.inverse and (integrator is not None or not pred.get("velocities")),
            resampler=resampler,
        )
        if report is not None:
            record["registration"] = to_jsonable({"mode": "accurate", **report})
        with open(os.path.join(folder, "registration.json"), "x") as f:
            json.dump(record, f, indent=2)
        self.written.append({"folder": folder, **record})
        self.logger.info(f"wrote {folder}: {', '.join(sorted(record['files']))}")
        return record


class RegistrationEvaluation:
    """The per-pair report of an evaluation whose measures are MONAI metrics of the evaluator: ``metrics.csv`` (one
    row per pair), ``summary.json`` (mean, sd, min, max per column), ``dice.png`` (box plot of the mean Dice per stage,
    like the paper's Fig. 5), ``dice_per_label.png`` and a table in the log, in ``output_dir``.

    The measures are computed by the metrics attached to the evaluator (``key_val_metric`` /
    ``additional_metrics``, e.g. ``IgniteMetricHandler`` with :mod:`monai_avsm.metrics`, as in
    ``bundle/configs/evaluate.json``); this handler reads their values per pair from ``engine.state.metric_details``
    when the epoch completes, and adds the pair's files, the time of the network's forward pass (per pair: the
    iteration's time over its batch size), the device and the torch threads.

    Args:
        output_dir: where the files go (a fresh folder, :func:`~monai_avsm.engines.new_output_dir`).
        num_classes: labels including background (0).
        label_names: names of the labels 1 .. num_classes - 1 for the columns.
        plots: write the box plots (needs matplotlib).
        summarize: write the files when the run completes; ``False``: the caller calls :meth:`finish` (sharded
            evaluation: rank 0, once it has every rank's ``rows``, :func:`~monai_avsm.engines.merge_shard_evaluation`).
        label_measures: metrics with one value per foreground label (Dice): each gives a column with the mean over the
            labels and one column ``<name>_<label name>`` per label.
        measures: metrics with one value per pair, one column each.
        counts: the measures written as integers (a fold count).

    Metrics of ``label_measures`` and ``measures`` that the evaluator does not have are left out (e.g. no symmetry
    measure without a swapped pass).
    """

    def __init__(
        self,
        output_dir: str,
        num_classes: int,
        label_names: Sequence[str] | None = None,
        plots: bool = True,
        summarize: bool = True,
        label_measures: Sequence[str] = tuple(f"dice_{stage}" for stage in STAGES),
        measures: Sequence[str] = ("folds", "fold_fraction", "folds_mean_abs_det", "symmetry_log_mse"),
        counts: Sequence[str] = ("folds",),
    ) -> None:
        if int(num_classes) < 2:
            raise ValueError(
                f"RegistrationEvaluation: 'num_classes' must be >= 2 (background + labels), got {num_classes}."
            )
        self.output_dir, self.num_classes = str(output_dir), int(num_classes)
        names = list(label_names) if label_names is not None else [f"label{i}" for i in range(1, self.num_classes)]
        if len(names) != self.num_classes - 1:
            raise ValueError(
                f"RegistrationEvaluation: 'label_names' must name the {self.num_classes - 1} foreground labels, "
                f"got {names}."
            )
        self.label_names = names
        self.plots = plots
        self.summarize = bool(summarize)
        self.label_measures, self.measures, self.counts = tuple(label_measures), tuple(measures), set(counts)
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self._pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self._t0 = 0.0
        self._forward = 0.0
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_STARTED, self._start)
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._stop)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.collect)  # after the metrics (attached first)
        if self.summarize:
            engine.add_event_handler(Events.COMPLETED, self.finish)

    def _reset(self, engine: Engine) -> None:
        self.rows, self.summary, self._pairs = [], {}, []

    def _start(self, engine: Engine) -> None:
        _sync(engine.state.device if hasattr(engine.state, "device") else torch.device("cpu"))
        self._t0 = time.perf_counter()

    def _stop(self, engine: Engine) -> None:
        pred = engine.state.output["pred"]
        _sync(pred["map"].device)
        self._forward = time.perf_counter() - self._t0

    def __call__(self, engine: Engine) -> None:
        """Keep each pair's files and time (the measures come from the metrics at the end of the epoch)."""
        batch, pred = engine.state.batch, engine.state.output["pred"]
        n = pred["map"].shape[0]
        for b in range(n):
            g = pair_geometry(batch, b)
            head = {"pair": pair_name(g, b), "moving": g["moving_file"], "fixed": g["fixed_file"]}
            tail = {
                "seconds": round(float(self._forward / n), 4),
                "device": str(pred["map"].device),
                "threads": torch.get_num_threads(),
            }
            self._pairs.append((head, tail))

    def collect(self, engine: Engine) -> list[dict[str, Any]]:
        """The rows of this rank's pairs: its files and times with the metrics' values per pair.

        Under ``torch.distributed`` MONAI's cumulative metrics gather every rank's values (in rank order); this
        rank's part is taken out, so that ``rows`` always holds the pairs this process evaluated.
        """
        details = getattr(engine.state, "metric_details", None) or {}
        n = len(self._pairs)
        offset = _rank_offset(n)
        columns: list[tuple[str, torch.Tensor]] = []
        for name in (*self.label_measures, *self.measures):
            if name not in details:
                continue
            values = torch.as_tensor(details[name]).detach().cpu()
            values = values.reshape(values.shape[0], -1)[offset : offset + n]
            if values.shape[0] != n:
                raise RuntimeError(
                    f"RegistrationEvaluation: the metric {name!r} has {values.shape[0]} values for the {n} pairs of "
                    "this process."
                )
            columns.append((name, values))
        rows = []
        for i, (head, tail) in enumerate(self._pairs):
            row = dict(head)
            for name, values in columns:
                v = values[i].tolist()
                if name in self.label_measures:
                    row[name] = float(torch.tensor(v).nanmean())
                    for label, d in zip(self.label_names, v):
                        row[f"{name}_{label}"] = d
                else:
                    row[name] = int(v[0]) if name in self.counts else float(v[0])
            row.update(tail)
            rows.append(row)
        self.rows = rows
        return rows

    def finish(self, engine: Engine | None = None) -> dict[str, Any]:
        os.makedirs(self.output_dir, exist_ok=True)
        if not self.rows:
            raise RuntimeError("RegistrationEvaluation: no pair was evaluated (empty data set?).")
        columns = list(self.rows[0])
        with open(os.path.join(self.output_dir, "metrics.csv"), "x", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(self.rows)
        numeric = [c for c in columns if c != "rank" and isinstance(self.rows[0][c], (int, float))]
        summary: dict[str, Any] = {"pairs": len(self.rows), "device": self.rows[0]["device"]}
        for c in numeric:
            vals = torch.tensor([float(r[c]) for r in self.rows], dtype=torch.float64)
            ok = vals[~torch.isnan(vals)]
            mean = float(ok.mean()) if ok.numel() else math.nan
            sd = float(ok.std(unbiased=False)) if ok.numel() else math.nan
            summary[c] = {
                "mean": mean,
                "sd": sd,
                "min": float(ok.min()) if ok.numel() else math.nan,
                "max": float(ok.max()) if ok.numel() else math.nan,
            }
        self.summary = summary
        with open(os.path.join(self.output_dir, "summary.json"), "x") as f:
            json.dump(summary, f, indent=2)
        if self.plots:
            self._plots()
        self.logger.info("evaluation of %d pairs (%s):\n%s", len(self.rows), summary["device"], self.table())
        self.logger.info(f"wrote {self.output_dir}/metrics.csv, summary.json" + (", dice.png" if self.plots else ""))
        return summary

    def table(self) -> str:
        s = self.summary
        lines = ["| measure | mean | sd |", "|---|---|---|"]
        keys = [*self.label_measures, "folds", "folds_mean_abs_det", "symmetry_log_mse", "seconds"]
        for k in keys:
            if k in s:
                lines.append(f"| {k} | {s[k]['mean']:.4g} | {s[k]['sd']:.3g} |")
        return "\n".join(lines)

    def _plots(self) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("RegistrationEvaluation: the box plots need matplotlib: pip install matplotlib") from e
        stages = [m for m in self.label_measures if m in self.rows[0]]
        ticks = [_TICKS.get(m, m) for m in stages]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.boxplot([[r[m] for r in self.rows] for m in stages])
        ax.set_xticks(range(1, len(stages) + 1), ticks)
        ax.set_ylabel("mean Dice (foreground labels)")
        ax.set_title(f"{len(self.rows)} pairs")
        fig.tight_layout()
        fig.savefig(os.path.join(self.output_dir, "dice.png"), dpi=100)
        plt.close(fig)
        fig, axes = plt.subplots(1, len(self.label_names), figsize=(4 * len(self.label_names), 4), squeeze=False)
        for ax, name in zip(axes[0], self.label_names):
            ax.boxplot([[r[f"{m}_{name}"] for r in self.rows] for m in stages])
            ax.set_xticks(range(1, len(stages) + 1), ticks)
            ax.set_title(name)
        axes[0][0].set_ylabel("Dice")
        fig.tight_layout()
        fig.savefig(os.path.join(self.output_dir, "dice_per_label.png"), dpi=100)
        plt.close(fig)


#: box-plot labels of the default stage measures
_TICKS = {"dice_identity": "before", "dice_affine": "affine", "dice_avsm": "AVSM"}


def _rank_offset(n: int) -> int:
    """The index of this rank's first item among the items of every rank in rank order (MONAI's gathered metric
    buffers): 0 without ``torch.distributed``. A collective: every rank calls it."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 0
    if torch.distributed.get_world_size() == 1:
        return 0
    counts = evenly_divisible_all_gather(torch.tensor([n], dtype=torch.int64), concat=True)
    return int(counts[: torch.distributed.get_rank()].sum())
