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
"""Benchmark: one training epoch of the bundle's train.json (wall time and peak memory of the whole process), per
stage, on the sample data with the shipped recipe's settings (48x56x48 working grid, 50 iterations per epoch), and
the cost of symmetric training as a ratio against the same vSVF epoch trained in one direction only.

Each case runs ``python -m monai.bundle``'s ``ConfigWorkflow`` in a fresh process (peak RSS = ``ru_maxrss`` of that
process; on CUDA also ``torch.cuda.max_memory_allocated``). Validation is off (``val_interval`` > epochs).

    python benchmarks/bench_bundle.py                         # sample data in ./avsm_sample (built if missing)
    python benchmarks/bench_bundle.py --iterations 10 --spatial-size 32,32,32   # quick
    python benchmarks/bench_bundle.py --cases vsvf_sym vsvf_sym_bf16 --spatial-size 96,112,96   # bf16 autocast
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, run_in_subprocess  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "affine": ("affine stage epoch (3 affine steps, symmetric)", {"affine_epochs": 1, "vsvf_epochs": 0,
                                                                   "affine_multistep_from": 0}),
    "vsvf_sym": ("vSVF stage epoch (2 vSVF steps, symmetric)", {"affine_epochs": 0, "vsvf_epochs": 1}),
    "vsvf_one": ("vSVF stage epoch, one direction (reference)", {"affine_epochs": 0, "vsvf_epochs": 1,
                                                                  "vsvf_symmetric_from": 10**6}),
    "vsvf_sym_bf16": ("vSVF stage epoch, symmetric, bf16 autocast (train.json --bf16 true)",
                      {"affine_epochs": 0, "vsvf_epochs": 1, "bf16": True}),
}  # fmt: skip


def worker(case: str, data: str, iterations: int, size: list[int]) -> dict:
    import torch
    from ignite.engine import Events
    from monai.bundle import ConfigWorkflow

    out = tempfile.mkdtemp()
    overrides = {"dataset_dir": data, "output_dir": out, "bundle_root": os.path.join(REPO, "bundle"),
                 "iterations_per_epoch": iterations, "spatial_size": size, "val_interval": 10**6,
                 "ncc_warmup_epochs": 0, **CASES[case][1]}  # fmt: skip
    cfg = os.path.join(REPO, "bundle", "configs")
    wf = ConfigWorkflow(config_file=os.path.join(cfg, "train.json"), meta_file=os.path.join(cfg, "metadata.json"),
                        logging_file=os.path.join(cfg, "logging.conf"), workflow_type="train", **overrides)  # fmt: skip
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    marks = {}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: marks.setdefault("start", time.perf_counter()))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: marks.setdefault("end", time.perf_counter()))
    wf.run()
    device = wf.parser.get_parsed_content("device")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"seconds": marks["end"] - marks["start"], "iterations": iterations, "peak_rss_mb": peak,
              "device": str(device)}  # fmt: skip
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="avsm_sample")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--spatial-size", default="48,56,48")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = [int(s) for s in args.spatial_size.split(",")]
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.iterations, size)))
        return
    if not os.path.exists(os.path.join(args.data, "datalist.json")):
        from monai_avsm.apps.sample import build_sample_dataset

        build_sample_dataset(args.data)
    print(machine_line())
    print(f"train.json, one epoch of {args.iterations} iterations at {'x'.join(map(str, size))}, batch 1")
    print("| case | s / epoch | s / iteration | peak RSS (MB) | peak CUDA (MB) | ratio |")
    print("|---|---|---|---|---|---|")
    results = {}
    for case in args.cases:
        label = CASES[case][0]
        r = run_in_subprocess(
            os.path.abspath(__file__),
            ["--worker", case, "--data", args.data, "--iterations", str(args.iterations), "--spatial-size",
             args.spatial_size],
        )  # fmt: skip
        results[case] = r
        if r is None:
            print(f"| {label} | failed | | | | |", flush=True)
            continue
        ratio = ""
        if case == "vsvf_one" and results.get("vsvf_sym"):
            ratio = f"symmetric / one direction = {results['vsvf_sym']['seconds'] / r['seconds']:.2f}x"
        if case == "vsvf_sym_bf16" and results.get("vsvf_sym"):
            ratio = f"bf16 / fp32 = {r['seconds'] / results['vsvf_sym']['seconds']:.2f}x"
        cuda = f"{r['peak_cuda_mb']:.0f}" if "peak_cuda_mb" in r else "-"
        print(f"| {label} ({r['device']}) | {r['seconds']:.1f} | {r['seconds'] / r['iterations']:.2f} | "
              f"{r['peak_rss_mb']:.0f} | {cuda} | {ratio} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
