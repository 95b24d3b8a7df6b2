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
r"""The accurate registration of one pair at the fixed image's own resolution, shared by :func:`monai_avsm.register`
(the default mode of ``monai-avsm register``) and the bundle's inference
(:class:`~monai_avsm.handlers.RegistrationWriter` with ``mode="accurate"``):

1. :func:`~monai_avsm.optimization.initial_alignment` from any orientation (centre of mass, a rotation search,
   affine-opt at 6 and 3 mm; the network's affine, when given, is one more candidate; the best-scoring candidate
   wins);
2. the moving image sampled once on the fixed native grid moved by that affine (the moving "working" grid is
   ``T @ fixed affine``, so the world bookkeeping stays exact);
3. :func:`~monai_avsm.optimization.deformable_opt` (vSVF, levels 1/4, 1/2, 1 of the fixed grid, finest capped at
   1 mm, the ``"brain"`` preset).

The result has the network's form (``map``/``affine``/``velocities``, an identity affine on the aligned grid, the
optimisation's integrator for the inverse), so :func:`~monai_avsm.engines.write_pair_outputs` writes it as it writes
the network's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from monai_avsm.data.image_io import NativeImage
from monai_avsm.engines.native import Grid, PairGeometry
from monai_avsm.functional.affine import identity_affine, theta_from_affine
from monai_avsm.functional.intensity import percentile_scale
from monai_avsm.functional.world import apply_affine_points, resample_world, voxel_world_points, world_to_normalized

__all__ = ["accurate_registration", "aligned_image", "working_mask"]

_INPUTS = ("moving", "fixed", "moving_label", "fixed_label")


def working_mask(mask: NativeImage, fixed_grid: Grid, device: torch.device) -> torch.Tensor:
    """The fixed-image mask on a grid of the fixed image ``(1, 1, *S)`` float (nearest neighbour by world position).

    Raises:
        ValueError: the mask selects no voxel of the grid.
    """
    points = voxel_world_points(fixed_grid.affine, fixed_grid.shape)
    w = resample_world(mask.data.to(torch.float32), mask.affine, points, "nearest")
    if float(w.sum()) == 0:
        raise ValueError(
            f"register: the mask {mask.path!r} selects no voxel of the fixed image's working grid (is it the fixed "
            "image's mask, in the same world space?)."
        )
    return w.unsqueeze(0).to(device)


def aligned_image(image: NativeImage, matrix: torch.Tensor, grid: Grid, scaled: bool = True) -> torch.Tensor:
    """``(1, 1, *grid.shape)``: ``image`` (percentile-scaled on its native voxels, as the training data) sampled at
    the world points ``T p`` of ``grid``'s voxels ``p`` (``T = matrix``, fixed world -> moving world)."""
    data = percentile_scale(image.data) if scaled else image.data.to(torch.float32)
    points = apply_affine_points(matrix.to(torch.float64), voxel_world_points(grid.affine, grid.shape))
    return resample_world(data, image.affine, points, mode="bilinear")[None].to(torch.float32)


def _mi_loss():
    """MONAI's global mutual information (Parzen windows) for the alignment (its inputs are in [0, 1])."""
    from monai.losses import GlobalMutualInformationLoss

    return GlobalMutualInformationLoss(reduction="none")


