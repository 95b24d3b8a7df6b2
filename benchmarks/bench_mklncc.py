"""Benchmark: MKLNCCLoss forward + backward time and peak memory against (a) a straightforward strided, dilated
``conv3d`` ones-kernel implementation of the same mk-LNCC and (b) MONAI's ``LocalNormalizedCrossCorrelationLoss``.

Input 1x1x192x192x80 (tensor order). At the paper's settings (the default rule: smallest size 80 -> kernels 20 and
40, strides 5 and 10, dilation 2, weights 0.3/0.7) MKLNCCLoss is compared with (a); at stride 1 and dilation 1 with
odd kernels 9, 21 and 41 it is compared with (b) (rectangular kernel), to show that its cost does not grow with the
window. Each case runs in a fresh subprocess (its own peak memory).

    python benchmarks/bench_mklncc.py                 # CPU (and CUDA if available)
    python benchmarks/bench_mklncc.py --quick         # 64x64x32 smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, measure, run_in_subprocess, select_devices  # noqa: E402

KERNELS = (9, 21, 41)


def conv3d_mk_lncc(pred, target, kernels, weights, strides, dilations, smooth_dr=1e-5):
    """The reference formulation with explicit ones-kernel convolutions (valid windows, stride, dilation)."""
    import torch
    import torch.nn.functional as F

    stats = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=0)  # (5, 1, *S)
    total = 0.0
    for k, w, s, d in zip(kernels, weights, strides, dilations):
        ones = torch.ones(1, 1, k, k, k, dtype=pred.dtype, device=pred.device)
        sums = F.conv3d(stats, ones, stride=s, dilation=d)
        n = float(k**3)
        si, st, sii, stt, sit = sums
        cross = sit - si * st / n
        var_i = sii - si * si / n
        var_t = stt - st * st / n
        ncc2 = cross * cross / (var_i * var_t + smooth_dr)
        total = total + w * (1 - ncc2.mean())
    return total


def run_case(case: str, shape, device_name: str, repeats: int, threads: int) -> dict:
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    from monai.losses import LocalNormalizedCrossCorrelationLoss

    from monai_avsm.functional import default_lncc_settings
    from monai_avsm.losses import MKLNCCLoss

    g = torch.Generator().manual_seed(0)
    pred = torch.rand(1, 1, *shape, generator=g).to(device).requires_grad_()
    target = torch.rand(1, 1, *shape, generator=g).to(device)
    kind, _, k = case.partition("@")
    if kind == "mklncc_paper":
        loss_fn = MKLNCCLoss(3)
    elif kind == "conv3d_paper":
        s = default_lncc_settings(shape)
        ks = [kk[0] for kk in s.kernel_sizes]
        ss = [st[0] for st in s.strides]
        ds = [dd[0] for dd in s.dilations]

        def loss_fn(p, t):
            return conv3d_mk_lncc(p, t, ks, s.kernel_weights, ss, ds)

    elif kind == "mklncc_s1":
        loss_fn = MKLNCCLoss(3, kernel_sizes=[int(k)], strides=[1], dilations=[1])
    elif kind == "monai_lncc":
        loss_fn = LocalNormalizedCrossCorrelationLoss(3, kernel_size=int(k), kernel_type="rectangular")
    else:
        raise ValueError(f"unknown case {case!r}")

    def step():
        pred.grad = None
        loss_fn(pred, target).backward()

    with torch.no_grad():
        value = float(loss_fn(pred, target))
    return {"case": case, "value": value, **measure(step, device, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=[192, 192, 80], help="image size (tensor order)")
    parser.add_argument("--quick", action="store_true", help="64x64x32 smoke run with 1 repeat")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (64, 64, 32) if args.quick else tuple(args.shape)
    repeats = 1 if args.quick else args.repeats
    if args.worker:
        case, device = args.worker.rsplit("#", 1)
        print(json.dumps(run_case(case, shape, device, repeats, args.threads)))
        return

    devices = select_devices(args.device)
    print(machine_line())
    kernels = (5, 9, 13) if args.quick else KERNELS
    for device in devices:

        def run(case):
            worker = ["--worker", f"{case}#{device}", "--repeats", str(repeats), "--threads", str(args.threads)]
            return run_in_subprocess(__file__, worker + ["--shape", *map(str, shape)])

        from monai_avsm.functional import default_lncc_settings

        st = default_lncc_settings(shape)
        paper = "paper rule: k " + "/".join(str(k[0]) for k in st.kernel_sizes)
        paper += ", s " + "/".join(str(x[0]) for x in st.strides) + ", d " + "/".join(str(x[0]) for x in st.dilations)
        ours, ref = run("mklncc_paper"), run("conv3d_paper")
        print(f"\n### {device}, input 1x1x{'x'.join(map(str, shape))}, forward + backward")
        if ours and ref:
            print(f"\nSame loss at the paper's settings: MKLNCCLoss {ours['value']:.6f}, conv3d {ref['value']:.6f}")
        print("\n| setting | case | median (s) | min (s) | peak MB | time ratio (alternative / MKLNCCLoss) |")
        print("|---|---|---|---|---|---|")
        for label, r in (("MKLNCCLoss", ours), ("conv3d ones-kernel mk-LNCC (a)", ref)):
            if r:
                ratio = ref["median_s"] / ours["median_s"] if (ours and ref) else float("nan")
                shown = f"{ratio:.1f}x" if label.startswith("conv3d") else "1"
                print(f"| {paper} | {label} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['peak_mb']:.0f} | {shown} |")
        for k in kernels:
            ours, ref = run(f"mklncc_s1@{k}"), run(f"monai_lncc@{k}")
            for label, r in ((f"MKLNCCLoss k={k}", ours), (f"MONAI LNCC k={k} (b)", ref)):
                if r:
                    ratio = ref["median_s"] / ours["median_s"] if (ours and ref) else float("nan")
                    shown = f"{ratio:.1f}x" if "MONAI" in label else "1"
                    print(
                        f"| stride 1, k={k} | {label} | {r['median_s']:.3f} | {r['min_s']:.3f} "
                        f"| {r['peak_mb']:.0f} | {shown} |"
                    )


if __name__ == "__main__":
    main()
