"""Benchmark: ``monai_avsm.optimization.deformable.fold_penalty`` (hand-written backward) against the same penalty
written with autograd (``relu(tau - jacobian_determinant(phi))^2``, what it replaced), forward + backward, in the same
run, with the largest difference of the values and of the gradients.

Cases, as ``deformable_opt`` evaluates the penalty on a 1.5 mm brain (138x141x159 voxels): the finest level (every
2nd voxel of the full map, ``fold_strides`` 2) and the half level (every voxel of a 69x70x80 map); each with a smooth
map above the threshold everywhere (the usual case: no gradient at all) and with a rough one below it in places.

    python benchmarks/bench_fold_penalty.py             # CPU, 2 threads
    python benchmarks/bench_fold_penalty.py --quick     # small grids, 1 repeat
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, measure  # noqa: E402


def _autograd_form(phi, threshold: float):
    import torch

    from monai_avsm.functional import jacobian_determinant

    return torch.relu(threshold - jacobian_determinant(phi)).pow(2).flatten(1).mean(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small grids, 1 repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    args = parser.parse_args()
    import torch

    from monai_avsm.functional import identity_map
    from monai_avsm.optimization.deformable import fold_penalty

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    levels = [("finest, stride 2", (138, 141, 159), 2), ("half, stride 1", (69, 70, 80), 1)]
    if args.quick:
        levels = [("finest, stride 2", (34, 36, 40), 2), ("half, stride 1", (17, 18, 20), 1)]
    threshold = 0.2
    print(machine_line())
    print(f"\n### cpu ({args.threads} threads), forward + backward, threshold {threshold}\n")
    print("| level | map | autograd median (s) | fold_penalty median (s) | min (s) autograd / fold_penalty "
          "| fold_penalty / autograd | max diff value, gradient |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for name, shape, stride in levels:
        ident = identity_map(shape)
        for kind, amp in (("smooth (no voxel below the threshold)", 0.0005), ("rough (some below)", 0.02)):
            base = ident + amp * torch.randn(1, 3, *shape, generator=g)
            grads, values, rows = {}, {}, {}
            for label, fn in (("autograd", _autograd_form), ("function", fold_penalty)):

                def step(fn=fn):
                    phi = base.clone().requires_grad_(True)
                    sub = phi[(slice(None), slice(None)) + (slice(None, None, stride),) * 3] if stride > 1 else phi
                    value = fn(sub, threshold)
                    # the optimisation's loss always has other terms; a 0 * phi term keeps phi.grad defined
                    (value.sum() + 0.0 * phi.sum()).backward()
                    return value.detach(), phi.grad

                rows[label] = measure(step, torch.device("cpu"), repeats)
                values[label], grads[label] = step()
            a, f = rows["autograd"], rows["function"]
            dv = float((values["autograd"] - values["function"]).abs().max())
            dg = float((grads["autograd"] - grads["function"]).abs().max())
            print(
                f"| {name} {'x'.join(map(str, shape))} | {kind} | {a['median_s']:.4f} | {f['median_s']:.4f} | "
                f"{a['min_s']:.4f} / {f['min_s']:.4f} | {f['median_s'] / a['median_s']:.2f} | {dv:.1e}, {dg:.1e} |"
            )


if __name__ == "__main__":
    main()
