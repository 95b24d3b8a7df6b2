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
space, and the paper's evaluation measures (method spec §6) per pair.

- :class:`RegistrationWriter` (inference): per pair a folder with the warped moving image and label on the fixed
  image's native grid, the dense displacement field as an ITK/ANTs/Slicer warp (world space, LPS vectors), the
  affine part as ITK transform files (``.tfm`` and ANTs' ``.mat``), a PNG preview and a JSON record.
- :class:`RegistrationEvaluation` (evaluation): per pair the Dice of the warped moving label against the fixed label
  on the fixed native grid (:func:`~monai_avsm.metrics.dice_per_label`, MONAI's ``compute_dice`` convention),
  before registration, after the affine part and after AVSM;
  folds (true determinant of the Jacobian <= 0) and mean |det J| over them; the symmetry measure
  :math:`\ln(\frac{1}{|V|}\|\Phi_{AB} \circ \Phi_{BA} - id\|^2)` on the interior; the time of the network's forward
  pass and the device. At the end: a CSV, a JSON summary, box plots and a table in the log.

Both read the pair's files and geometry from the batch (``pair_loading_transforms`` keeps them), so they work with
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
from typing import TYPE_CHECKING, Any

import torch
from monai.engines.utils import IterationEvents
from monai.utils import IgniteInfo, min_version, optional_import

from monai_avsm.engines.accurate import accurate_registration
from monai_avsm.engines.native import NativeResampler, pair_geometry, pair_name
from monai_avsm.engines.results import write_pair_outputs
from monai_avsm.metrics.dice import dice_per_label
from monai_avsm.metrics.folding import compute_folds
from monai_avsm.metrics.symmetry import compute_symmetry_error
from monai_avsm.utils.jsonable import to_jsonable

Events, _ = optional_import("ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import(
        "ignite.engine", IgniteInfo.OPT_IMPORT_VERSION, min_version, "Engine", as_type="decorator"
    )

__all__ = ["RegistrationWriter", "RegistrationEvaluation", "dice_per_label", "stage_dice"]


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


_STAGES = ("identity", "affine", "avsm")


def stage_dice(
    resampler: NativeResampler, pred: dict, index: int, fixed_label: torch.Tensor, num_classes: int
) -> dict[str, list[float]]:
    """Dice per foreground label of the moving label (from its file) against ``fixed_label`` on the fixed native grid,
    before registration (``"identity"``), after the affine part (``"affine"``) and after AVSM (``"avsm"``), for item
    ``index`` of the network's output ``pred``."""
    r = resampler
    points = {
        "identity": r.identity_points(),
        "affine": r.affine_points(pred["affine"][index].detach().cpu()),
        "avsm": r.points(pred["map"][index].detach()),
    }
    return {stage: dice_per_label(r.warp(points[stage], label=True), fixed_label, num_classes) for stage in _STAGES}


class RegistrationEvaluation:
    """Evaluate every pair (see the module docstring) and write ``metrics.csv``, ``summary.json``, ``dice.png`` (box
    plot of the mean Dice per stage, like the paper's Fig. 5) and ``dice_per_label.png`` into ``output_dir``.

    Args:
        output_dir: where the files go (a fresh folder, :func:`~monai_avsm.engines.new_output_dir`).
        num_classes: labels including background (0).
        network: the evaluated network, run again on the swapped pair for the symmetry measure (``None``: skipped).
        label_names: names of the labels 1 .. num_classes - 1 for the columns.
        symmetry_margin: interior margin (voxels of the working grid) of the symmetry measure (paper: 10).
        fold_margin: voxels excluded at the border when counting folds (0: all).
        plots: write the box plots (needs matplotlib).
        summarize: write the files when the run completes; ``False``: the caller calls :meth:`finish` (sharded
            evaluation: rank 0, once it has every rank's ``rows``, :func:`~monai_avsm.engines.merge_shard_evaluation`).
    """

    def __init__(
        self,
        output_dir: str,
        num_classes: int,
        network: torch.nn.Module | None = None,
        label_names: Sequence[str] | None = None,
        symmetry_margin: int = 10,
        fold_margin: int = 0,
        plots: bool = True,
        summarize: bool = True,
    ) -> None:
        if int(num_classes) < 2:
            raise ValueError(
                f"RegistrationEvaluation: 'num_classes' must be >= 2 (background + labels), got {num_classes}."
            )
        self.output_dir, self.num_classes, self.network = str(output_dir), int(num_classes), network
        names = list(label_names) if label_names is not None else [f"label{i}" for i in range(1, self.num_classes)]
        if len(names) != self.num_classes - 1:
            raise ValueError(
                f"RegistrationEvaluation: 'label_names' must name the {self.num_classes - 1} foreground labels, "
                f"got {names}."
            )
        self.label_names = names
        self.symmetry_margin, self.fold_margin, self.plots = symmetry_margin, fold_margin, plots
        self.summarize = bool(summarize)
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self._t0 = 0.0
        self._forward = 0.0
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_STARTED, self._start)
        engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self._stop)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        if self.summarize:
            engine.add_event_handler(Events.COMPLETED, self.finish)

    def _reset(self, engine: Engine) -> None:
        self.rows, self.summary = [], {}

    def _start(self, engine: Engine) -> None:
        _sync(engine.state.device if hasattr(engine.state, "device") else torch.device("cpu"))
        self._t0 = time.perf_counter()

    def _stop(self, engine: Engine) -> None:
        pred = engine.state.output["pred"]
        _sync(pred["map"].device)
        self._forward = time.perf_counter() - self._t0

    def __call__(self, engine: Engine) -> None:
        batch, out = engine.state.batch, engine.state.output
        pred = out["pred"]
        n = pred["map"].shape[0]
        phi_ts = None
        if self.network is not None:
            moving, fixed = out["image"], out["label"]
            with torch.no_grad():
                phi_ts = self.network(fixed, moving)["map"]
        for b in range(n):
            self.rows.append(self.evaluate_pair(batch, pred, b, self._forward / n, phi_ts))

    def evaluate_pair(self, batch: dict, pred: dict, index: int, seconds: float, phi_ts=None) -> dict[str, Any]:
        g = pair_geometry(batch, index)
        r = NativeResampler(g)
        fixed_label = r.fixed_label()
        if fixed_label is None or r.moving(label=True) is None:
            raise KeyError(
                f"RegistrationEvaluation: pair {pair_name(g, index)!r} needs 'moving_label' and 'fixed_label' files."
            )
        fixed_label = fixed_label.as_tensor()
        row: dict[str, Any] = {"pair": pair_name(g, index), "moving": g["moving_file"], "fixed": g["fixed_file"]}
        for stage, dice in stage_dice(r, pred, index, fixed_label, self.num_classes).items():
            row[f"dice_{stage}"] = float(torch.tensor(dice).nanmean())
            for name, d in zip(self.label_names, dice):
                row[f"dice_{stage}_{name}"] = d
        phi = pred["map"][index : index + 1].detach()
        folds = compute_folds(phi.to(torch.float64), margin=self.fold_margin)
        row["folds"] = int(folds["count"][0])
        row["fold_fraction"] = float(folds["fraction"][0])
        row["folds_mean_abs_det"] = float(folds["mean_abs"][0])
        if phi_ts is not None:
            row["symmetry_log_mse"] = float(
                compute_symmetry_error(
                    phi.to(torch.float64), phi_ts[index : index + 1].to(torch.float64), self.symmetry_margin
                )[0]
            )
        row["seconds"] = round(float(seconds), 4)
        row["device"] = str(phi.device)
        row["threads"] = torch.get_num_threads()
        return row

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
        keys = [f"dice_{st}" for st in _STAGES] + ["folds", "folds_mean_abs_det", "symmetry_log_mse", "seconds"]
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
        fig, ax = plt.subplots(figsize=(5, 4))
        data = [[r[f"dice_{st}"] for r in self.rows] for st in _STAGES]
        ax.boxplot(data)
        ax.set_xticks(range(1, len(_STAGES) + 1), ["before", "affine", "AVSM"])
        ax.set_ylabel("mean Dice (foreground labels)")
        ax.set_title(f"{len(self.rows)} pairs")
        fig.tight_layout()
        fig.savefig(os.path.join(self.output_dir, "dice.png"), dpi=100)
        plt.close(fig)
        fig, axes = plt.subplots(1, len(self.label_names), figsize=(4 * len(self.label_names), 4), squeeze=False)
        for ax, name in zip(axes[0], self.label_names):
            ax.boxplot([[r[f"dice_{st}_{name}"] for r in self.rows] for st in _STAGES])
            ax.set_xticks(range(1, len(_STAGES) + 1), ["before", "affine", "AVSM"])
            ax.set_title(name)
        axes[0][0].set_ylabel("Dice")
        fig.tight_layout()
        fig.savefig(os.path.join(self.output_dir, "dice_per_label.png"), dpi=100)
        plt.close(fig)
