"""Benchmark: the cost of one synthetic training pair at the working grid (96x112x96, 2 mm), part by part, against
MONAI's ``RandAffined`` + ``Rand3DElasticd`` on the same grid as the reference.

Cases (each in a fresh subprocess, median over ``--repeats`` pairs, every pair a new random draw):

- ``spatial``: ``RandLabelMapPaird`` (two large random affines + multi-scale SVF diffeomorphisms; the labels warped
  by nearest neighbour, the template's T1 linearly; half the pairs longitudinal, with the true map and its inverse);
- ``intensity``: ``RandSynthIntensityd`` on a fixed spatial pair (Gaussian mixture or real intensities, bias field,
  gamma, blur or lower resolution, noise, percentile scaling of both images);
- ``total``: both, as ``SyntheticPairDataset`` runs them;
- ``monai``: ``Compose([RandAffined, Rand3DElasticd])`` on an image and its label (bilinear / nearest), called twice
  per pair (one draw per image, as the spatial case), with the same ranges: rotation 30 degrees, scaling 15 %, shear
  0.1, shift 15 voxels (30 mm), elastic magnitude up to 5 voxels (10 mm), sigma 6-8 voxels.

The label map is the training template ``icbm2009a_sym`` (tissue classes + T1), from ``label_map_sources`` (built
and cached on the first run; needs the demo extra).

    python benchmarks/bench_synthesis.py                    # 2 and 1 torch threads
    python benchmarks/bench_synthesis.py --quick            # 48x56x48, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, measure, run_in_subprocess  # noqa: E402

CASES = ("spatial", "intensity", "total", "monai")


def source(spacing: float, shape) -> dict:
    from monai_avsm.data.label_maps import label_map_sources

    src = label_map_sources(["icbm2009a_sym"], spacing=spacing, shape=shape)[0]
    return {k: src[k] for k in ("label", "image", "tissue_lut")}


def run_case(case: str, spacing: float, shape, repeats: int, threads: int) -> dict:
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    from monai.transforms import Compose, Rand3DElasticd, RandAffined

    from monai_avsm.transforms import RandLabelMapPaird, RandSynthIntensityd

    item = source(spacing, shape)
    spatial = RandLabelMapPaird().set_random_state(0)
    intensity = RandSynthIntensityd().set_random_state(0)
    if case == "spatial":

        def step():
            return spatial(item)

    elif case == "intensity":
        pair = spatial(item)

        def step():
            return intensity(pair)

    elif case == "total":

        def step():
            return intensity(spatial(item))

    elif case == "monai":
        voxels = 30.0 / spacing
        ref = Compose(
            [
                RandAffined(
                    keys=["image", "label"],
                    prob=1.0,
                    rotate_range=(math.radians(30),) * 3,
                    scale_range=(0.15,) * 3,
                    shear_range=(0.1,) * 6,
                    translate_range=(voxels / 2,) * 3,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
                Rand3DElasticd(
                    keys=["image", "label"],
                    sigma_range=(6.0, 8.0),
                    magnitude_range=(0.0, 10.0 / spacing),
                    prob=1.0,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
            ]
        )
        ref.set_random_state(0)
        data = {"image": item["image"], "label": item["label"].float()}

        def step():
            return ref(data), ref(data)  # one draw per image of the pair

    else:
        raise ValueError(f"unknown case {case!r}")
    return {"case": case, "threads": threads, **measure(step, torch.device("cpu"), repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="48x56x48 at 4 mm, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="torch CPU threads per run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    spacing, shape = (4.0, (48, 56, 48)) if args.quick else (2.0, (96, 112, 96))
    repeats = 1 if args.quick else args.repeats
    if args.worker:
        case, threads = args.worker.rsplit("#", 1)
        print(json.dumps(run_case(case, spacing, shape, repeats, int(threads))))
        return
    source(spacing, shape)  # build the cache once, outside the timed workers
    print(machine_line())
    print(f"\n### one pair at {'x'.join(map(str, shape))} ({spacing:g} mm), median over {repeats} pairs")
    print("\n| threads | part | median s / pair | min s | peak MB | MONAI reference / this |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        worker = ["--repeats", str(repeats)] + (["--quick"] if args.quick else [])
        res = {c: run_in_subprocess(__file__, ["--worker", f"{c}#{threads}", *worker]) for c in CASES}
        ref = res["monai"]["median_s"] if res["monai"] else float("nan")
        names = {
            "spatial": "spatial (RandLabelMapPaird)",
            "intensity": "intensity (RandSynthIntensityd)",
            "total": "total (spatial + intensity)",
            "monai": "MONAI RandAffined + Rand3DElasticd, x2",
        }
        for case in CASES:
            r = res[case]
            if r is None:
                continue
            ratio = "1" if case == "monai" else f"{ref / r['median_s']:.1f}x"
            print(
                f"| {threads} | {names[case]} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['peak_mb']:.0f} | {ratio} |"
            )


if __name__ == "__main__":
    main()
