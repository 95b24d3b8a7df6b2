"""Benchmark: ``monai_avsm.functional.grid_sample`` (one 3D CPU volume sampled in one slab per thread) against
``torch.nn.functional.grid_sample`` (whose 3D CPU kernel parallelises over the batch only), trilinear, forward and
forward + backward (gradient with respect to the grid, as in a registration), in the same run, and whether the two
give the same numbers.

Grids: a near-identity map (a registration's) and uniformly random locations (cache-unfriendly). Size 138x141x159
(a 1.5 mm brain grid). Each case in a fresh subprocess (its own peak memory).

    python benchmarks/bench_sampling.py                 # CPU, 2 threads
    python benchmarks/bench_sampling.py --quick         # 48x56x40 smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, measure, run_in_subprocess  # noqa: E402

CASES = ("torch", "slabs")


def _inputs(shape, grid_kind: str):
    import torch

    from monai_avsm.functional import identity_map, map_to_grid

    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, *shape, generator=g)
    if grid_kind == "random":
        grid = torch.rand(1, *shape, 3, generator=g) * 2 - 1
    else:
        phi = identity_map(shape) + 0.02 * torch.randn(1, 3, *shape, generator=g)
        grid = map_to_grid(phi).contiguous()
    return image, grid


def run_case(case: str, shape, grid_kind: str, backward: bool, repeats: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from monai_avsm.functional import grid_sample

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    image, grid = _inputs(shape, grid_kind)
    fn = grid_sample if case == "slabs" else F.grid_sample

    def step():
        g = grid.detach().requires_grad_(backward)
        out = fn(image, g, mode="bilinear", padding_mode="zeros", align_corners=True)
        if backward:
            out.sum().backward()

    return {"case": case, **measure(step, torch.device("cpu"), repeats)}


def check_equal(shape, grid_kind: str, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from monai_avsm.functional import grid_sample

    torch.set_num_threads(threads)
    image, grid = _inputs(shape, grid_kind)
    ga, gb = grid.clone().requires_grad_(True), grid.clone().requires_grad_(True)
    a = F.grid_sample(image, ga, mode="bilinear", padding_mode="zeros", align_corners=True)
    b = grid_sample(image, gb, mode="bilinear", padding_mode="zeros", align_corners=True)
    a.sum().backward()
    b.sum().backward()
    return {"values_equal": bool(torch.equal(a, b)), "grid_grad_equal": bool(torch.equal(ga.grad, gb.grad))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="138,141,159", help="output grid (tensor order)")
    parser.add_argument("--quick", action="store_true", help="48x56x40, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (48, 56, 40) if args.quick else tuple(int(v) for v in args.size.split(","))
    repeats = 1 if args.quick else args.repeats
    if args.worker:
        case, grid_kind, direction = args.worker.split("@")
        if case == "check":
            print(json.dumps(check_equal(shape, grid_kind, args.threads)))
        else:
            print(json.dumps(run_case(case, shape, grid_kind, direction == "fwdbwd", repeats, args.threads)))
        return
    print(machine_line())
    print(f"\n### cpu ({args.threads} threads), {'x'.join(map(str, shape))}, trilinear\n")
    print("| grid | pass | F.grid_sample median (s) | slabs median (s) | min (s) torch / slabs | peak MB torch / slabs "
          "| slabs / torch | values, grid gradient bit-identical |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    common = ["--size", ",".join(map(str, shape)), "--repeats", str(repeats), "--threads", str(args.threads)]
    for grid_kind in ("near-identity", "random"):
        same = run_in_subprocess(__file__, ["--worker", f"check@{grid_kind}@x"] + common)
        for direction in ("fwd", "fwdbwd"):
            rows = {
                c: run_in_subprocess(__file__, ["--worker", f"{c}@{grid_kind}@{direction}"] + common) for c in CASES
            }
            t, s = rows["torch"], rows["slabs"]
            if t is None or s is None:
                continue
            print(
                f"| {grid_kind} | {'forward' if direction == 'fwd' else 'forward + backward'} | {t['median_s']:.3f} | "
                f"{s['median_s']:.3f} | {t['min_s']:.3f} / {s['min_s']:.3f} | {t['peak_mb']:.0f} / {s['peak_mb']:.0f} "
                f"| {s['median_s'] / t['median_s']:.2f} | "
                f"{same and same['values_equal']}, {same and same['grid_grad_equal']} |"
            )


if __name__ == "__main__":
    main()
