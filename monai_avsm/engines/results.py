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
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from monai_avsm.data.export import write_affine_transform, write_displacement_field
from monai_avsm.data.export import write_image as _write_image
from monai_avsm.engines.native import NativeResampler, sample_at_points
from monai_avsm.functional.inverse import inverse_map
from monai_avsm.functional.jacobian import fold_mask
from monai_avsm.functional.world import (
    apply_affine_points,
    map_to_world_points,
    voxel_world_points,
    world_displacement,
    world_jacobian_determinant,
)
from monai_avsm.metrics.inverse_consistency import compute_inverse_consistency
from monai_avsm.visualize.preview import write_preview_png

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
    """``min``, ``max``, ``mean`` of Jacobian determinants (any shape) and the folds among them (det J <= 0,
    :func:`~monai_avsm.functional.fold_mask`): their number, fraction and mean absolute determinant (0 without
    folds)."""
    folds = fold_mask(det)
    return {
        "min": float(det.min()),
        "max": float(det.max()),
        "mean": float(det.mean()),
        "folds": int(folds.sum()),
        "fold_fraction": float(folds.double().mean()),
        "folds_mean_abs_det": float(det[folds].abs().mean()) if bool(folds.any()) else 0.0,
    }


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
    separable: bool = True,
    compress_fields: bool = True,
    inverse_margin: int = 4,
    overwrite: bool = False,
    resampler: NativeResampler | None = None,
    inverse_images: bool = True,
) -> dict[str, Any]:
    r"""Write the files of the module docstring for item ``index`` of a (batched) result into ``folder``.

    Each input file is read at most once (by ``resampler``, which may hold the images already read); the Jacobian
    determinant statistics are computed and recorded whatever ``jacobian`` says.

    Args:
        folder: an existing folder (a fresh one: files are never overwritten unless ``overwrite``).
        geometry: the pair's :class:`~monai_avsm.engines.PairGeometry`.
        pred: ``AVSMNet`` (or :func:`~monai_avsm.optimization.refine`) output with ``"map"``, ``"affine"``,
            ``"warped"`` and, with vSVF steps, ``"velocities"``.
        index: batch item.
        integrator: the map integrator of the forward pass (``net.vsvf_net.warp.integrator``), for the inverse of the
            vSVF steps; required with ``inverse=True`` when ``pred`` has velocities.
        fixed_image, moving_image: not used (the preview is drawn on the fixed image's native grid); kept for
            callers of the earlier signature.
        preview: ``preview.png`` (middle slices of the fixed image, the warped image with the fixed label's
            contours, a checkerboard and the deformed grid, on the native grid; needs matplotlib).
        field: the displacement fields (the whole transformation; with ``separable`` also its deformable part).
        affine: the affine ``.tfm``/``.mat`` files.
        label: the warped label maps (when label files are known).
        inverse: the inverse direction (inverse fields and affine; with ``inverse_images`` also the fixed image and
            label on the moving grid).
        jacobian: the ``jacobian_determinant`` image.
        separable: also the deformable parts alone (``deformable_field``, ``inverse_deformable_field``), ANTs' SyN
            form ``-t deformable_field -t affine.mat``.
        compress_fields: displacement fields as ``.nii.gz`` (gzip of float32 vectors: about 0.9 s per field on a
            128x144x128 grid for ~10 % smaller files) instead of ``.nii`` (0.1 s).
        inverse_margin: interior margin (working-grid voxels) of the inverse-consistency error.
        overwrite: replace existing files.
        resampler: the pair's :class:`~monai_avsm.engines.NativeResampler` (default: one on ``geometry``).
        inverse_images: with ``inverse``, the fixed image and label warped onto the moving grid.

    Returns:
        the record written to ``registration.json``: ``"files"`` (name -> file name), geometry, the affine world
        matrices, ``"inverse_consistency"`` (mm), ``"jacobian"`` statistics and ``"write_seconds"``.

    Raises:
        TypeError: ``inverse=True`` with vSVF velocities but no ``integrator``.
    """
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:  # files are written (gzip: zlib frees the GIL) while computing
        files: dict[str, Any] = {}
        record = _write_pair_outputs(
            pool, files, folder, geometry, pred, index, integrator, preview, field, affine, label, inverse, jacobian,
            separable, compress_fields, inverse_margin, overwrite, resampler, inverse_images,
        )  # fmt: skip
        for name, value in list(files.items()):
            files[name] = value.result() if isinstance(value, Future) else value  # re-raises a writer's error
    record["files"] = {k: os.path.basename(v) for k, v in files.items()}
    record["write_seconds"] = round(time.perf_counter() - start, 3)
    return record


