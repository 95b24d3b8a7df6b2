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
"""Training curves of a bundle run as a PNG (for the model card): the TensorBoard scalars that ``train.json``'s
``TensorBoardStatsHandler``s write (``train_loss`` per iteration, ``val_mean_dice`` per validation).

    python benchmarks/plot_training.py avsm_runs/synth --out bundle/docs/training_curves.png

Reads every ``events.out.tfevents.*`` file under the folder (a run that spans sittings writes one per sitting; the
steps continue, as the trainer state is resumed) with TensorBoard's ``EventAccumulator``; the training loss is also
shown as a running mean over ``--window`` iterations. Prints the number of points and the first/last values.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics


def read_scalars(run_dir: str) -> dict[str, list[tuple[int, float]]]:
    """``tag -> [(step, value)]`` from every event file under ``run_dir`` (sorted by step, last value of a step)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True))
    if not files:
        raise SystemExit(f"plot_training: no TensorBoard event files under {run_dir!r}")
    out: dict[str, dict[int, float]] = {}
    for f in files:
        acc = EventAccumulator(f, size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            for e in acc.Scalars(tag):
                out.setdefault(tag, {})[int(e.step)] = float(e.value)
    return {tag: sorted(v.items()) for tag, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="the run's output_dir (holds the event files)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--window", type=int, default=20, help="running mean of the training loss (iterations)")
    parser.add_argument("--title", default="AVSM synthetic training")
    args = parser.parse_args()
    scalars = read_scalars(args.run_dir)
    for tag, points in scalars.items():
        print(f"{tag}: {len(points)} points, first {points[0][1]:.4f} (step {points[0][0]}), last {points[-1][1]:.4f} "
              f"(step {points[-1][0]})")  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = scalars.get("train_loss", [])
    dice = scalars.get("val_mean_dice", [])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    if loss:
        steps, values = zip(*loss)
        axes[0].plot(steps, values, lw=0.5, alpha=0.4, label="per iteration")
        w = max(1, args.window)
        smooth = [statistics.mean(values[max(0, i - w + 1) : i + 1]) for i in range(len(values))]
        axes[0].plot(steps, smooth, lw=1.5, label=f"running mean ({w})")
        axes[0].legend()
    axes[0].set(xlabel="iteration", ylabel="training loss", title="train_loss")
    if dice:
        steps, values = zip(*dice)
        axes[1].plot(steps, values, "o-")
    axes[1].set(xlabel="epoch", ylabel="Dice (tissue classes)", title="val_mean_dice (synthetic validation pairs)")
    fig.suptitle(args.title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
