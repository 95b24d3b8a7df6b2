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
"""Known-answer alignment cases on a real template (nilearn's ICBM152 2009a T1, read from the installed package;
nothing is downloaded), shared by ``test_alignment.py`` and ``benchmarks/bench_alignment.py``.

A case is a fixed image on one grid and a moving copy on another grid (other spacing, shape and an oblique
direction), made by ``moving(q) = template(T^{-1} q)``, so that the true world pull-back matrix is ``T``:
``moving(T p) = template(p)``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from monai_avsm.apps.sample import GRID_CENTRE_MM
from monai_avsm.data.templates import TEMPLATE_SOURCES
from monai_avsm.functional import apply_affine_points, resample_world, voxel_world_points

#: the brain centre of the MNI templates (mm, RAS): translation errors are measured there
BRAIN_CENTRE = torch.tensor(GRID_CENTRE_MM, dtype=torch.float64)


def template_path(name: str = "icbm2009a_sym") -> str | None:
    """Path of a sample template (``monai_avsm.data.templates.TEMPLATE_SOURCES``; default nilearn's ICBM152 2009a T1),
    ``None`` when its package is not installed."""
    src = TEMPLATE_SOURCES[name]
    spec = importlib.util.find_spec(src.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], src.path)
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=None)
def template(factor: int = 1, name: str = "icbm2009a_sym") -> tuple[torch.Tensor, torch.Tensor]:
    """A template ``(1, 1, *S)`` float32 averaged over ``factor^3`` blocks of 1 mm voxels, and its RAS affine (the
    file's voxel axes and orientation are kept: FSL's MNI152 is LAS)."""
    import nibabel as nib
    import numpy as np

    img = nib.load(template_path(name))
    vol = torch.as_tensor(np.asarray(img.dataobj, dtype=np.float32))[None, None]
    affine = torch.as_tensor(img.affine, dtype=torch.float64)
    if factor > 1:
        n = [s // factor * factor for s in vol.shape[2:]]
        vol = F.avg_pool3d(vol[..., : n[0], : n[1], : n[2]], factor)
        block = torch.eye(4, dtype=torch.float64) * factor
        block[3, 3] = 1.0
        block[:3, 3] = (factor - 1) / 2.0  # block k is centred on the 1 mm voxel k factor + (factor - 1) / 2
        affine = affine @ block
    return vol.contiguous(), affine


def axis_angle(axis: Sequence[float], degrees: float) -> torch.Tensor:
    """Rotation matrix ``(3, 3)`` float64 about ``axis`` (Rodrigues' formula)."""
    a = torch.tensor(axis, dtype=torch.float64)
    a = a / a.norm()
    k = torch.zeros(3, 3, dtype=torch.float64)
    k[0, 1], k[0, 2], k[1, 0], k[1, 2], k[2, 0], k[2, 1] = -a[2], a[1], a[2], -a[0], -a[1], a[0]
    t = math.radians(degrees)
    return torch.eye(3, dtype=torch.float64) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)


def rigid(axis: Sequence[float], degrees: float, shift_mm: Sequence[float], centre=BRAIN_CENTRE) -> torch.Tensor:
    """World matrix ``p -> R (p - c) + c + t`` ``(4, 4)``: a rotation about the brain centre, then a shift."""
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = axis_angle(axis, degrees)
    out[:3, 3] = centre + torch.tensor(shift_mm, dtype=torch.float64) - out[:3, :3] @ centre
    return out


def oblique_grid(
    centre: torch.Tensor, spacing: Sequence[float], shape: Sequence[int], direction: torch.Tensor
) -> torch.Tensor:
    """Voxel -> world matrix of a grid with columns ``direction * spacing``, centred on ``centre``."""
    out = torch.eye(4, dtype=torch.float64)
    out[:3, :3] = direction.to(torch.float64) @ torch.diag(torch.tensor(spacing, dtype=torch.float64))
    half = (torch.tensor(shape, dtype=torch.float64) - 1) / 2
    out[:3, 3] = centre - out[:3, :3] @ half
    return out


def moved_copy(
    source: torch.Tensor, source_affine: torch.Tensor, truth: torch.Tensor, grid_affine, grid_shape
) -> torch.Tensor:
    """``moving(q) = source(T^{-1} q)`` on the grid (trilinear), so that ``moving(T p) = source(p)``."""
    points = apply_affine_points(torch.linalg.inv(truth), voxel_world_points(grid_affine, grid_shape))
    return resample_world(source, source_affine, points)


def rigid_case(factor: int, truth: torch.Tensor, spacing, shape, direction=((1.0, -1.0, 2.0), 15.0)):
    """``(moving, moving_affine, fixed, fixed_affine)``: the template at ``factor`` mm as the fixed image, the moved
    copy on an oblique grid (``spacing``, ``shape``, direction rotated by ``direction = (axis, degrees)``) centred on
    the moved brain centre."""
    fixed, fixed_affine = template(factor)
    centre = truth[:3, :3] @ BRAIN_CENTRE + truth[:3, 3]
    grid = oblique_grid(centre, spacing, shape, axis_angle(*direction))
    return moved_copy(fixed, fixed_affine, truth, grid, shape), grid, fixed, fixed_affine


def matrix_errors(estimate: torch.Tensor, truth: torch.Tensor, centre=BRAIN_CENTRE) -> tuple[float, float]:
    """(rotation error in degrees, translation error in mm at ``centre``) of an estimated world matrix.

    The rotation of the estimate's linear part is its polar factor ``U V^T`` (SVD); the error is the angle of
    ``R_est^T R_true``, ``acos((tr - 1) / 2)``. The translation error is ``|T_est c - T_true c|``.
    """
    ndim = truth.shape[0] - 1
    u, _, vh = torch.linalg.svd(estimate[:ndim, :ndim].to(torch.float64))
    r = (u @ vh).T @ truth[:ndim, :ndim].to(torch.float64)
    cos = (float(torch.trace(r)) - 1) / 2 if ndim == 3 else float(r[0, 0])
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    c = torch.cat([centre[:ndim].to(torch.float64), torch.ones(1, dtype=torch.float64)])
    return angle, float(((estimate.to(torch.float64) - truth.to(torch.float64)) @ c)[:ndim].norm())
