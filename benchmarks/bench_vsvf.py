"""Benchmark: forward + backward time and peak memory of the vSVF warp block against MONAI's DVF2DDF.

VSVFWarp (momentum at half resolution -> multi-Gaussian FFT smoothing -> 10 RK4 steps of map advection ->
up-sampled map -> warped image) is compared, in the same run, with the obvious MONAI alternative: a stationary
velocity field integrated by scaling and squaring (``monai.networks.blocks.DVF2DDF``, 7 steps) and the image warped
with ``monai.networks.blocks.Warp``, both at full resolution (VoxelMorph's default) and at half resolution with the
DDF up-sampled (VoxelMorph's ``half_res``, the resolution AVSM integrates at).

Each case runs in a fresh subprocess so that its peak memory (CPU: peak RSS above the baseline after the inputs are
allocated; CUDA: ``torch.cuda.max_memory_allocated``) is its own.

    python benchmarks/bench_vsvf.py                  # 192x192x80, CPU (and CUDA if available)
    python benchmarks/bench_vsvf.py --quick          # 64x64x32 smoke run
    python benchmarks/bench_vsvf.py --device cuda --repeats 20
    python benchmarks/bench_vsvf.py --profile        # torch.profiler table of one VSVFWarp fwd+bwd (in process)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, measure, run_in_subprocess, select_devices  # noqa: E402

CASES = ["vsvf_warp", "dvf2ddf_full", "dvf2ddf_half"]
LABELS = {
    "vsvf_warp": "monai_avsm VSVFWarp (m at 1/2 res, multi-Gaussian smoother, RK4 x10)",
    "dvf2ddf_full": "MONAI DVF2DDF x7 + Warp (full res)",
    "dvf2ddf_half": "MONAI DVF2DDF x7 at 1/2 res + upsample + Warp",
}


def build_step(case: str, shape: tuple[int, ...], device_name: str, threads: int):
    """The case's forward + backward as a closure (inputs allocated, seeded)."""
    import torch
    import torch.nn.functional as F

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    from monai.networks.blocks import DVF2DDF, Warp

    from monai_avsm.networks.blocks import VSVFWarp

    g = torch.Generator().manual_seed(0)
    low = tuple(s // 2 for s in shape)
    source = torch.rand(1, 1, *shape, generator=g).to(device)
    target = torch.rand(1, 1, *shape, generator=g).to(device)
    if case == "vsvf_warp":
        block = VSVFWarp(3, num_steps=10)
        param = (0.05 * torch.randn(1, 3, *low, generator=g)).to(device).requires_grad_()

        def step():
            out = block(param, None, source)
            loss = F.mse_loss(out["warped"], target)
            loss.backward()

    else:
        integrate = DVF2DDF(num_steps=7, mode="bilinear", padding_mode="zeros")
        warp = Warp(mode="bilinear", padding_mode="zeros")
        grid = shape if case == "dvf2ddf_full" else low
        param = (0.5 * torch.randn(1, 3, *grid, generator=g)).to(device).requires_grad_()

        def step():
            ddf = integrate(param)
            if case == "dvf2ddf_half":
                ddf = 2.0 * F.interpolate(ddf, size=shape, mode="trilinear", align_corners=True)
            loss = F.mse_loss(warp(source, ddf), target)
            loss.backward()

    return step, device


def run_case(case: str, shape: tuple[int, ...], device_name: str, repeats: int, threads: int) -> dict:
    step, device = build_step(case, shape, device_name, threads)
    return {"case": case, **measure(step, device, repeats)}


def profile_case(case: str, shape: tuple[int, ...], device_name: str, threads: int, rows: int = 25) -> None:
    """Print torch.profiler's per-op table (self time) of one fwd+bwd after a warm-up call."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    step, device = build_step(case, shape, device_name, threads)
    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"profile of {LABELS[case]} on {device_name}, image {shape}, {threads} threads")
    print(prof.key_averages().table(sort_by=sort, row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[192, 192, 80], help="image size (tensor order)")
    parser.add_argument("--quick", action="store_true", help="64x64x32 smoke run with 2 repeats")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    parser.add_argument("--profile", action="store_true", help="print the per-op profile of VSVFWarp and exit")
    parser.add_argument("--profile-case", choices=CASES, default="vsvf_warp", help="the case --profile profiles")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (64, 64, 32) if args.quick else tuple(args.shape)
    repeats = 2 if args.quick else args.repeats

    if args.worker:
        case, device = args.worker.split("@")
        print(json.dumps(run_case(case, shape, device, repeats, args.threads)))
        return

    devices = select_devices(args.device)
    if args.profile:
        print(machine_line())
        for device in devices:
            profile_case(args.profile_case, shape, device, args.threads)
        return
    print(f"VSVFWarp vs MONAI DVF2DDF, image {shape}, momentum {tuple(s // 2 for s in shape)}, batch 1, fwd+bwd")
    print(machine_line())
    for device in devices:
        rows = []
        for case in CASES:
            worker = ["--worker", f"{case}@{device}", "--repeats", str(repeats), "--threads", str(args.threads)]
            row = run_in_subprocess(__file__, worker + ["--shape", *map(str, shape)])
            if row is not None:
                rows.append(row)
        ref = next((r for r in rows if r["case"] == "vsvf_warp"), None)
        unit = "MB (peak RSS increase)" if device == "cpu" else "MB (peak allocated)"
        print(f"\n### {device} ({args.threads} threads)" if device == "cpu" else f"\n### {device}")
        print(f"\n| case | median fwd+bwd (s) | min (s) | peak {unit} | time / VSVFWarp | memory / VSVFWarp |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            tr = r["median_s"] / ref["median_s"] if ref else float("nan")
            mr = r["peak_mb"] / ref["peak_mb"] if ref and ref["peak_mb"] > 0 else float("nan")
            print(
                f"| {LABELS[r['case']]} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['peak_mb']:.0f} "
                f"| {tr:.2f} | {mr:.2f} |"
            )


if __name__ == "__main__":
    main()
