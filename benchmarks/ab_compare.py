"""Before/after comparison on a shared machine: alternate the worker runs of a benchmark from two source trees.

On a machine shared with other jobs, one benchmark run after another compares two different loads. This script
interleaves them: each round runs every case once (a fresh process, the benchmark's own ``--worker`` mode), the
``--ab`` cases from both trees (``before``: ``--before``'s tree, ``after``: this one) and the reference cases from
this tree only, then reports per case the median over rounds of the per-run medians, the minimum, and the ratios to
the first ``--ab`` case of each tree *within the same round* (median over rounds).

    python benchmarks/ab_compare.py --before /path/to/main --script bench_vsvf.py --rounds 3 \\
        --ab vsvf_warp@cpu --ref dvf2ddf_full@cpu dvf2ddf_half@cpu -- --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_worker(tree: str, script: str, worker: str, extra: list[str]) -> dict | None:
    env = dict(os.environ, PYTHONPATH=tree, PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, os.path.join(tree, "benchmarks", script), "--worker", worker, *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        print(f"{tree}: {worker} failed:\n{res.stderr[-2000:]}", flush=True)
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="root of the tree to compare against")
    parser.add_argument("--script", required=True, help="benchmark script under benchmarks/ with a --worker mode")
    parser.add_argument("--ab", nargs="+", required=True, help="worker specs run from both trees")
    parser.add_argument("--ref", nargs="*", default=[], help="worker specs run from this tree only (references)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("extra", nargs="*", help="arguments passed to every worker (after --)")
    args = parser.parse_args()
    runs = [("before", args.before, w) for w in args.ab] + [("after", HERE, w) for w in args.ab]
    runs += [("ref", HERE, w) for w in args.ref]
    results: dict[tuple[str, str], list[dict]] = {(tag, w): [] for tag, _, w in runs}
    ratios: dict[tuple[str, str], list[float]] = {k: [] for k in results}
    print(f"{args.script}: before = {args.before}, after = {HERE}, {args.rounds} rounds, worker args {args.extra}")
    print(machine_line(), flush=True)
    for r in range(args.rounds):
        this_round = {}
        for tag, tree, worker in runs:
            row = run_worker(tree, args.script, worker, args.extra)
            if row is not None:
                this_round[(tag, worker)] = row
                results[(tag, worker)].append(row)
                print(f"round {r + 1}: {tag:6s} {worker}: median {row['median_s']:.3f} s, "
                      f"min {row['min_s']:.3f} s, peak {row['peak_mb']:.0f} MB", flush=True)  # fmt: skip
        for key, row in this_round.items():
            for base in ("before", "after"):
                ref = this_round.get((base, args.ab[0]))
                if ref:
                    ratios.setdefault((key[0], key[1], base), []).append(row["median_s"] / ref["median_s"])
    first = args.ab[0]
    print(f"\n| tree | case | median of medians (s) | min (s) | peak MB | / before {first} | / after {first} |")
    print("|---|---|---|---|---|---|---|")
    for (tag, worker), rows in results.items():
        if not rows:
            continue
        med = statistics.median(x["median_s"] for x in rows)
        mn = min(x["min_s"] for x in rows)
        peak = statistics.median(x["peak_mb"] for x in rows)
        rb = ratios.get((tag, worker, "before"), [])
        ra = ratios.get((tag, worker, "after"), [])
        fmt = lambda v: f"{statistics.median(v):.2f}" if v else "-"  # noqa: E731
        print(f"| {tag} | {worker} | {med:.3f} | {mn:.3f} | {peak:.0f} | {fmt(rb)} | {fmt(ra)} |")


if __name__ == "__main__":
    main()
