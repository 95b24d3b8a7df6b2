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
r"""The files of one registered pair, written from the network's (or refinement's) result: one function used by the
bundle's inference (:class:`~monai_avsm.handlers.RegistrationWriter`) and by :func:`monai_avsm.register` (the
``monai-avsm register`` command), so that both write the same thing.

Forward direction (moving -> fixed; on the fixed image's native grid):

- ``warped.nii.gz``, ``warped_label.nii.gz``: the moving image (linear) and label (nearest) from their files;
- ``displacement_field.nii.gz``: the whole transformation (affine and deformable) as one ITK/ANTs warp,
  ``antsApplyTransforms -i moving -r fixed -t displacement_field.nii.gz``;
- ``affine.tfm``/``affine.mat`` (the affine part ``T``) and ``deformable_field.nii.gz`` (the deformable part
  ``D = T^{-1} \circ \Phi`` alone, a fixed-space warp), the separable form as ANTs' SyN writes it:
  ``-t deformable_field.nii.gz -t affine.mat`` (ANTsPy: ``[deformable_field.nii.gz, affine.mat]``);
- ``jacobian_determinant.nii.gz``: :math:`\det J` of the fixed -> moving world map (<= 0: folds).

Inverse direction (fixed -> moving; the inverse map of :func:`~monai_avsm.functional.inverse_map`: negated velocities
and the inverse affine in the opposite order), on the moving image's native grid:

- ``inverse_warped.nii.gz``, ``inverse_warped_label.nii.gz``: the fixed image and label brought onto the moving grid;
- ``inverse_displacement_field.nii.gz``:
  ``antsApplyTransforms -i fixed -r moving -t inverse_displacement_field.nii.gz``;
- ``inverse_affine.tfm``/``.mat`` (``T^{-1}``) and ``inverse_deformable_field.nii.gz`` (``D^{-1}``, fixed space):
  ``-t [affine.mat,1] -t inverse_deformable_field.nii.gz`` (or ``-t inverse_affine.mat -t ...``), as SyN's inverse.
  ANTsPy inverts a leading ``.mat`` of a two-item list by itself: pass ``[affine.mat,
  inverse_deformable_field.nii.gz]`` (or ``inverse_affine.mat`` with ``whichtoinvert=[False, False]``).

ANTs' order (checked against ANTsPy in the tests): the points of the reference grid go through the first listed
transform first, so the image is warped by the last one first.

``registration.json`` records the files, geometry, the inverse-consistency error (mm) and fold counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from monai_avsm.data.export import write_affine_transform, write_displacement_field, write_image, write_preview_png
from monai_avsm.engines.native import NativeResampler, load_native, sample_at_points
from monai_avsm.functional.inverse import inverse_map
from monai_avsm.functional.world import (
    apply_affine_points,
    map_to_world_points,
    voxel_world_points,
    world_displacement,
    world_jacobian_determinant,
)
from monai_avsm.metrics.inverse_consistency import compute_inverse_consistency

__all__ = ["write_pair_outputs", "determinant_summary", "CONVENTIONS"]

#: how the written files are meant, recorded in every ``registration.json``
CONVENTIONS = (
    "Fields are pull-back displacements in world mm, ITK LPS vectors: fixed point p -> moving point p + d(p) "
    "(inverse_*: moving point -> fixed point). displacement_field includes the affine; the separable ANTs form is "
    "'-t deformable_field.nii.gz -t affine.mat' (forward) and '-t [affine.mat,1] -t inverse_deformable_field.nii.gz' "
    "(inverse; ANTsPy: [affine.mat, inverse_deformable_field.nii.gz], it inverts a leading .mat itself). "
    "affine.tfm/.mat: ITK AffineTransform fixed -> moving (LPS)."
)


def determinant_summary(det: torch.Tensor) -> dict[str, float | int]:
    """``min``, ``max``, ``mean`` of Jacobian determinants (any shape) and the folds among them (det <= 0): their
    number, fraction and mean absolute determinant (0 without folds)."""
    folds = det <= 0
    return {
        "min": float(det.min()),
        "max": float(det.max()),
        "mean": float(det.mean()),
        "folds": int(folds.sum()),
        "fold_fraction": float(folds.double().mean()),
        "folds_mean_abs_det": float(det[folds].abs().mean()) if bool(folds.any()) else 0.0,
    }


def _sample_file(file: str, points: torch.Tensor, label: bool = False) -> torch.Tensor:
    """The image (linear) or label (nearest) of ``file`` sampled at world points (RAS)."""
    return sample_at_points(load_native(file, label=label), points, label)


def write_pair_outputs(
    folder: str,
    geometry: Mapping[str, Any],
    pred: Mapping[str, Any],
    index: int = 0,
    integrator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    fixed_image: torch.Tensor | None = None,
    moving_image: torch.Tensor | None = None,
    preview: bool = True,
    field: bool = True,
    affine: bool = True,
    label: bool = True,
    inverse: bool = True,
    jacobian: bool = True,
    inverse_margin: int = 4,
    overwrite: bool = False,
) -> dict[str, Any]:
    r"""Write the files of the module docstring for item ``index`` of a (batched) result into ``folder``.

    Args:
        folder: an existing folder (a fresh one: files are never overwritten unless ``overwrite``).
        geometry: the pair's :class:`~monai_avsm.engines.PairGeometry`.
        pred: ``AVSMNet`` (or :func:`~monai_avsm.optimization.refine`) output with ``"map"``, ``"affine"``,
            ``"warped"`` and, with vSVF steps, ``"velocities"``.
        index: batch item.
        integrator: the map integrator of the forward pass (``net.vsvf_net.warp.integrator``), for the inverse of the
            vSVF steps; required with ``inverse=True`` when ``pred`` has velocities.
        fixed_image, moving_image: ``(1, *S)`` working-grid images for the preview (``fixed_image`` required with
            ``preview=True``).
        preview, field, affine, label, inverse, jacobian: which outputs to write.
        inverse_margin: interior margin (working-grid voxels) of the inverse-consistency error.
        overwrite: replace existing files.

    Returns:
        the record written to ``registration.json``: ``"files"`` (name -> file name), geometry, the affine world
        matrices, ``"inverse_consistency"`` (mm), ``"jacobian"`` statistics and ``"write_seconds"``.

    Raises:
        TypeError: ``inverse=True`` with vSVF velocities but no ``integrator``.
    """
    start = time.perf_counter()
    g = geometry
    r = NativeResampler(g)
    native = g["native_affine"]
    files: dict[str, str] = {}

    def path(name: str) -> str:
        return os.path.join(folder, name)

    phi = pred["map"][index : index + 1].detach()
    points = r.points(phi[0])
    files["warped"] = write_image(path("warped.nii.gz"), r.warp(points), native, overwrite=overwrite)
    if label and g.get("moving_label_file"):
        files["warped_label"] = write_image(
            path("warped_label.nii.gz"), r.warp(points, label=True), native, overwrite=overwrite
        )
    theta = pred["affine"][index : index + 1].detach()
    T = r.world_affine(theta[0].cpu())
    T_inv = torch.linalg.inv(T)
    if field:
        files["displacement_field"] = write_displacement_field(
            path("displacement_field.nii.gz"), r.displacement(points), native, overwrite=overwrite
        )
        files["deformable_field"] = write_displacement_field(
            path("deformable_field.nii.gz"),
            r.displacement(apply_affine_points(T_inv, points)),
            native,
            overwrite=overwrite,
        )
    if affine:
        for ext in (".tfm", ".mat"):
            files[f"affine{ext}"] = write_affine_transform(path(f"affine{ext}"), T, overwrite=overwrite)
    record: dict[str, Any] = {}
    if jacobian:
        det = world_jacobian_determinant(points, native)
        files["jacobian_determinant"] = write_image(
            path("jacobian_determinant.nii.gz"), det.to(torch.float32), native, overwrite=overwrite
        )
        record["jacobian"] = {"grid": "fixed native", **determinant_summary(det)}
    if inverse:
        velocities = [v[index : index + 1].detach() for v in (pred.get("velocities") or [])]
        if velocities and integrator is None:
            raise TypeError(
                "write_pair_outputs: the result has vSVF velocities; pass the network's 'integrator' "
                "(net.vsvf_net.warp.integrator) to write the inverse, or inverse=False."
            )
        single = {"map": phi, "affine": theta, "velocities": velocities}
        with torch.no_grad():  # psi: moving working grid -> fixed working positions; d_inv None: identity
            psi, d_inv = inverse_map(single, integrator, return_deformable=True)
        ic = compute_inverse_consistency(
            phi.to(torch.float64), psi.to(torch.float64), g["fixed_affine"], g["moving_affine"], inverse_margin
        )
        record["inverse_consistency"] = {k: float(v[0]) for k, v in ic.items()}
        record["inverse_consistency"]["margin_voxels"] = int(inverse_margin)
        moving_native = r.moving()
        if moving_native is not None:
            m_aff = torch.as_tensor(moving_native.affine, dtype=torch.float64)
            m_shape = tuple(int(s) for s in moving_native.shape[1:])
            inv_points = map_to_world_points(
                psi[0],
                g["moving_affine"],
                g["fixed_affine"],
                g["fixed_shape"],
                target_affine=m_aff,
                target_shape=m_shape,
            )
            if g.get("fixed_file"):
                files["inverse_warped"] = write_image(
                    path("inverse_warped.nii.gz"), _sample_file(g["fixed_file"], inv_points), m_aff, overwrite=overwrite
                )
            if label and g.get("fixed_label_file"):
                files["inverse_warped_label"] = write_image(
                    path("inverse_warped_label.nii.gz"),
                    _sample_file(g["fixed_label_file"], inv_points, label=True),
                    m_aff,
                    overwrite=overwrite,
                )
            if field:
                files["inverse_displacement_field"] = write_displacement_field(
                    path("inverse_displacement_field.nii.gz"),
                    world_displacement(inv_points, m_aff),
                    m_aff,
                    overwrite=overwrite,
                )
            record["moving_native_grid"] = {"shape": list(m_shape), "affine": m_aff.tolist()}
        if field:
            if d_inv is None:
                dinv_points = voxel_world_points(native, g["native_shape"])
            else:
                dinv_points = map_to_world_points(
                    d_inv[0], g["fixed_affine"], g["fixed_affine"], g["fixed_shape"], native, g["native_shape"]
                )
            files["inverse_deformable_field"] = write_displacement_field(
                path("inverse_deformable_field.nii.gz"), r.displacement(dinv_points), native, overwrite=overwrite
            )
        if affine:
            for ext in (".tfm", ".mat"):
                files[f"inverse_affine{ext}"] = write_affine_transform(
                    path(f"inverse_affine{ext}"), T_inv, overwrite=overwrite
                )
    if preview:
        if fixed_image is None:
            raise ValueError("write_pair_outputs: 'fixed_image' (working grid) is required for the preview.")
        files["preview"] = write_preview_png(
            path("preview.png"),
            fixed_image.detach().cpu(),
            pred["warped"][index].detach().cpu(),
            phi=phi[0].cpu(),
            moving=None if moving_image is None else moving_image.detach().cpu(),
            overwrite=overwrite,
        )
    record = {
        "moving": g.get("moving_file"),
        "fixed": g.get("fixed_file"),
        "moving_label": g.get("moving_label_file"),
        "fixed_label": g.get("fixed_label_file"),
        "files": {k: os.path.basename(v) for k, v in files.items()},
        "working_grid": {
            "shape": list(g["fixed_shape"]),
            "fixed_affine": torch.as_tensor(g["fixed_affine"]).tolist(),
            "moving_affine": torch.as_tensor(g["moving_affine"]).tolist(),
        },
        "native_grid": {"shape": list(g["native_shape"]), "affine": torch.as_tensor(native).tolist()},
        "affine_world_ras": T.tolist(),
        "inverse_affine_world_ras": T_inv.tolist(),
        **record,
        "conventions": CONVENTIONS,
        "write_seconds": round(time.perf_counter() - start, 3),
    }
    return record
