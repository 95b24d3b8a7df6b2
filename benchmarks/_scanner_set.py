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
"""The scanner-space set of ``bench_registration.py --set scanner``: every method run as a separate process from
files to files, every result measured the same way from the files it wrote.

Methods (each process on ``THREADS`` threads: ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``, ``OMP_NUM_THREADS``):

- ``ants_affine``, ``ants_syn`` (ANTsPy's defaults: ``type_of_transform="Affine"`` / ``"SyN"``, MI) and
  ``ants_syn_cc`` (``"SyN"`` with ``syn_metric="CC"``, ``syn_sampling=2``): a worker process (this file,
  ``--ants-worker``) reads the images, registers, warps the image (linear) and the label (nearest), writes both and
  the composed displacement field (``ants.apply_transforms(..., compose=...)``, one ITK warp of the whole
  transformation); its time runs from reading the files to the last file written (the Python start and the
  ``import ants`` are not counted: ``process_s`` is the whole process);
- ``avsm`` (and ``avsm_<mode>`` for each ``--avsm-modes`` entry): ``python -m monai_avsm register MOVING FIXED
  --out DIR --moving-label ... --fixed-label ...`` (the ``monai-avsm register`` command), timed end to end
  (Python start, model loading, every output written): ``seconds`` = ``process_s``.

Measured from the written files, on the fixed image's grid: mean Dice of grey and white matter (labels 1, 2; the
k-means tissue classes of the sample data: CSF is merged with the background there, since the templates' brain masks
differ in how much CSF they keep) between the written warped label and the fixed label; end-point error (mm) of the
written displacement field against the truth field inside the fixed mask (known-deformation pairs); folds: voxels
of the fixed grid with det J <= 0 of the written displacement field; peak resident memory of the process
(its ``VmHWM``, polled).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = 2
ANTS_METHODS = ("ants_affine", "ants_syn", "ants_syn_cc")
REFERENCE = "ants_syn_cc"

__all__ = ["ANTS_METHODS", "parse_avsm_modes", "run_scanner_benchmark", "read_field", "evaluate_outputs", "ants_worker"]


def parse_avsm_modes(text: str) -> dict[str, list[str]]:
    """``"fast:--fast;default:"`` -> ``{"avsm_fast": ["--fast"], "avsm": []}``: named extra argument sets of the
    register command; the mode ``default`` (or an empty name) is the plain command, method ``avsm``."""
    modes: dict[str, list[str]] = {}
    for part in [p for p in text.split(";") if p.strip()]:
        name, sep, extra = part.partition(":")
        if not sep:
            raise SystemExit(f"--avsm-modes: {part!r} must be NAME:ARGS (e.g. 'fast:--fast' or 'default:').")
        name = name.strip()
        if name and not name.replace("_", "").isalnum():
            raise SystemExit(f"--avsm-modes: mode name {name!r} must be letters, digits and '_'.")
        key = "avsm" if name in ("", "default") else f"avsm_{name}"
        if key in modes:
            raise SystemExit(f"--avsm-modes: mode {name or 'default'!r} is given twice.")
        modes[key] = shlex.split(extra)
    return modes


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(THREADS), "OMP_NUM_THREADS": str(THREADS),
                "MKL_NUM_THREADS": str(THREADS), "ANTS_RANDOM_SEED": "1"})  # fmt: skip
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            line = next((x for x in f if x.startswith("VmHWM:")), None)
    except OSError:
        return None
    return int(line.split()[1]) / 1024.0 if line else None


def _run_process(cmd: list[str], log: str) -> tuple[int, float, float | None]:
    """Run ``cmd`` (output to ``log``) -> ``(return code, wall seconds, peak resident MB of that process)``.

    The peak is the process's ``VmHWM`` (Linux), read every 0.1 s while it runs (it only grows, so the last reading
    misses at most the last 0.1 s). Not ``ru_maxrss`` of ``wait4``: Linux carries the forking parent's high-water
    mark across ``exec``, so a child would report at least this (large) evaluating process's memory."""
    peak = None
    with open(log, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=_env(), cwd=REPO)
        while proc.poll() is None:
            peak = _hwm_mb(proc.pid) or peak
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
    return proc.returncode, seconds, peak


