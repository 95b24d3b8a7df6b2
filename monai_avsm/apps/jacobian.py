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
"""Jacobian determinant statistics of a written displacement field (``monai-avsm jacobian``)."""

from __future__ import annotations

import os
from typing import Any

import torch

from monai_avsm.apps.apply import field_in_folder
from monai_avsm.data.export import read_displacement_field, write_image
from monai_avsm.data.image_io import read_image
from monai_avsm.engines.results import determinant_summary
from monai_avsm.functional.world import voxel_world_points, world_jacobian_determinant

__all__ = ["jacobian_summary"]


def jacobian_summary(
    field: str | os.PathLike,
    output: str | os.PathLike | None = None,
    mask: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    r"""Statistics of :math:`\det J` of a written displacement field ``p -> p + d(p)`` (world mm).

    Args:
        field: a displacement field file (or a :func:`~monai_avsm.register` folder: its ``displacement_field``).
        output: optionally write the determinant image there (a new file).
        mask: optionally restrict the statistics to a binary mask on the field's grid.

    Returns:
        ``{"field", "voxels", "min", "max", "mean", "folds", "fold_fraction", "folds_mean_abs_det",
        "fraction_below_0.5", "fraction_above_2"}`` (folds: :math:`\det J \le 0`,
        :func:`~monai_avsm.functional.fold_mask`).
    """
    caller = "jacobian_summary"
    path = os.fspath(field)
    if os.path.isdir(path):
        path = field_in_folder(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{caller}: the displacement field {path!r} does not exist.")
    if output is not None and os.path.exists(os.fspath(output)) and not overwrite:
        raise FileExistsError(f"{caller}: {os.fspath(output)!r} exists; pass overwrite=True (--overwrite).")
    m = read_image(mask, name="mask", caller=caller).as_tensor()[0] if mask is not None else None
    disp, aff = read_displacement_field(path)
    points = voxel_world_points(aff, disp.shape[1:]) + disp
    det = world_jacobian_determinant(points, aff)
    if output is not None:
        write_image(output, det.to(torch.float32), aff, overwrite=overwrite)
    values = det[0]
    if m is not None:
        if tuple(m.shape) != tuple(values.shape):
            raise ValueError(
                f"{caller}: the mask {os.fspath(mask)!r} has shape {tuple(m.shape)}, the field {tuple(values.shape)}."
            )
        values = values[m > 0]
        if values.numel() == 0:
            raise ValueError(f"{caller}: the mask {os.fspath(mask)!r} selects no voxel.")
    return {
        "field": os.path.abspath(path),
        "voxels": int(values.numel()),
        **determinant_summary(values),
        "fraction_below_0.5": float((values < 0.5).double().mean()),
        "fraction_above_2": float((values > 2).double().mean()),
        **({"output": os.path.abspath(os.fspath(output))} if output is not None else {}),
    }
