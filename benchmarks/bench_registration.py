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
"""Benchmark: registration accuracy and time per pair of every method in one run (method spec §8, paper Table 1 /
Fig. 5), on the sample test pairs:

- cross-anatomy pairs: the datalist's test pairs (two different brain templates);
- known-deformation pairs: each test image against a known random deformation of itself (end-point error).

Methods: identity, the shipped network's affine part, the AVSM network, AVSM + refine (20 L-BFGS iterations),
affine-opt, affine-opt + vSVF-opt, and ANTs (``antspyx``, optional: ``Affine`` and ``SyN`` with ANTsPy's defaults).
monai_avsm's methods run on the bundle's working grid (48x56x48); ANTs on the files' native 2 mm grid. Every result
is measured the same way on the fixed image's native grid: Dice of grey/white matter (the moving label resampled
once, nearest neighbour), folds (voxels with det J <= 0 of the deformable part), end-point error (mm, inside the
fixed brain) against the true map, time per pair and threads. The symmetry measure needs both directions of every
method; it is reported for the network (run in both directions), not for the per-pair optimisers or ANTs.

    python benchmarks/bench_registration.py                     # needs the sample data (built if missing)
    python benchmarks/bench_registration.py --methods identity,avsm,ants_syn --plot docs/images/fig5.png

``--set scanner``: the scanner-space set (:mod:`monai_avsm.apps.scanner_space`: held-out templates and pydeface's
head under large random poses, smooth deformations, oblique grids, bias and noise; built if missing), with ANTs
Affine, SyN, SyN-CC and the ``monai-avsm register`` command, each a separate process timed from files to files
(see ``benchmarks/_scanner_set.py``):

    python benchmarks/bench_registration.py --set scanner --pairs 3 --json scanner.json
    python benchmarks/bench_registration.py --set scanner --avsm-modes "default:;fast:--fast"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import machine_line  # noqa: E402

METHODS = ["identity", "affine_net", "avsm", "avsm_refine", "affine_opt", "vsvf_opt", "ants_affine", "ants_syn"]
#: methods of ``--set scanner`` (plus one ``avsm_<mode>`` per extra ``--avsm-modes`` entry)
SCANNER_METHODS = ["ants_affine", "ants_syn", "ants_syn_cc", "avsm"]


def load_network(device):
    from monai.bundle import ConfigParser

    cfg = os.path.join(REPO, "bundle", "configs")
    parser = ConfigParser()
    parser.read_config(os.path.join(cfg, "inference.json"))
    parser["bundle_root"] = os.path.join(REPO, "bundle")
    net = parser.get_parsed_content("network_def").to(device)
    net.load_state_dict(torch.load(os.path.join(REPO, "bundle", "models", "model.pt"), weights_only=True))
    return net.eval(), parser["spatial_size"]


def make_known_pairs(data: str, out: str, seed: int = 0) -> list[dict]:
    """Each test image against a known deformation of itself, written as NIfTI; the true map (native grid)."""
    import nibabel as nib

    from monai_avsm.data import load_pair_datalist
    from monai_avsm.transforms import RandSyntheticDeformation

    images = load_pair_datalist(os.path.join(data, "datalist.json"), section="test_images")
    pairs = []
    for i, item in enumerate(images):
        img = nib.load(item["image"])
        lab = nib.load(item["label"])
        x = torch.as_tensor(np.asarray(img.dataobj, dtype=np.float32))[None]
        y = torch.as_tensor(np.asarray(lab.dataobj, dtype=np.int64))[None]
        spacing = [float(s) for s in img.header.get_zooms()[:3]]
        rand = RandSyntheticDeformation(rotation_deg=5.0, scale=0.05, translation_mm=5.0, displacement_mm=4.0)
        rand.set_random_state(seed + i)
        rand.draw(tuple(x.shape[1:]), spacing)
        fixed = rand(x, mode="bilinear", randomize=False)
        fixed_label = rand(y, mode="nearest", randomize=False)
        phi, _ = rand.deformation.maps(x.shape[1:])
        stem = os.path.basename(item["image"]).split(".")[0]
        f_img, f_lab = os.path.join(out, f"{stem}_deformed.nii.gz"), os.path.join(out, f"{stem}_deformed_label.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(fixed[0], dtype=np.float32), img.affine), f_img)
        nib.save(nib.Nifti1Image(np.asarray(fixed_label[0], dtype=np.uint8), img.affine), f_lab)
        pairs.append({"moving": item["image"], "fixed": f_img, "moving_label": item["label"], "fixed_label": f_lab,
                      "true_map": phi.double(), "kind": "known"})  # fmt: skip
    return pairs


def true_points(pair: dict, native_affine: torch.Tensor) -> torch.Tensor:
    """World points (RAS mm) the fixed native voxels pull from under the true map (moving = fixed grid here)."""
    from monai_avsm.functional.world import normalized_to_world

    phi = pair["true_map"]  # (D, *S) normalised on the native grid
    w = normalized_to_world(native_affine, phi.shape[1:])
    return torch.einsum("ij,j...->i...", w[:3, :3], phi) + w[:3, 3].reshape(3, 1, 1, 1)


def evaluate_points(resampler, points, fixed_label, mask, true_pts, phi_for_folds=None, det=None) -> dict:
    from monai_avsm.metrics import compute_folds
    from monai_avsm.metrics.dice import dice_per_label

    dice = dice_per_label(resampler.warp(points, label=True), fixed_label, 3)
    row = {"dice": float(np.nanmean(dice)), "dice_gm": dice[0], "dice_wm": dice[1]}
    if true_pts is not None:
        err = torch.linalg.norm(points - true_pts, dim=0)
        row["epe_mm"] = float(err[mask].mean())
    if phi_for_folds is not None:
        row["folds"] = int(compute_folds(phi_for_folds.double())["count"][0])
    if det is not None:
        row["folds"] = int((det <= 0).sum())
    return row


def run_ants(pair, kind, threads):
    import ants

    fixed = ants.image_read(pair["fixed"])
    moving = ants.image_read(pair["moving"])
    start = time.perf_counter()
    reg = ants.registration(fixed=fixed, moving=moving, type_of_transform="Affine" if kind == "ants_affine" else "SyN")
    seconds = time.perf_counter() - start
    return reg, seconds


def ants_points(reg, pair, moving_affine_ras):
    """World points (RAS) for every fixed native voxel, by warping images of the moving voxels' RAS coordinates."""
    import ants
    import nibabel as nib

    mov = nib.load(pair["moving"])
    shape = mov.shape[:3]
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), 0).reshape(3, -1)
    ras = (moving_affine_ras[:3, :3] @ idx + moving_affine_ras[:3, 3:4]).reshape(3, *shape)
    fixed = ants.image_read(pair["fixed"])
    moving = ants.image_read(pair["moving"])
    out = []
    for c in range(3):
        coord = moving.new_image_like(np.asarray(ras[c], dtype=np.float32))
        w = ants.apply_transforms(fixed=fixed, moving=coord, transformlist=reg["fwdtransforms"], interpolator="linear")
        out.append(torch.as_tensor(w.numpy(), dtype=torch.float64))
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--set",
        choices=("sample", "scanner"),
        default="sample",
        help="sample: the sample data's test pairs (default); scanner: the scanner-space set",
    )
    parser.add_argument("--data", default="avsm_sample")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated (default: {','.join(METHODS)}; with --set scanner: "
                        f"{','.join(SCANNER_METHODS)} and the --avsm-modes)")  # fmt: skip
    parser.add_argument("--refine-iterations", type=int, default=20)
    parser.add_argument("--plot", default=None, help="write a Fig. 5-style box plot PNG here")
    parser.add_argument("--json", default=None, help="write the per-pair rows here")
    scanner = parser.add_argument_group("--set scanner")
    scanner.add_argument("--scanner-dir", default="avsm_scanner", help="folder of the set (built if missing)")
    scanner.add_argument("--seed", type=int, default=0, help="seed of the set (default 0)")
    scanner.add_argument("--pairs", type=int, default=0, help="only the first N pairs (default: all)")
    scanner.add_argument("--avsm-modes", default="default:",
                         help="named extra-argument sets of 'monai-avsm register', NAME:ARGS separated by ';' "
                         "(default 'default:', the plain command; e.g. 'default:;fast:--fast'); mode NAME is "
                         "method avsm_NAME, mode 'default' is avsm")  # fmt: skip
    scanner.add_argument("--work-dir", default=None,
                         help="where the methods write, kept (default: a new temporary folder, each method's "
                         "files deleted once scored)")  # fmt: skip
    scanner.add_argument("--keep-outputs", action="store_true", help="keep the files of the temporary folder")
    args = parser.parse_args()
    if args.set == "scanner":
        from _scanner_set import ANTS_METHODS, parse_avsm_modes, run_scanner_benchmark

        modes = parse_avsm_modes(args.avsm_modes)
        methods = args.methods.split(",") if args.methods else [*ANTS_METHODS, *modes]
        unknown = [m for m in methods if m not in ANTS_METHODS and m not in modes]
        if unknown:
            raise SystemExit(f"unknown methods {unknown} for --set scanner; choose from {[*ANTS_METHODS, *modes]}")
        if any(m in ANTS_METHODS for m in methods):
            try:
                import ants  # noqa: F401
            except ImportError:
                methods = [m for m in methods if m not in ANTS_METHODS]
                print("antspyx is not installed (pip install monai_avsm[bench]): the ANTs rows are skipped")
        rows = run_scanner_benchmark(args, methods, modes)
        if args.json:
            from _scanner_set import summary

            with open(args.json, "x") as f:
                json.dump({"rows": rows, "summary": summary(rows, methods)}, f, indent=1)
        return
    methods = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {METHODS}")
    from monai.data import DataLoader, Dataset

    from monai_avsm.data import load_pair_datalist, pair_loading_transforms
    from monai_avsm.engines import NativeResampler, PreparePairBatch, pair_geometry, pair_name
    from monai_avsm.metrics import compute_symmetry_error
    from monai_avsm.optimization import affine_opt, refine, vsvf_opt

    if not os.path.exists(os.path.join(args.data, "datalist.json")):
        from monai_avsm.apps.sample import build_sample_dataset

        build_sample_dataset(args.data)
    has_ants = True
    try:
        import ants  # noqa: F401
    except ImportError:
        has_ants = False
        methods = [m for m in methods if not m.startswith("ants")]
        print("antspyx is not installed (pip install monai_avsm[bench]): the ANTs rows are skipped")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()
    net, size = load_network(device)
    tmp = tempfile.mkdtemp()
    pairs = [
        dict(p, kind="cross") for p in load_pair_datalist(os.path.join(args.data, "datalist.json"), section="test")
    ]
    pairs += make_known_pairs(args.data, tmp)
    loading = pair_loading_transforms(spatial_size=size)
    prepare = PreparePairBatch()
    rows = []
    for pair in pairs:
        item = {k: pair[k] for k in ("moving", "fixed", "moving_label", "fixed_label")}
        batch = next(iter(DataLoader(Dataset([item], loading), batch_size=1)))
        g = pair_geometry(batch)
        r = NativeResampler(g)
        fixed_label = r.fixed_label().as_tensor()
        mask = fixed_label[0] > 0
        true_pts = true_points(pair, g["native_affine"]) if pair["kind"] == "known" else None
        moving, fixed, _, kw = prepare(batch, device)
        name = pair_name(g)
        cache: dict = {}

        def record(method, points, seconds, phi=None, det=None, extra=None):
            row = {
                "pair": name,
                "kind": pair["kind"],
                "method": method,
                "seconds": round(seconds, 3),
                "threads": threads,
            }
            row.update(evaluate_points(r, points, fixed_label, mask, true_pts, phi, det))
            row.update(extra or {})
            rows.append(row)
            print(json.dumps(row), flush=True)

        for method in methods:
            if method == "identity":
                record(method, r.identity_points(), 0.0)
                continue
            if method in ("affine_net", "avsm", "avsm_refine") and "net" not in cache:
                t0 = time.perf_counter()
                with torch.no_grad():
                    out = net(moving, fixed, **kw)
                cache["net"], cache["net_s"] = out, time.perf_counter() - t0
                with torch.no_grad():
                    cache["net_ts"] = net(fixed, moving, **kw)["map"]
            if method == "affine_net":
                out = cache["net"]
                record(method, r.affine_points(out["affine"][0].cpu()), cache["net_s"])
            elif method == "avsm":
                out = cache["net"]
                sym = float(compute_symmetry_error(out["map"].double(), cache["net_ts"].double())[0])
                record(method, r.points(out["map"][0]), cache["net_s"], phi=out["map"], extra={"symmetry": sym})
            elif method == "avsm_refine":
                t0 = time.perf_counter()
                with torch.enable_grad():
                    ref = refine(
                        cache["net"], iterations=args.refine_iterations, warp=net.vsvf_net.warp, progress=False
                    )
                secs = cache["net_s"] + time.perf_counter() - t0
                record(method, r.points(ref["map"][0].detach()), secs, phi=ref["map"].detach())
            elif method == "affine_opt":
                t0 = time.perf_counter()
                aff = affine_opt(moving, fixed, seed=0, progress=False)
                cache["aff"], cache["aff_s"] = aff, time.perf_counter() - t0
                record(method, r.affine_points(aff["affine"][0].detach().cpu()), cache["aff_s"])
            elif method == "vsvf_opt":
                if "aff" not in cache:
                    t0 = time.perf_counter()
                    cache["aff"], cache["aff_s"] = affine_opt(moving, fixed, seed=0, progress=False), 0.0
                    cache["aff_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                v = vsvf_opt(moving, fixed, initial_map=cache["aff"]["map"].detach(), seed=0, progress=False)
                secs = cache["aff_s"] + time.perf_counter() - t0
                record(method, r.points(v["map"][0].detach()), secs, phi=v["map"].detach())
            elif method.startswith("ants") and has_ants:
                import ants

                reg, secs = run_ants(pair, method, threads)
                pts = ants_points(reg, pair, torch.as_tensor(__import__("nibabel").load(pair["moving"]).affine).numpy())
                det = None
                if method == "ants_syn":
                    warp = [t for t in reg["fwdtransforms"] if t.endswith("Warp.nii.gz")][0]
                    jac = ants.create_jacobian_determinant_image(ants.image_read(pair["fixed"]), warp, do_log=False)
                    det = torch.as_tensor(jac.numpy())
                record(method, pts, secs, det=det)
    print(machine_line())
    n_cross = sum(p["kind"] == "cross" for p in pairs)
    n_known = len(pairs) - n_cross
    print(f"{len(pairs)} pairs ({n_cross} cross-anatomy, {n_known} known deformation); {device}, {threads} threads")
    header = ["method", "Dice cross (mean, sd)", "Dice known (mean, sd)", "EPE known (mm)", "folds (max)", "symmetry"]
    print("| " + " | ".join(header + ["s / pair"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for method in methods:
        sel = [x for x in rows if x["method"] == method]

        def stat(kind, key):
            v = [x[key] for x in sel if x["kind"] == kind and key in x]
            if not v:
                return "-"
            sd = statistics.pstdev(v) if len(v) > 1 else 0.0
            return f"{statistics.mean(v):.3f} ({sd:.3f})"

        folds = [x["folds"] for x in sel if "folds" in x]
        sym = [x["symmetry"] for x in sel if "symmetry" in x]
        epe = [x["epe_mm"] for x in sel if "epe_mm" in x]
        cells = [
            method,
            stat("cross", "dice"),
            stat("known", "dice"),
            f"{statistics.mean(epe):.2f}" if epe else "-",
            str(max(folds)) if folds else "-",
            f"{statistics.mean(sym):.2f}" if sym else "-",
            f"{statistics.mean(x['seconds'] for x in sel):.2f}",
        ]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.json:
        with open(args.json, "x") as f:
            json.dump(rows, f, indent=1)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1.3 * len(methods) + 2, 4))
        ax.boxplot([[x["dice"] for x in rows if x["method"] == m] for m in methods])
        ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30)
        ax.set_ylabel("mean Dice (GM, WM), all test pairs")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