def ants_worker(method: str, moving: str, fixed: str, moving_label: str, out: str) -> dict:
    """One ANTs registration from files to files (in its own process; see the module docstring)."""
    import ants

    t0 = time.perf_counter()
    fixed_img, moving_img = ants.image_read(fixed), ants.image_read(moving)
    label = ants.image_read(moving_label) if moving_label else None
    kwargs: dict = {"type_of_transform": "Affine" if method == "ants_affine" else "SyN"}
    if method == "ants_syn_cc":
        kwargs.update(syn_metric="CC", syn_sampling=2)
    reg = ants.registration(fixed_img, moving_img, outprefix=os.path.join(out, "ants_"), **kwargs)
    t1 = time.perf_counter()
    ants.image_write(ants.apply_transforms(fixed_img, moving_img, reg["fwdtransforms"]),
                     os.path.join(out, "warped.nii.gz"))  # fmt: skip
    if label is not None:
        warped = ants.apply_transforms(fixed_img, label, reg["fwdtransforms"], interpolator="nearestNeighbor")
        ants.image_write(warped, os.path.join(out, "warped_label.nii.gz"))
    composed = ants.apply_transforms(fixed_img, moving_img, reg["fwdtransforms"],
                                     compose=os.path.join(out, "composed_"))  # fmt: skip
    os.replace(composed, os.path.join(out, "displacement_field.nii.gz"))
    t2 = time.perf_counter()
    transforms = [os.path.basename(t) for t in reg["fwdtransforms"]]
    return {"seconds": t2 - t0, "register_s": t1 - t0, "transforms": transforms}


def read_field(path: str):
    """An ITK/ANTs displacement field NIfTI (``(X, Y, Z, 1, 3)``, LPS vectors) -> ``(d_ras (3, X, Y, Z), affine_ras)``
    as float64 tensors, read with nibabel: unlike :func:`monai_avsm.data.export.read_displacement_field` (ITK
    Python, float vectors only) it also reads the double-precision fields that ``ants.apply_transforms(...,
    compose=...)`` writes."""
    import nibabel as nib
    import torch

    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float64)
    if data.ndim != 5 or data.shape[3] != 1 or data.shape[4] != 3:
        raise ValueError(f"read_field: {path!r} must be a 3D displacement field (X, Y, Z, 1, 3), got {data.shape}.")
    d = np.moveaxis(data[:, :, :, 0, :], -1, 0).copy()
    d[:2] *= -1.0  # LPS -> RAS vectors
    return torch.as_tensor(d), torch.as_tensor(np.asarray(img.affine, dtype=np.float64))


def gm_wm_dice(warped_label, fixed_label) -> dict:
    """Dice of GM (label 1) and WM (label 2) and their mean, of two label arrays (numpy or torch) of one shape."""
    per = [float(2 * ((warped_label == k) & (fixed_label == k)).sum()
                 / max(float((warped_label == k).sum() + (fixed_label == k).sum()), 1.0)) for k in (1, 2)]  # fmt: skip
    return {"dice": float(np.mean(per)), "dice_gm": per[0], "dice_wm": per[1]}


