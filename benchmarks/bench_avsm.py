"""Benchmark: AVSMNet inference per pair (7 affine steps + 2 vSVF steps) and one symmetric training iteration,
time and peak memory, compared in the same run with a MONAI UNet (16-256 channels) forward pass at the same size.

Sizes: 192x192x80 (the paper's OAI working size) and 96x112x96 (the sample-data working size). CPU always, CUDA when
available (float32 and bfloat16 autocast). The training iteration is the vSVF stage of the paper: the batch holds
both directions (source->target and target->source), the affine net is frozen, and the loss per vSVF step is
mk-LNCC + 10 <m, v> for both directions + the map symmetry loss; backward and an Adam step are included.

    python benchmarks/bench_avsm.py                   # all sizes, CPU (+ CUDA if available)
    python benchmarks/bench_avsm.py --quick           # 48x64x32 smoke run
    python benchmarks/bench_avsm.py --sizes 192,192,80 --device cuda
    python benchmarks/bench_avsm.py --device cpu --precisions fp32 bf16   # bf16 autocast on the CPU too
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, measure, run_in_subprocess, select_devices  # noqa: E402

CASES = ["avsm_infer", "avsm_train_sym", "monai_unet_forward"]
LABELS = {
    "avsm_infer": "AVSMNet inference (7 affine + 2 vSVF steps)",
    "avsm_train_sym": "AVSMNet symmetric training iteration (vSVF stage)",
    "monai_unet_forward": "MONAI UNet 16-256 forward (reference)",
}


def run_case(case: str, shape, device_name: str, amp: bool, repeats: int, threads: int) -> dict:
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    from monai.networks.nets import UNet

    from monai_avsm.losses import MapSymmetryLoss, MKLNCCLoss, MomentumRegularizationLoss
    from monai_avsm.networks.nets import AVSMNet, MultiStepAffineNet, VSVFNet

    g = torch.Generator().manual_seed(0)
    moving = torch.rand(1, 1, *shape, generator=g).to(device)
    fixed = torch.rand(1, 1, *shape, generator=g).to(device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)

    if case == "monai_unet_forward":
        net = UNet(3, 2, 3, channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2)).to(device).eval()
        x = torch.cat([moving, fixed], dim=1)

        def step():
            with torch.no_grad(), autocast:
                net(x)

    else:
        net = AVSMNet(MultiStepAffineNet(3, num_steps=7), VSVFNet(3, num_steps=2)).to(device)
        if case == "avsm_infer":
            net.eval()

            def step():
                with torch.no_grad(), autocast:
                    net(moving, fixed)

        else:
            net.affine_net.num_steps = 3
            net.freeze_affine().train()
            sim, reg, sym = MKLNCCLoss(3), MomentumRegularizationLoss(weight=10.0), MapSymmetryLoss(weight=500.0)
            opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=5e-4)

            def step():
                opt.zero_grad(set_to_none=True)
                with autocast:
                    out = net(moving, fixed, symmetric=True)
                loss = 0.0
                for k in range(len(out["maps"])):
                    loss = loss + sim(out["warped_steps"][k], fixed) + sim(out["warped_steps_ts"][k], moving)
                    loss = loss + reg(out["momenta"][k], out["velocities"][k])
                    loss = loss + reg(out["momenta_ts"][k], out["velocities_ts"][k])
                    loss = loss + sym(out["maps"][k], out["maps_ts"][k])
                loss.backward()
                opt.step()

    return {"case": case, "amp": amp, **measure(step, device, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["192,192,80", "96,112,96"], help="image sizes (tensor order)")
    parser.add_argument("--quick", action="store_true", help="one 48x64x32 size, 1 repeat")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"],
                        help="default: fp32 and bf16 autocast on CUDA, fp32 on the CPU (bf16 convolutions on a CPU "
                        "need AVX512-BF16 or AMX to be fast)")  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [(48, 64, 32)] if args.quick else [tuple(int(v) for v in s.split(",")) for s in args.sizes]
    repeats = 1 if args.quick else args.repeats

    if args.worker:
        case, device, amp, size = args.worker.split("@")
        shape = tuple(int(v) for v in size.split(","))
        print(json.dumps(run_case(case, shape, device, amp == "bf16", repeats, args.threads)))
        return

    devices = select_devices(args.device)
    print(machine_line())
    for device in devices:
        precisions = args.precisions or (["fp32", "bf16"] if device == "cuda" else ["fp32"])
        print(f"\n### {device}" + (f" ({args.threads} threads)" if device == "cpu" else ""))
        print("\n| size | case | precision | median (s) | min (s) | peak MB | time / UNet forward |")
        print("|---|---|---|---|---|---|---|")
        for shape in sizes:
            size = ",".join(map(str, shape))
            for prec in precisions:
                rows = {}
                for case in CASES:
                    worker = ["--worker", f"{case}@{device}@{prec}@{size}", "--repeats", str(repeats)]
                    row = run_in_subprocess(__file__, worker + ["--threads", str(args.threads)])
                    if row is not None:
                        rows[case] = row
                ref = rows.get("monai_unet_forward")
                for case, r in rows.items():
                    ratio = r["median_s"] / ref["median_s"] if ref else float("nan")
                    print(
                        f"| {'x'.join(map(str, shape))} | {LABELS[case]} | {prec} | {r['median_s']:.3f} | "
                        f"{r['min_s']:.3f} | {r['peak_mb']:.0f} | {ratio:.2f} |"
                    )


if __name__ == "__main__":
    main()
