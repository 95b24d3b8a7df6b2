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
"""Benchmark: the one-pair command as a user runs it, from files to files, each run a new process (start-up and
imports included), against ANTs SyN from files to files in the same run (issue 13):

- ``monai-avsm --help`` and a missing-file error (both must answer before torch and MONAI are imported);
- ``monai-avsm register --fast`` (the network's one pass) with the default outputs (warped image and label, forward
  and inverse fields and affines, the JSON report), cold (no cached trace: builds the network with MONAI and traces
  it) and warm (cached trace);
- ``monai-avsm register --pairs --fast`` over N pairs (the model loaded once): seconds per pair after the first;
- ``monai-avsm register`` (the accurate default: alignment + optimisation at the image's resolution), warm;
- ANTs SyN (ANTsPy defaults) in a process of its own: read, register, apply to the image and the label, write the
  warped image, the label and the transforms; every tool on the same number of threads
  (``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``, ``OMP_NUM_THREADS``).

Peak resident memory of each process (``ru_maxrss`` of the child) is reported next to ANTs'. Pairs: the sample test
pairs rebuilt at ``--spacing`` mm (1.5 mm: 128x149x128, about the size of a real single-subject T1).

    python benchmarks/bench_register.py                     # sample data at 1.5 mm (built if missing) and antspyx
    python benchmarks/bench_register.py --spacing 2 --batch 10 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line  # noqa: E402

_ANTS_SCRIPT = r"""
import os, sys, time
t0 = time.perf_counter()
import ants, numpy as np
moving, fixed, moving_label, fixed_label, out = sys.argv[1:6]
f, m, ml = ants.image_read(fixed), ants.image_read(moving), ants.image_read(moving_label)
reg = ants.registration(f, m, type_of_transform="SyN", outprefix=os.path.join(out, "ants_"))
w = ants.apply_transforms(f, m, reg["fwdtransforms"])
wl = ants.apply_transforms(f, ml, reg["fwdtransforms"], interpolator="nearestNeighbor")
ants.image_write(w, os.path.join(out, "warped.nii.gz"))
ants.image_write(wl, os.path.join(out, "warped_label.nii.gz"))
fl = ants.image_read(fixed_label).numpy()
a = np.round(wl.numpy())
d = [2 * ((a == k) & (fl == k)).sum() / max((a == k).sum() + (fl == k).sum(), 1) for k in (1, 2)]
print("DICE", float(np.mean(d)))
"""


def _timed(cmd: list[str], env: dict, cwd: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds, peak RSS (MB) of this child alone (``os.wait4``), the completed process."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(cmd, child.returncode, out.read(), err.read())
    return wall, usage.ru_maxrss / 1024.0, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spacing", type=float, default=1.5, help="sample data grid (mm); 1.5 mm: 128x149x128")
    parser.add_argument("--data", default=None, help="sample data folder (default: avsm_sample_<spacing>mm)")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per pair")
    parser.add_argument("--batch", type=int, default=10, help="pairs in the --pairs run (the test pairs repeated)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-ants", action="store_true")
    args = parser.parse_args()
    data = args.data or os.path.join(REPO, f"avsm_sample_{args.spacing:g}mm")
    if not os.path.isfile(os.path.join(data, "datalist.json")):
        from monai_avsm.apps.sample import build_sample_dataset

        build_sample_dataset(data, spacing=args.spacing)
    with open(os.path.join(data, "datalist.json")) as f:
        keys = ("moving", "fixed", "moving_label", "fixed_label")
        pairs = [{k: os.path.join(data, p[k]) for k in keys} for p in json.load(f)["test"]]
    import nibabel as nib

    shape = nib.load(pairs[0]["fixed"]).shape
    tmp = tempfile.mkdtemp(prefix="bench_register_")
    cache = os.path.join(tmp, "cache")
    env = dict(os.environ, MONAI_AVSM_CACHE_DIR=cache, OMP_NUM_THREADS=str(args.threads),
               ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(args.threads))  # fmt: skip
    cli = [sys.executable, "-m", "monai_avsm"]
    rows: list[dict] = []

    wall, rss, proc = _timed(cli + ["--help"], env, tmp)
    rows.append({"what": "monai-avsm --help", "s": [wall], "rss": rss, "dice": None})
    wall, rss, proc = _timed(cli + ["register", "missing.nii.gz", pairs[0]["fixed"], "--out", "x"], env, tmp)
    assert proc.returncode == 1 and "missing.nii.gz" in proc.stderr, proc.stderr
    rows.append({"what": "missing-file error", "s": [wall], "rss": rss, "dice": None})

    def register(p, out, extra=("--fast",)):
        cmd = cli + ["register", p["moving"], p["fixed"], "--moving-label", p["moving_label"], "--fixed-label",
                     p["fixed_label"], "--out", out, "--quiet", *extra]  # fmt: skip
        wall, rss, proc = _timed(cmd, env, tmp)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        with open(os.path.join(out, "registration.json")) as f:
            rec = json.load(f)
        return wall, rss, rec

    cold, warm, write, network, dices, rss_max, dice_s = [], [], [], [], [], 0.0, []
    for i, p in enumerate(pairs):
        shutil.rmtree(cache, ignore_errors=True)
        wall, rss, rec = register(p, os.path.join(tmp, f"cold{i}"))
        cold.append(wall)
        for r in range(args.repeats):
            wall, rss, rec = register(p, os.path.join(tmp, f"warm{i}_{r}"))
            warm.append(wall)
            write.append(rec["timings"]["write_seconds"])
            dice_s.append(rec["timings"].get("dice_seconds", 0.0))
            network.append(rec["timings"]["network_seconds"])
            rss_max = max(rss_max, rss)
        dices.append(rec["metrics"]["dice_avsm"])
    rows.append({"what": "register --fast, cold (no cached trace)", "s": cold, "rss": None,
                 "dice": statistics.mean(dices)})  # fmt: skip
    rows.append({"what": "register --fast, warm (cached trace)", "s": warm, "rss": rss_max,
                 "dice": statistics.mean(dices)})  # fmt: skip
    acc, acc_dice, acc_rss = [], [], 0.0
    for i, p in enumerate(pairs):
        wall, rss, rec = register(p, os.path.join(tmp, f"accurate{i}"), extra=())
        acc.append(wall)
        acc_dice.append(rec["metrics"]["dice_avsm"])
        acc_rss = max(acc_rss, rss)
    rows.append({"what": "register (accurate default), warm", "s": acc, "rss": acc_rss,
                 "dice": statistics.mean(acc_dice)})  # fmt: skip

    csv_path = os.path.join(tmp, "pairs.csv")
    with open(csv_path, "w") as f:
        f.write("moving,fixed,moving_label,fixed_label\n")
        for k in range(args.batch):
            p = pairs[k % len(pairs)]
            f.write(",".join(p[c] for c in ("moving", "fixed", "moving_label", "fixed_label")) + "\n")
    wall, rss, proc = _timed(cli + ["register", "--pairs", csv_path, "--out", os.path.join(tmp, "batch"), "--quiet",
                                    "--fast"], env, tmp)  # fmt: skip
    with open(os.path.join(tmp, "batch", "summary.json")) as f:
        summary = json.load(f)
    per_pair = [r["seconds"] for r in summary["pairs"]]
    rows.append({"what": f"register --pairs --fast ({args.batch} pairs): s/pair after the first", "s": per_pair[1:],
                 "rss": rss, "dice": statistics.mean(r["dice_avsm"] for r in summary["pairs"])})  # fmt: skip
    rows.append({"what": f"register --pairs --fast ({args.batch} pairs): whole command", "s": [wall], "rss": rss,
                 "dice": None})  # fmt: skip

    ants_s = None
    if not args.no_ants:
        try:
            import ants  # noqa: F401
        except ImportError:
            print("ANTsPy not installed (pip install antspyx): the ANTs rows are skipped")
        else:
            s, d, r_max = [], [], 0.0
            for i, p in enumerate(pairs):
                out = os.path.join(tmp, f"ants{i}")
                os.makedirs(out)
                cmd = [sys.executable, "-c", _ANTS_SCRIPT, p["moving"], p["fixed"], p["moving_label"],
                       p["fixed_label"], out]  # fmt: skip
                wall, rss, proc = _timed(cmd, env, tmp)
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr[-2000:])
                s.append(wall)
                r_max = max(r_max, rss)
                d.append(float(proc.stdout.split("DICE")[-1]))
            ants_s = statistics.median(s)
            rows.append({"what": "ANTs SyN, files to files", "s": s, "rss": r_max, "dice": statistics.mean(d)})

    print(machine_line())
    print(f"pairs: {len(pairs)} sample test pairs at {args.spacing:g} mm ({'x'.join(map(str, shape))}); "
          f"threads {args.threads}; network {statistics.median(network):.2f} s, "
          f"writing {statistics.median(write):.2f} s, Dice of the 3 stages {statistics.median(dice_s):.2f} s "
          f"(median, warm runs)")  # fmt: skip
    print("| what | median s | min s | runs | peak RSS MB | Dice | vs ANTs SyN |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        med = statistics.median(r["s"])
        ratio = f"{med / ants_s:.2f}x" if ants_s and r["what"].startswith("register") else ""
        rss = f"{r['rss']:.0f}" if r["rss"] else ""
        dice = f"{r['dice']:.3f}" if r["dice"] is not None else ""
        print(f"| {r['what']} | {med:.2f} | {min(r['s']):.2f} | {len(r['s'])} | {rss} | {dice} | {ratio} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