def evaluate_outputs(pair: dict, out: str) -> dict:
    """Dice, EPE and folds of one method's written files (``warped_label.nii.gz``, ``displacement_field.nii.gz``)
    on the fixed grid; see the module docstring."""
    import nibabel as nib
    import torch

    from monai_avsm.functional.world import voxel_world_points, world_jacobian_determinant

    row: dict = {}
    fixed_affine = nib.load(pair["fixed"]).affine
    if pair["fixed_label"]:
        fl = np.asarray(nib.load(pair["fixed_label"]).dataobj)
        wl = np.rint(np.asarray(nib.load(os.path.join(out, "warped_label.nii.gz")).dataobj)).astype(fl.dtype)
        if wl.shape != fl.shape:
            raise ValueError(f"{out}: warped_label.nii.gz has shape {wl.shape}, the fixed label {fl.shape}.")
        row.update(gm_wm_dice(wl, fl))
    from monai_avsm.apps.apply import field_in_folder  # .nii (monai-avsm's default) or .nii.gz (ANTs, --compress)

    disp, affine = read_field(field_in_folder(out))
    if np.abs(affine.numpy() - fixed_affine).max() > 1e-3:
        raise ValueError(f"{out}: the displacement field is not on the fixed image's grid.")
    points = voxel_world_points(affine, disp.shape[1:]) + disp
    det = world_jacobian_determinant(points, affine)
    row["folds"] = int((det <= 0).sum())
    if pair["truth"]:
        tdisp, _ = read_field(pair["truth"])
        mask = torch.as_tensor(np.asarray(nib.load(pair["fixed_mask"]).dataobj) > 0)
        err = torch.linalg.norm(disp - tdisp, dim=0)  # same grid: |q - q_true| = |d - d_true|
        row["epe_mm"] = float(err[mask].mean())
        row["epe_p95_mm"] = float(torch.quantile(err[mask].float()[:: max(int(mask.sum()) // 200000, 1)], 0.95))
    return row


def run_scanner_benchmark(args, methods: list[str], modes: dict[str, list[str]]) -> list[dict]:
    """Build (or reuse) the scanner-space set, run every method on the first ``args.pairs`` pairs, print the rows
    (JSON lines) and the table; return the rows."""
    import tempfile

    from monai_avsm.apps.scanner_space import build_scanner_space_set

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _harness import machine_line

    built = build_scanner_space_set(os.path.abspath(args.scanner_dir), seed=args.seed)  # methods run elsewhere
    print(f"scanner-space set {built['out_dir']} ({'reused' if built['reused'] else 'built'}, {built['seconds']} s)")
    pairs = built["pairs"][: args.pairs] if args.pairs else built["pairs"]
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_scanner_")
    os.makedirs(work, exist_ok=True)
    # each method's files (2-4 GB per set) are deleted once scored, unless asked for or written where the user chose
    keep = bool(getattr(args, "keep_outputs", False)) or args.work_dir is not None
    rows = []
    for pair in pairs:
        for method in methods:
            out = os.path.join(work, pair["pair"], method)
            os.makedirs(out, exist_ok=True)
            log = os.path.join(out, "log.txt")
            if method in ANTS_METHODS:
                cmd = [sys.executable, os.path.abspath(__file__), "--ants-worker", method, pair["moving"],
                       pair["fixed"], pair["moving_label"], out]  # fmt: skip
            else:
                cmd = [sys.executable, "-m", "monai_avsm", "register", pair["moving"], pair["fixed"], "--out", out,
                       "--overwrite", "--quiet"]  # fmt: skip
                if pair["moving_label"]:
                    cmd += ["--moving-label", pair["moving_label"], "--fixed-label", pair["fixed_label"]]
                cmd += modes[method]
            rc, process_s, peak_mb = _run_process(cmd, log)
            row = {"pair": pair["pair"], "kind": pair["kind"], "method": method, "threads": THREADS,
                   "process_s": round(process_s, 2), "peak_mb": peak_mb and round(peak_mb)}  # fmt: skip
            if rc != 0:
                with open(log) as f:
                    tail = f.read()[-1500:]
                row["error"] = f"exit {rc}: {tail}"
                print(f"{method} failed on {pair['pair']} (log {log}):\n{tail}", flush=True)
                rows.append(row)
                continue
            if method in ANTS_METHODS:
                with open(log) as f:
                    worker = json.loads(f.read().strip().splitlines()[-1])
                row["seconds"] = round(worker["seconds"], 2)
                row["register_s"] = round(worker["register_s"], 2)
            else:
                row["seconds"] = row["process_s"]
            row.update(evaluate_outputs(pair, out))
            if not keep:
                shutil.rmtree(out, ignore_errors=True)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(machine_line())
    kinds = [p["kind"] for p in pairs]
    if not keep:  # only the folders of failed methods (their logs) are left; empty pair folders go
        for folder in [os.path.join(work, p["pair"]) for p in pairs] + [work]:
            try:
                os.rmdir(folder)
            except OSError:  # not empty: a failed method's log
                pass
    where = f"outputs in {work}" if keep else "outputs deleted once scored (--keep-outputs keeps them)"
    if not keep and os.path.isdir(work):
        where += f"; failed methods' logs in {work}"
    print(f"{len(pairs)} pairs ({kinds.count('cross')} cross-template, {kinds.count('known')} known deformation); "
          f"{THREADS} threads per method; {where}")  # fmt: skip
    print_table(rows, methods)
    return rows


def _mean(values: list[float], fmt: str) -> str:
    return format(statistics.mean(values), fmt) if values else "-"


def summary(rows: list[dict], methods: list[str]) -> dict[str, dict]:
    """Per method: mean Dice (cross, known), mean EPE, largest fold count, median seconds, largest peak MB, failures."""
    out = {}
    for m in methods:
        sel = [r for r in rows if r["method"] == m and "error" not in r]
        out[m] = {
            "dice_cross": [r["dice"] for r in sel if r["kind"] == "cross" and "dice" in r],
            "dice_known": [r["dice"] for r in sel if r["kind"] == "known" and "dice" in r],
            "epe_mm": [r["epe_mm"] for r in sel if "epe_mm" in r],
            "folds": max([r["folds"] for r in sel], default=None),
            "seconds": statistics.median([r["seconds"] for r in sel]) if sel else None,
            "process_s": statistics.median([r["process_s"] for r in sel]) if sel else None,
            "peak_mb": max([r["peak_mb"] for r in sel if r["peak_mb"] is not None], default=None),
            "failed": sum(1 for r in rows if r["method"] == m and "error" in r),
        }
    return out


def print_table(rows: list[dict], methods: list[str]) -> None:
    s = summary(rows, methods)
    print("| method | Dice cross | Dice known | EPE known (mm) | folds (max) | s / pair (median) | process s | "
          "peak MB | failed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for m in methods:
        x = s[m]
        print(f"| {m} | {_mean(x['dice_cross'], '.3f')} | {_mean(x['dice_known'], '.3f')} | "
              f"{_mean(x['epe_mm'], '.2f')} | {'-' if x['folds'] is None else x['folds']} | "
              f"{'-' if x['seconds'] is None else format(x['seconds'], '.1f')} | "
              f"{'-' if x['process_s'] is None else format(x['process_s'], '.1f')} | "
              f"{'-' if x['peak_mb'] is None else x['peak_mb']} | {x['failed']} |")  # fmt: skip
    ref = s.get(REFERENCE)
    if ref and ref["seconds"]:
        print(f"\nratios to {REFERENCE} (same pairs): time = median s / SyN-CC's; Dice and EPE as differences")
        print("| method | time ratio | Dice cross - SyN-CC | Dice known - SyN-CC | EPE ratio |")
        print("|---|---|---|---|---|")
        for m in methods:
            x = s[m]

            def diff(key):
                if not x[key] or not ref[key]:
                    return "-"
                return f"{statistics.mean(x[key]) - statistics.mean(ref[key]):+.3f}"

            epe = (f"{statistics.mean(x['epe_mm']) / statistics.mean(ref['epe_mm']):.2f}"
                   if x["epe_mm"] and ref["epe_mm"] and statistics.mean(ref["epe_mm"]) > 0 else "-")  # fmt: skip
            t = f"{x['seconds'] / ref['seconds']:.2f}" if x["seconds"] else "-"
            print(f"| {m} | {t} | {diff('dice_cross')} | {diff('dice_known')} | {epe} |")


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--ants-worker":
        print(json.dumps(ants_worker(*sys.argv[2:7])), flush=True)
    else:
        raise SystemExit("usage: _scanner_set.py --ants-worker METHOD MOVING FIXED MOVING_LABEL OUT_DIR")
