"""Accuracy of :func:`monai_avsm.optimization.deformable_opt` settings on the scanner-space set, from a cached initial
alignment (how the ``"brain"`` preset's regularisation was chosen; ``docs/benchmarks.md``, "Regularisation of the
brain preset").

For every pair: :func:`~monai_avsm.optimization.initial_alignment` once (cached in ``--cache``), the moving image
sampled on the fixed grid through it, ``deformable_opt`` with the given preset (finest level capped at 1 mm, as the
accurate path), then the end-point error against the truth inside the fixed brain mask (known pairs), the Dice of
GM/WM with the moving label pulled through the map, folds and the optimisation's seconds. One JSON line per pair::

    python benchmarks/tune_preset.py --set avsm_scanner --pairs 0 1 2 3 4 5 --preset '"brain"'
    python benchmarks/tune_preset.py --set avsm_scanner --preset '{"momentum_reg_weight": [100, 100, 100]}'
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _scanner_set import gm_wm_dice, read_field  # noqa: E402

from monai_avsm.data.image_io import read_image  # noqa: E402
from monai_avsm.engines.accurate import aligned_image  # noqa: E402
from monai_avsm.engines.native import Grid  # noqa: E402
from monai_avsm.functional.intensity import percentile_scale  # noqa: E402
from monai_avsm.functional.world import (  # noqa: E402
    apply_affine_points,
    normalized_to_world,
    resample_world,
    voxel_world_points,
)
from monai_avsm.optimization.alignment import initial_alignment  # noqa: E402
from monai_avsm.optimization.deformable import deformable_opt  # noqa: E402


def run_pair(root: str, pair: dict, preset, cache: str) -> dict:
    mi, fi = read_image(os.path.join(root, pair["moving"])), read_image(os.path.join(root, pair["fixed"]))
    fg, mg = Grid.of(fi, pair["fixed"]), Grid.of(mi, pair["moving"])
    path = os.path.join(cache, f"T_{os.path.basename(os.path.normpath(root))}_{pair['pair']}.pt")
    if os.path.exists(path):
        T = torch.load(path)
    else:
        T = initial_alignment(mi.data[None], fi.data[None], mg.affine, fg.affine)["matrix"].to(torch.float64)
        torch.save(T, path)
    mov, fix = aligned_image(mi, T, fg), percentile_scale(fi.data)[None]
    t0 = time.perf_counter()
    opt = deformable_opt(mov, fix, spacing=fg.spacing, preset=preset, max_finest_spacing_mm=1.0)
    levels = [(lv["iterations"], round(lv["seconds"], 1)) for lv in opt["levels"]]
    row = {"pair": pair["pair"], "kind": pair["kind"], "seconds": round(time.perf_counter() - t0, 2),
           "folds": int(opt["folds"].sum()), "levels": levels}  # fmt: skip
    pts = apply_affine_points(normalized_to_world(T @ fg.affine, fg.shape), opt["map"][0].to(torch.float64))
    grid = voxel_world_points(fg.affine, fg.shape)
    if pair["truth"]:
        truth, _ = read_field(os.path.join(root, pair["truth"]))
        mask = torch.as_tensor(np.asarray(nib.load(os.path.join(root, pair["fixed_mask"])).dataobj) > 0)
        row["epe_mm"] = round(float(torch.linalg.norm(pts - grid - truth, dim=0)[mask].mean()), 3)
        aff = apply_affine_points(T, grid) - grid
        row["epe_alignment_mm"] = round(float(torch.linalg.norm(aff - truth, dim=0)[mask].mean()), 3)
    if pair["fixed_label"]:
        ml, fl = (
            read_image(os.path.join(root, pair["moving_label"])),
            read_image(os.path.join(root, pair["fixed_label"])),
        )
        w, f = resample_world(ml.data.float(), ml.affine, pts, "nearest")[0].round(), fl.data[0].round()
        row["dice"] = round(gm_wm_dice(w, f)["dice"], 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", required=True, help="a scanner-space set (monai_avsm.apps.scanner_space)")
    parser.add_argument("--pairs", type=int, nargs="+", default=None, help="row indices of pairs.csv (default: all)")
    parser.add_argument("--preset", default='"brain"', help="JSON: a preset name or a dict of DeformablePreset fields")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "monai_avsm", "tune"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.cache, exist_ok=True)
    with open(os.path.join(args.set, "pairs.csv")) as f:
        pairs = list(csv.DictReader(f))
    preset = json.loads(args.preset)
    for i in args.pairs if args.pairs is not None else range(len(pairs)):
        print(json.dumps(run_pair(args.set, pairs[i], preset, args.cache)), flush=True)


if __name__ == "__main__":
    main()
