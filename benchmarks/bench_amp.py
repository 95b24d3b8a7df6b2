"""Benchmark: bfloat16 autocast of the shipped model's networks on this device, speed and accuracy against float32.

For each test pair of the sample data (``python -m monai_avsm.apps.sample``, built if missing) the shipped model is
run by ``monai_avsm.register(mode="fast")`` twice, in float32 and with its networks under
``torch.autocast(dtype=torch.bfloat16)`` (the convolutions in bf16; the maps, the vSVF integration and the losses
stay in float32 where the networks disable autocast). Printed per pair: the network pass's time in each precision
and their ratio, the Dice of each, and the difference of the two written world-space displacement fields on the
fixed grid (mean and max, mm, inside the fixed image's foreground), and the difference of the network's own maps on
its working grid (mm; the ``--fast`` guard runs in both and may keep the pre-aligned input instead: the table says
which result it kept).

    python benchmarks/bench_amp.py                   # CPU (bf16 needs AVX512-BF16/AMX for speed) and CUDA if present
    python benchmarks/bench_amp.py --device cpu --repeats 3

The speed of the full-size networks in bf16 is in ``bench_avsm.py --precisions fp32 bf16``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line, select_devices  # noqa: E402


def _wrapper(net, bf16: bool):
    import torch

    from monai_avsm.engines import AutocastInferer

    class Variant(torch.nn.Module):
        """``net`` through :class:`~monai_avsm.engines.AutocastInferer` (bf16 autocast if ``bf16``, floating outputs
        back in float32, as the writer reads them); the network's own map is kept in ``last_map`` (the ``--fast``
        guard may replace the written result)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.vsvf_net = getattr(net, "vsvf_net", None)  # the integrator for the inverse
            self.inferer = AutocastInferer(enabled=bf16)
            self.last_map = None

        def forward(self, moving, fixed, **kwargs):
            out = self.inferer(moving, self.net, fixed, **kwargs)
            self.last_map = out["map"].detach().float()
            return out

    return Variant().eval()


def run(device_name: str, repeats: int, threads: int, data: str) -> list[dict]:
    import nibabel as nib
    import numpy as np
    import torch

    import monai_avsm
    from monai_avsm.apps.bundle import load_bundle_network
    from monai_avsm.apps.sample import build_sample_dataset

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    root = build_sample_dataset(data)["out_dir"] if not os.path.isfile(os.path.join(data, "datalist.json")) else data
    with open(os.path.join(root, "datalist.json")) as f:
        pairs = json.load(f)["test"]
    net, settings = load_bundle_network(device=device_name)
    variants = {"fp32": _wrapper(net, False), "bf16": _wrapper(net, True)}
    rows = []
    tmp = tempfile.mkdtemp(prefix="bench_amp_")
    for i, item in enumerate(pairs):
        files = {k: os.path.join(root, item[k]) for k in ("moving", "fixed", "moving_label", "fixed_label")}
        row: dict = {"pair": i}
        fields, maps = {}, {}
        for name, module in variants.items():
            times = []
            for r in range(repeats):
                out = os.path.join(tmp, f"{i}_{name}_{r}")
                res = monai_avsm.register(files["moving"], files["fixed"], out, mode="fast", progress=False,
                                          moving_label=files["moving_label"], fixed_label=files["fixed_label"],
                                          network=(module, settings), device=device_name)  # fmt: skip
                times.append(res["timings"]["network_seconds"])
            row[f"{name}_s"] = statistics.median(times)
            row[f"{name}_dice"] = res["metrics"]["dice_avsm"]
            row[f"{name}_kept"] = res["record"]["registration"]["fast_selection"]["kept"]
            maps[name] = module.last_map
            fields[name] = np.asarray(nib.load(os.path.join(out, "displacement_field.nii")).dataobj, dtype=np.float64)
        fixed = np.asarray(nib.load(files["fixed"]).dataobj)
        fg = fixed > np.percentile(fixed, 50)
        diff = np.linalg.norm((fields["bf16"] - fields["fp32"]).reshape(*fixed.shape, -1), axis=-1)[fg]
        row["diff_mean_mm"], row["diff_max_mm"] = float(diff.mean()), float(diff.max())
        # the network's own maps on its working grid, normalised -> mm: (N - 1) / 2 voxels of working_spacing
        shape = maps["fp32"].shape[2:]
        spacing = settings.get("working_spacing") or 1.0
        spacing = [float(spacing)] * len(shape) if isinstance(spacing, (int, float)) else [float(v) for v in spacing]
        scale = torch.tensor([(n - 1) / 2 * sp for n, sp in zip(shape, spacing)]).reshape(1, -1, *[1] * len(shape))
        d = ((maps["bf16"] - maps["fp32"]).cpu() * scale).norm(dim=1)
        row["net_diff_mean_mm"], row["net_diff_max_mm"] = float(d.mean()), float(d.max())
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=3, help="timed network passes per pair and precision")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the CI machine has 2 cores)")
    parser.add_argument("--data", default="avsm_sample", help="the sample data folder (built there if missing)")
    args = parser.parse_args()
    print(machine_line())
    for device in select_devices(args.device):
        t0 = time.perf_counter()
        rows = run(device, args.repeats, args.threads, args.data)
        print(f"\n### {device}" + (f" ({args.threads} threads)" if device == "cpu" else ""))
        print("\n| pair | network fp32 (s) | network bf16 (s) | bf16 / fp32 | Dice fp32 | Dice bf16 | kept fp32 / bf16 "
              "| written field difference mean / max (mm) | network map difference mean / max (mm) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['pair']} | {r['fp32_s']:.3f} | {r['bf16_s']:.3f} | {r['bf16_s'] / r['fp32_s']:.2f} | "
                  f"{r['fp32_dice']:.4f} | {r['bf16_dice']:.4f} | {r['fp32_kept']} / {r['bf16_kept']} | "
                  f"{r['diff_mean_mm']:.3f} / {r['diff_max_mm']:.3f} | "
                  f"{r['net_diff_mean_mm']:.3f} / {r['net_diff_max_mm']:.3f} |")  # fmt: skip
        print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