def accurate_registration(
    images: Mapping[str, NativeImage],
    mask_image: NativeImage | None,
    files: Mapping[str, str],
    network_affine: torch.Tensor | None,
    device: torch.device | str | None,
    max_seconds: float | None,
    step: Callable[[str], None] | None = None,
    timings: dict[str, float] | None = None,
    similarity: str = "lncc",
    prealignment: Mapping[str, Any] | None = None,
    initial_points: torch.Tensor | None = None,
) -> tuple[dict, PairGeometry, Any, dict]:
    """The accurate path on the fixed image's own grid (module docstring).

    Args:
        images: the pair as read (``moving``, ``fixed``; labels optional), each once.
        mask_image: an optional binary mask of the fixed image (the similarity counts inside it).
        files: the input files by key (for the geometry's record).
        network_affine: the network's world affine ``(D + 1, D + 1)`` (one more candidate), or ``None``.
        device: where the optimisation runs.
        max_seconds: wall-time budget of the optimisation (``None``: no limit).
        step: called with the name of each step (progress reporting).
        timings: a dict that receives ``alignment_seconds`` and ``optimisation_seconds``.
        similarity: ``"lncc"`` or ``"mi"``.
        prealignment: the result of a full :func:`~monai_avsm.optimization.initial_alignment` already run for this
            pair (a model that works after the initial alignment): the alignment is then only the selection among
            it, the network's affine and the identity (``mode="select"``), not a second search.
        initial_points: the network's full transformation as world points ``(D, *fixed native shape)`` (moving world
            RAS mm of every fixed native voxel, :meth:`~monai_avsm.engines.NativeResampler.points`): the
            optimisation starts from it when it scores better than the identity (``check_initial_map``).

    Returns:
        ``(pred, geometry, integrator, report)``: the result in the writer's form (``map``/``affine``/``velocities``
        on the fixed native grid pulling into the aligned moving grid), its :class:`~monai_avsm.engines.PairGeometry`,
        the integrator for the inverse and a report (the alignment's candidates and scores, the levels).
    """
    timings = timings if timings is not None else {}
    device = torch.device("cpu") if device is None else torch.device(device)
    from monai_avsm.optimization.alignment import initial_alignment
    from monai_avsm.optimization.deformable import deformable_opt

    fixed_native = Grid.of(images["fixed"], files["fixed"])
    moving_native = Grid.of(images["moving"], files["moving"])
    fixed_mask = None
    if mask_image is not None:
        fixed_mask = (working_mask(mask_image, fixed_native, torch.device("cpu"))[0, 0] > 0).to(torch.float32)
    if step is not None:
        step("initial alignment")
    t0 = time.perf_counter()
    candidates = {} if network_affine is None else {"network": network_affine.to(torch.float64).cpu()}
    if prealignment is not None:
        candidates["prealignment"] = prealignment["matrix"].to(torch.float64).cpu()
    align = initial_alignment(
        images["moving"].data[None],
        images["fixed"].data[None],
        moving_native.affine,
        fixed_native.affine,
        mode="full" if prealignment is None else "select",
        candidates=candidates or None,
        mask=None if fixed_mask is None else fixed_mask,
        similarity=_mi_loss() if similarity == "mi" else None,
    )
    T = align["matrix"].to(torch.float64).cpu()
    timings["alignment_seconds"] = time.perf_counter() - t0
    if step is not None:
        step("deformable optimisation")
    t0 = time.perf_counter()
    moving_grid = Grid(fixed_native.shape, T @ fixed_native.affine, files["moving"])
    mov = aligned_image(images["moving"], T, fixed_native).to(device)
    fix = percentile_scale(images["fixed"].data)[None].to(device)
    phi0 = None
    if initial_points is not None:
        to_norm = world_to_normalized(moving_grid.affine, moving_grid.shape)
        phi0 = apply_affine_points(to_norm, initial_points.to(torch.float64).cpu())[None].to(device, torch.float32)
    opt = deformable_opt(
        mov,
        fix,
        initial_map=phi0,
        check_initial_map=phi0 is not None,
        spacing=fixed_native.spacing,
        preset="brain",
        max_finest_spacing_mm=1.0,
        max_seconds=max_seconds,
        mask=None if fixed_mask is None else fixed_mask[None, None].to(device),
        similarity=similarity,
    )
    timings["optimisation_seconds"] = time.perf_counter() - t0
    ndim = len(fixed_native.shape)
    theta = theta_from_affine(*identity_affine(1, ndim, device=device))  # T is in the moving grid
    pred = {"map": opt["map"], "affine": theta, "warped": opt["warped"], "velocities": opt["velocities"]}
    geometry = PairGeometry(
        fixed=fixed_native,
        moving=moving_grid,
        fixed_native=fixed_native,
        moving_native=moving_native,
        files={k: files.get(k) for k in _INPUTS},
    )
    report = {
        "alignment": {
            "chosen": align["chosen"],
            "candidates": {k: float(v["score"]) for k, v in align["candidates"].items()},
            "seconds": align.get("seconds"),
        },
        "optimisation": {
            "started_from": "identity" if phi0 is None or not bool(opt["initial_map_used"].all()) else "network",
            "levels": opt["levels"],
            "folds": [int(f) for f in opt["folds"]],
            "momentum_scale": opt.get("momentum_scale"),
            "seconds": opt.get("seconds"),
        },
    }
    return pred, geometry, opt["integrator"], report