def _write_pair_outputs(
    pool, files, folder, geometry, pred, index, integrator, preview, field, affine, label, inverse, jacobian,
    separable, compress_fields, inverse_margin, overwrite, resampler, inverse_images,
) -> dict[str, Any]:  # fmt: skip
    """The body of :func:`write_pair_outputs`: ``files`` receives the paths (or futures of the pool's writes)."""
    g = geometry
    r = resampler if resampler is not None else NativeResampler(g)
    native = g["native_affine"]
    field_ext = ".nii.gz" if compress_fields else ".nii"

    def path(name: str) -> str:
        return os.path.join(folder, name)

    def write_image(p: str, data: torch.Tensor, grid_affine: torch.Tensor, overwrite: bool) -> Future:
        return pool.submit(_write_image, p, data, grid_affine, overwrite=overwrite)

    def write_field(name: str, disp: torch.Tensor, grid_affine: torch.Tensor) -> None:
        files[name] = pool.submit(
            write_displacement_field, path(name + field_ext), disp, grid_affine, overwrite=overwrite
        )

    phi = pred["map"][index : index + 1].detach()
    points = r.points(phi[0])
    warped = r.warp(points)
    files["warped"] = write_image(path("warped.nii.gz"), warped, native, overwrite=overwrite)
    if label and g.get("moving_label_file"):
        files["warped_label"] = write_image(
            path("warped_label.nii.gz"), r.warp(points, label=True), native, overwrite=overwrite
        )
    theta = pred["affine"][index : index + 1].detach()
    T = r.world_affine(theta[0].cpu())
    T_inv = torch.linalg.inv(T)
    if field:
        write_field("displacement_field", r.displacement(points), native)
        if separable:
            write_field("deformable_field", r.displacement(apply_affine_points(T_inv, points)), native)
    if affine:
        for ext in (".tfm", ".mat"):
            files[f"affine{ext}"] = write_affine_transform(path(f"affine{ext}"), T, overwrite=overwrite)
    record: dict[str, Any] = {}
    det = world_jacobian_determinant(points, native, dtype=torch.float32)  # the summary and the image
    record["jacobian"] = {"grid": "fixed native", "fold_rule": "det J <= 0", **determinant_summary(det)}
    if jacobian:
        files["jacobian_determinant"] = write_image(
            path("jacobian_determinant.nii.gz"), det.to(torch.float32), native, overwrite=overwrite
        )
    del det
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
        ic = compute_inverse_consistency(  # float32: a report in mm (round-off ~1e-5 mm), 0.4 s less at 3 M voxels
            phi, psi, g["fixed_affine"], g["moving_affine"], inverse_margin, dtype=torch.float32
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
            fixed_native = r.image("fixed") if inverse_images else None
            if fixed_native is not None:
                files["inverse_warped"] = write_image(
                    path("inverse_warped.nii.gz"),
                    sample_at_points(fixed_native, inv_points),
                    m_aff,
                    overwrite=overwrite,
                )
            fixed_label = r.image("fixed_label") if (label and inverse_images) else None
            if fixed_label is not None:
                files["inverse_warped_label"] = write_image(
                    path("inverse_warped_label.nii.gz"),
                    sample_at_points(fixed_label, inv_points, label=True),
                    m_aff,
                    overwrite=overwrite,
                )
            if field:
                write_field("inverse_displacement_field", world_displacement(inv_points, m_aff), m_aff)
            record["moving_native_grid"] = {"shape": list(m_shape), "affine": m_aff.tolist()}
        if field and separable:
            if d_inv is None:
                dinv_points = voxel_world_points(native, g["native_shape"])
            else:
                dinv_points = map_to_world_points(
                    d_inv[0], g["fixed_affine"], g["fixed_affine"], g["fixed_shape"], native, g["native_shape"]
                )
            write_field("inverse_deformable_field", r.displacement(dinv_points), native)
        if affine:
            for ext in (".tfm", ".mat"):
                files[f"inverse_affine{ext}"] = write_affine_transform(
                    path(f"inverse_affine{ext}"), T_inv, overwrite=overwrite
                )
    if preview:
        fixed_native = r.image("fixed")
        if fixed_native is None:
            raise ValueError(
                "write_pair_outputs: the preview needs the fixed image (its file or the resampler's copy)."
            )
        grid = _grid_coordinates(points, native, g["native_shape"])
        fixed_label = r.image("fixed_label")
        files["preview"] = pool.submit(
            write_preview_png,
            path("preview.png"),
            fixed_native.as_tensor(),
            warped,
            phi=grid,
            contours=None if fixed_label is None else fixed_label.as_tensor(),
            spacing=fixed_native.spacing,
            affine=native,
            overwrite=overwrite,
        )
    record = {
        "moving": g.get("moving_file"),
        "fixed": g.get("fixed_file"),
        "moving_label": g.get("moving_label_file"),
        "fixed_label": g.get("fixed_label_file"),
        "files": {},
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
    }
    return record


def _grid_coordinates(points: torch.Tensor, affine: torch.Tensor, shape) -> torch.Tensor:
    """The pulled world points in the fixed native grid's normalised voxel coordinates ``(D, *S)`` (the identity
    for no motion): the preview draws their level lines as the deformed grid."""
    ndim = points.shape[0]
    inv = torch.linalg.inv(torch.as_tensor(affine, dtype=torch.float64))
    idx = apply_affine_points(inv, points.to(torch.float64))
    sizes = torch.tensor([max(int(n) - 1, 1) for n in shape], dtype=torch.float64).reshape(ndim, *([1] * ndim))
    return (2.0 * idx / sizes - 1.0).to(torch.float32)
