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
"""Benchmark: one pair end to end from files to files, as a user runs it: ``monai_avsm.register`` (the
``monai-avsm register`` command: load, network, optional refinement, writing every output: warped image and label,
forward and inverse fields and affine files, Jacobian image, preview, JSON) against ANTs SyN from files to files
(``ants.registration`` + ``ants.apply_transforms`` for the image and the label, ANTsPy's defaults), on the sample
test pairs (2 mm, 96x112x96 native grid). Prints the time of each step, Dice, folds and the inverse-consistency error
and the ratio to ANTs.

    python benchmarks/bench_register.py                  # needs the sample data (built if missing) and antspyx
    python benchmarks/bench_register.py --refine 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line  # noqa: E402


def dice(a: np.ndarray, b: np.ndarray, labels=(1, 2)) -> float:
    return float(np.mean([2 * ((a == k) & (b == k)).sum() / max((a == k).sum() + (b == k).sum(), 1) for k in labels]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(REPO, "avsm_sample"))
    parser.add_argument("--refine", type=int, default=0)
    parser.add_argument("--no-ants", action="store_true")
    args = parser.parse_args()
    import nibabel as nib

    import monai_avsm
    from monai_avsm.apps import load_bundle_network

    if not os.path.isfile(os.path.join(args.data, "datalist.json")):
        monai_avsm.data.build_sample_dataset(args.data)
    with open(os.path.join(args.data, "datalist.json")) as f:
        pairs = [{k: os.path.join(args.data, v) for k, v in p.items() if k in ("moving", "fixed", "moving_label",
                 "fixed_label")} for p in json.load(f)["test"]]  # fmt: skip
    tmp = tempfile.mkdtemp(prefix="bench_register_")
    rows = []
    t0 = time.perf_counter()
    net = load_bundle_network()
    load_model = time.perf_counter() - t0
    for i, p in enumerate(pairs):
        out = monai_avsm.register(
            p["moving"], p["fixed"], os.path.join(tmp, f"avsm{i}"), moving_label=p["moving_label"],
            fixed_label=p["fixed_label"], refine=args.refine, network=net, progress=False,
        )  # fmt: skip
        t = out["timings"]
        m = out["metrics"]
        rows.append({
            "method": "monai_avsm.register" + (f" + refine {args.refine}" if args.refine else ""),
            "load": t["load_seconds"], "register": t["network_seconds"] + t["refine_seconds"],
            "write": t["write_seconds"], "total": t["total_seconds"], "dice": m["dice_avsm"],
            "folds": m["jacobian"]["folds"], "ic_mm": m["inverse_consistency"]["forward_inverse_mean_mm"],
        })  # fmt: skip
    if not args.no_ants:
        try:
            import ants
        except ImportError:
            ants = None
            print("ANTsPy not installed (pip install antspyx): the ANTs rows are skipped")
        if ants is not None:
            for i, p in enumerate(pairs):
                t0 = time.perf_counter()
                fixed, moving = ants.image_read(p["fixed"]), ants.image_read(p["moving"])
                ml = ants.image_read(p["moving_label"])
                t1 = time.perf_counter()
                reg = ants.registration(
                    fixed, moving, type_of_transform="SyN", outprefix=os.path.join(tmp, f"ants{i}_")
                )
                t2 = time.perf_counter()
                warped = ants.apply_transforms(fixed, moving, reg["fwdtransforms"])
                wl = ants.apply_transforms(fixed, ml, reg["fwdtransforms"], interpolator="nearestNeighbor")
                ants.image_write(warped, os.path.join(tmp, f"ants{i}_warped.nii.gz"))
                ants.image_write(wl, os.path.join(tmp, f"ants{i}_warped_label.nii.gz"))
                t3 = time.perf_counter()
                fl = np.asarray(nib.load(p["fixed_label"]).dataobj)
                rows.append({
                    "method": "ANTs SyN (ANTsPy defaults)", "load": t1 - t0, "register": t2 - t1, "write": t3 - t2,
                    "total": t3 - t0, "dice": dice(np.round(wl.numpy()), fl), "folds": float("nan"),
                    "ic_mm": float("nan"),
                })  # fmt: skip
    print(machine_line())
    print(f"model loading (once): {load_model:.2f} s; {len(pairs)} pairs; threads {torch.get_num_threads()}")
    print("| method | load s | register s | write s | total s/pair | Dice | folds | inverse consistency mm |")
    print("|---|---|---|---|---|---|---|---|")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    means = {}
    for name in methods:
        rs = [r for r in rows if r["method"] == name]
        mean = {k: statistics.mean(r[k] for r in rs) for k in ("load", "register", "write", "total", "dice", "folds",
                                                                "ic_mm")}  # fmt: skip
        means[name] = mean
        print(
            f"| {name} | {mean['load']:.2f} | {mean['register']:.2f} | {mean['write']:.2f} | {mean['total']:.2f} | "
            f"{mean['dice']:.3f} | {mean['folds']:.0f} | {mean['ic_mm']:.4f} |"
        )
    if len(methods) == 2:
        a, b = means[methods[0]], means[methods[1]]
        print(f"time ratio {methods[1]} / {methods[0]}: {b['total'] / a['total']:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
