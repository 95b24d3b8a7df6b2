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
"""Demo: vSVF registration of a real MRI volume to a known deformation of itself, on the CPU in seconds.

The quick start's first command runs this until the MONAI bundle (training on sample data) lands. It exercises the
whole spatial core on real data that ships with nibabel (a 33x41x25 T1 at 2 mm): the fixed image is the moving
image deformed by a random smooth vSVF map (the ground truth); the momentum of a second vSVF map is then optimised
with mk-LNCC and the momentum regulariser (paper eq. 8-9), and the recovered map is compared with the truth.

    python -m monai_avsm.demo --out avsm_demo          # writes NIfTI images and metrics.json into a new folder
    python -m monai_avsm.demo --help

Nothing is downloaded; MONAI reads and normalises the image (``LoadImage``, ``ScaleIntensityRangePercentiles``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.transforms import LoadImage, ScaleIntensityRangePercentiles

from monai_avsm._version import __version__
from monai_avsm.functional import identity_map, jacobian_determinant, map_to_ddf
from monai_avsm.losses import MKLNCCLoss, MomentumRegularizationLoss
from monai_avsm.metrics import compute_folds
from monai_avsm.networks.blocks import VSVFWarp
from monai_avsm.utils.validation import check_finite

__all__ = ["sample_image_path", "run_demo", "main"]

logger = logging.getLogger("monai_avsm.demo")


def sample_image_path() -> str:
    """Path of the real T1 volume shipped with nibabel (``nibabel/tests/data/anatomical.nii``)."""
    spec = importlib.util.find_spec("nibabel")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("monai_avsm.demo: nibabel is not installed; 'pip install nibabel'.")
    path = os.path.join(spec.submodule_search_locations[0], "tests", "data", "anatomical.nii")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"monai_avsm.demo: the sample image {path} is missing from this nibabel install.")
    return path


def _low_shape(shape) -> tuple[int, ...]:
    return tuple(max((s + 1) // 2, 2) for s in shape)


def run_demo(
    image_path: str | None = None,
    iterations: int = 150,
    magnitude: float = 2.0,
    lambda_reg: float = 0.5,
    lr: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """Deform a real image by a random vSVF map, recover the map by optimising a momentum, return the results.

    Args:
        image_path: a 3D image MONAI can read (default: nibabel's sample T1).
        iterations: Adam iterations on the momentum.
        magnitude: RMS displacement of the true deformation, in voxels.
        lambda_reg: weight of the momentum regulariser :math:`\\lambda_{vr} \\langle m, v \\rangle`.
        lr: Adam learning rate.
        seed: seed of the random true deformation.
        device: ``"cpu"`` or ``"cuda"``.

    Returns:
        dict with the images, maps and a ``"metrics"`` dict (errors before and after, folds, time).
    """
    path = image_path or sample_image_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"monai_avsm.demo: image file {path!r} does not exist.")
    img = LoadImage(image_only=True, ensure_channel_first=True)(path)
    if img.ndim != 4:
        raise ValueError(f"monai_avsm.demo: {path!r} must be a 3D image, got shape {tuple(img.shape)} (channel first).")
    check_finite(torch.as_tensor(np.asarray(img)), path, "monai_avsm.demo")
    img = ScaleIntensityRangePercentiles(lower=0.1, upper=99.9, b_min=0.0, b_max=1.0, clip=True)(img)
    spacing = tuple(float(s) for s in img.pixdim[:3])
    affine = np.asarray(img.affine)
    dev = torch.device(device)
    moving = torch.as_tensor(np.asarray(img), dtype=torch.float32, device=dev).unsqueeze(0)  # (1, 1, *S)
    shape = tuple(moving.shape[2:])
    low = _low_shape(shape)
    block = VSVFWarp(3).to(dev)

    # ground truth: a random smooth momentum, scaled so that the RMS displacement is `magnitude` voxels
    g = torch.Generator().manual_seed(seed)
    m_true = torch.randn(1, 3, *low, generator=g).to(dev)
    ident = identity_map(shape, device=dev)
    with torch.no_grad():
        rms = map_to_ddf(block(m_true, ident, moving, spacing)["map"]).pow(2).sum(1).mean().sqrt()
        m_true *= magnitude / float(rms)
        truth = block(m_true, ident, moving, spacing)
    fixed, map_true = truth["warped"], truth["map"]

    similarity = MKLNCCLoss(spatial_dims=3)
    regulariser = MomentumRegularizationLoss(weight=lambda_reg)
    momentum = torch.zeros(1, 3, *low, device=dev, requires_grad=True)
    optimizer = torch.optim.Adam([momentum], lr=lr)
    history = []
    start = time.perf_counter()
    for it in range(iterations):
        optimizer.zero_grad()
        out = block(momentum, ident, moving, spacing)
        loss = similarity(out["warped"], fixed) + regulariser(momentum, out["velocity"], spacing)
        loss.backward()
        optimizer.step()
        history.append(float(loss.detach()))
        if it % max(iterations // 10, 1) == 0 or it == iterations - 1:
            logger.info("iteration %4d/%d  loss %.5f", it + 1, iterations, history[-1])
    seconds = time.perf_counter() - start

    def voxel_error(phi):
        return map_to_ddf(phi - map_true + ident).pow(2).sum(1).sqrt()

    with torch.no_grad():
        result = block(momentum, ident, moving, spacing)
        margin = 3
        inner = (slice(None),) + tuple(slice(margin, n - margin) for n in shape)
        err_before, err_after = voxel_error(ident)[inner], voxel_error(result["map"])[inner]
        folds = compute_folds(result["map"])
        metrics = {
            "image": path,
            "shape": list(shape),
            "spacing_mm": list(spacing),
            "iterations": iterations,
            "seconds": round(seconds, 3),
            "device": str(dev),
            "mklncc_before": float(similarity(moving, fixed)),
            "mklncc_after": float(similarity(result["warped"], fixed)),
            "mse_before": float(((moving - fixed) ** 2).mean()),
            "mse_after": float(((result["warped"] - fixed) ** 2).mean()),
            "map_error_voxels_mean_before": float(err_before.mean()),
            "map_error_voxels_mean_after": float(err_after.mean()),
            "folds": int(folds["count"][0]),
            "monai_avsm_version": __version__,
            "torch_version": torch.__version__,
        }
    return {
        "moving": moving,
        "fixed": fixed,
        "warped": result["warped"],
        "map": result["map"],
        "map_true": map_true,
        "affine": affine,
        "history": history,
        "metrics": metrics,
    }


def _save(array: torch.Tensor, affine: np.ndarray, path: Path) -> None:
    nib.save(nib.Nifti1Image(array.detach().cpu().numpy().astype(np.float32), affine), str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_avsm.demo",
        description="vSVF registration of a real MRI volume (shipped with nibabel) to a known smooth deformation of "
        "itself; writes the images, the Jacobian determinant and metrics.json into a new folder.",
    )
    parser.add_argument("--out", default="avsm_demo", help="output folder, must not exist yet (default: avsm_demo)")
    parser.add_argument("--image", default=None, help="a 3D image to use instead of the sample (NIfTI, NRRD, ...)")
    parser.add_argument("--iterations", type=int, default=150, help="optimisation iterations (default 150)")
    parser.add_argument("--magnitude", type=float, default=2.0, help="RMS true displacement in voxels (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--overwrite", action="store_true", help="allow writing into an existing folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        parser.error(f"output folder {str(out)!r} exists and is not empty; choose another --out or pass --overwrite")
    res = run_demo(args.image, args.iterations, args.magnitude, seed=args.seed, device=args.device)
    out.mkdir(parents=True, exist_ok=True)
    for key in ("moving", "fixed", "warped"):
        _save(res[key][0, 0], res["affine"], out / f"{key}.nii.gz")
    _save(jacobian_determinant(res["map"])[0, 0], res["affine"], out / "jacobian_determinant.nii.gz")
    with open(out / "metrics.json", "w") as f:
        json.dump(res["metrics"], f, indent=2)
    m = res["metrics"]
    logger.info(
        "\nmk-LNCC %.4f -> %.4f | MSE %.5f -> %.5f | map error %.3f -> %.3f voxels (mean, interior) | "
        "folds %d | %.1f s",
        m["mklncc_before"],
        m["mklncc_after"],
        m["mse_before"],
        m["mse_after"],
        m["map_error_voxels_mean_before"],
        m["map_error_voxels_mean_after"],
        m["folds"],
        m["seconds"],
    )
    logger.info("wrote %s", ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
