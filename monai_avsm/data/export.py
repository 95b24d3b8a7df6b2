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
r"""Writing registration results in the files that ITK, ANTs and 3D Slicer read: warps, affines, images.

World quantities come from :mod:`monai_avsm.functional.world` in MONAI's **RAS** world (mm); the files use ITK's
**LPS** world (``x``, ``y`` negated), which ANTs (``antsApplyTransforms``, ANTsPy ``ants.apply_transforms``) and
3D Slicer (through ITK) read:

- :func:`write_displacement_field`: a pull-back displacement field ``d`` on a target grid (usually the fixed image's
  native grid), as an ITK vector image ``itk.Image[itk.Vector[itk.F, D], D]`` with **LPS** vectors and LPS
  geometry. In NIfTI (``.nii.gz``) ITK writes it as a 5D image with intent ``NIFTI_INTENT_VECTOR`` and the vectors
  unchanged: the warp format of ANTs (``*Warp.nii.gz``). Applied to the moving image it gives
  ``warped(p) = moving(p + d(p))`` for every fixed world point ``p`` (ITK's ``DisplacementFieldTransform``).
- :func:`write_affine_transform`: a world matrix ``T`` (``q = T p``, fixed -> moving point, RAS) as an ITK
  ``AffineTransform_double_D_D`` (LPS matrix and translation, centre 0), in ITK's text format (``.tfm``/``.txt``)
  or MATLAB format (``.mat``, ANTs' affine files). :func:`read_affine_transform` reads one back (RAS).
- :func:`write_image`: an image or label map with its voxel -> RAS matrix as NIfTI (nibabel; qform and sform).

The PNG preview of a result is in :mod:`monai_avsm.visualize.preview`.

Every writer creates the parent folders and refuses to overwrite an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from monai_avsm.data.files import is_nifti, prepare_output_path
from monai_avsm.functional.world import as_world_matrix, ras_to_lps_affine
from monai_avsm.utils.validation import to_numpy

__all__ = [
    "write_displacement_field",
    "read_displacement_field",
    "write_affine_transform",
    "read_affine_transform",
    "write_image",
    "TRANSFORM_SUFFIXES",
]

#: file suffixes :func:`write_affine_transform` accepts: ITK text (``.tfm``, ``.txt``) and MATLAB (``.mat``, ANTs).
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".mat")


def _itk_geometry(affine_ras: np.ndarray, caller: str) -> tuple[list[float], list[float], np.ndarray]:
    """Voxel -> RAS matrix -> ITK ``(origin, spacing, direction)`` in LPS (direction columns = unit axes)."""
    ndim = affine_ras.shape[0] - 1
    lps = np.diag([-1.0, -1.0] + [1.0] * (ndim - 1)) @ affine_ras  # only the world side flips: F A
    spacing = np.sqrt((lps[:ndim, :ndim] ** 2).sum(axis=0))
    if (spacing <= 0).any():
        raise ValueError(f"{caller}: 'target_affine' has a zero-length voxel axis, got {affine_ras.tolist()}.")
    direction = lps[:ndim, :ndim] / spacing
    if np.abs(direction.T @ direction - np.eye(ndim)).max() > 1e-4:
        raise ValueError(
            f"{caller}: 'target_affine' has non-orthogonal (sheared) voxel axes, which ITK images cannot hold; "
            f"got {affine_ras.tolist()}."
        )
    return lps[:ndim, ndim].tolist(), spacing.tolist(), direction


def write_displacement_field(
    path: str | os.PathLike,
    disp_ras: torch.Tensor | np.ndarray,
    target_affine: Any,
    overwrite: bool = False,
    compress_level: int = 1,
) -> str:
    r"""Write a world displacement field as an ITK/ANTs/Slicer warp (vector image, LPS vectors and geometry).

    The field is a pull-back displacement on the target grid, ``q(j) = A_t j + d(j)`` (RAS mm, e.g.
    :func:`~monai_avsm.functional.world_displacement` of
    :func:`~monai_avsm.functional.map_to_world_points`). The file holds ``F d`` with ``F = diag(-1, -1, 1)`` on the
    grid ``F A_t``; voxel ``(i, j, k)`` (torch order) is ITK index ``(x, y, z) = (i, j, k)``, so the numpy array given
    to ITK is ``d`` transposed to ``(k, j, i, component)``.

    Args:
        path: output file; ``.nii.gz``/``.nii`` for ANTs, written with nibabel exactly as ITK writes a vector image
            (also ``.nrrd``, ``.mha`` through ITK, for ITK and Slicer).
        disp_ras: ``(D, *S)`` or ``(1, D, *S)``, ``D`` in (2, 3), RAS mm.
        target_affine: voxel -> RAS matrix ``(D + 1, D + 1)`` of the grid ``S`` (orthogonal axes).
        overwrite: replace an existing file.
        compress_level: gzip level of a ``.nii.gz`` file (1: fastest; gzip of float32 vectors saves only ~10 %, so
            ``.nii`` is the fast choice).

    Returns:
        the path written.
    """
    caller = "write_displacement_field"
    d = to_numpy(disp_ras, "disp_ras", caller)
    if d.ndim in (4, 5) and d.shape[0] == 1:
        d = d[0]
    if d.ndim not in (3, 4) or d.shape[0] != d.ndim - 1:
        raise ValueError(f"{caller}: 'disp_ras' must have shape (D, *S) with D = len(S) in (2, 3), got {d.shape}.")
    ndim = d.shape[0]
    if not np.isfinite(d).all():
        raise ValueError(f"{caller}: 'disp_ras' must be finite.")
    affine = as_world_matrix(target_affine, ndim, "target_affine", caller, "cpu").numpy()
    origin, spacing, direction = _itk_geometry(affine, caller)
    path = prepare_output_path(path, overwrite, caller)
    d = d.astype(np.float32)  # a copy
    d[:2] *= -1.0  # RAS -> LPS vectors
    if is_nifti(path):
        _write_nifti_vectors(path, d, affine, compress_level)
        return path
    import itk  # other formats (.nrrd, .mha) through ITK, imported only for them

    arr = np.ascontiguousarray(np.transpose(d, (*range(ndim, 0, -1), 0)))  # (k, j, i, c)
    image = itk.image_from_array(arr, ttype=itk.Image[itk.Vector[itk.F, ndim], ndim])
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(itk.matrix_from_array(np.ascontiguousarray(direction)))
    itk.imwrite(image, path)
    return path


def _write_nifti_vectors(path: str, d_lps: np.ndarray, affine_ras: np.ndarray, compress_level: int) -> None:
    """The NIfTI file ITK's writer makes for a vector image (checked against it): 5D array ``(X, Y, Z, 1, D)`` (a 2D
    field: ``(X, Y, 1, 1, 2)``), intent ``NIFTI_INTENT_VECTOR``, LPS components, qform and sform from the grid."""
    import nibabel as nib
    from nibabel.openers import Opener

    ndim = d_lps.shape[0]
    data = np.moveaxis(d_lps, 0, -1)  # (i, j, k, c)
    if ndim == 2:
        data = data[:, :, None, None, :]
        a4 = np.eye(4)
        a4[:2, :2], a4[:2, 3] = affine_ras[:2, :2], affine_ras[:2, 2]
        affine_ras = a4
    else:
        data = data[:, :, :, None, :]
    image = nib.Nifti1Image(np.ascontiguousarray(data, dtype=np.float32), affine_ras)
    image.header.set_intent("vector")
    image.set_qform(affine_ras, code=1)
    image.set_sform(affine_ras, code=1)
    image.header.set_xyzt_units("mm", "sec")  # as ITK
    image.header["pixdim"][4:] = 0.0
    previous = Opener.default_compresslevel
    Opener.default_compresslevel = int(compress_level)
    try:
        nib.save(image, path)
    finally:
        Opener.default_compresslevel = previous


def read_displacement_field(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Read an ITK/ANTs displacement field (vector image, LPS) -> ``(d_ras (D, *S), affine_ras (D + 1, D + 1))``.

    The inverse of :func:`write_displacement_field`: vectors and geometry converted to RAS, voxel order ``(i, j, k)``
    as MONAI's. Both float64.

    Raises:
        FileNotFoundError: no such file; ValueError: the file is not a vector image with one component per axis.
    """
    caller = "read_displacement_field"
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{caller}: 'path' {path!r} does not exist.")
    if is_nifti(path):
        return _read_nifti_vectors(path, caller)
    import itk

    try:
        image = itk.imread(path)
    except Exception as e:
        raise ValueError(f"{caller}: cannot read {path!r} as an image: {e}") from e
    arr = np.asarray(itk.array_view_from_image(image), dtype=np.float64)  # (k, j, i, c)
    ndim = image.GetImageDimension()
    if arr.ndim != ndim + 1 or arr.shape[-1] != ndim:
        raise ValueError(
            f"{caller}: {path!r} must be a displacement field with {ndim} components per voxel (ITK vector image), "
            f"got array shape {arr.shape}."
        )
    d = np.transpose(arr, (ndim, *range(ndim - 1, -1, -1))).copy()  # (c, i, j, k)
    d[:2] *= -1.0  # LPS -> RAS vectors
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    direction = np.asarray(itk.array_from_matrix(image.GetDirection()), dtype=np.float64)
    lps = np.eye(ndim + 1)
    lps[:ndim, :ndim] = direction * spacing
    lps[:ndim, ndim] = np.asarray(image.GetOrigin(), dtype=np.float64)
    affine = np.diag([-1.0, -1.0] + [1.0] * (ndim - 1)) @ lps
    return torch.as_tensor(d), torch.as_tensor(affine)


def _read_nifti_vectors(path: str, caller: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A NIfTI vector image (ITK/ANTs layout ``(X, Y, Z, 1, D)``, LPS components) with nibabel."""
    import nibabel as nib

    try:
        image = nib.load(path)
        arr = np.asarray(image.dataobj, dtype=np.float64)
    except Exception as e:
        raise ValueError(f"{caller}: cannot read {path!r} as an image: {e}") from e
    shape = arr.shape
    if len(shape) == 5 and shape[3] == 1 and shape[4] in (2, 3):
        ndim = shape[4]
        arr = arr[:, :, :, 0, :] if ndim == 3 else arr[:, :, 0, 0, :]
    else:
        raise ValueError(
            f"{caller}: {path!r} must be a displacement field (a NIfTI vector image of shape (X, Y, Z, 1, 3) or "
            f"(X, Y, 1, 1, 2), as ITK and ANTs write them), got array shape {shape}."
        )
    d = np.moveaxis(arr, -1, 0).copy()  # (c, i, j[, k])
    d[:2] *= -1.0  # LPS -> RAS vectors
    affine = np.asarray(image.affine, dtype=np.float64)
    if ndim == 2:
        a = np.eye(3)
        a[:2, :2], a[:2, 2] = affine[:2, :2], affine[:2, 3]
        affine = a
    return torch.as_tensor(d), torch.as_tensor(affine)


def write_affine_transform(path: str | os.PathLike, T_ras: Any, overwrite: bool = False) -> str:
    r"""Write a world affine ``q = T p`` (fixed -> moving point, RAS) as an ITK ``AffineTransform[itk.D, D]``.

    The file holds ``T_{LPS} = F T F`` (``F = diag(-1, -1, 1, 1)``) as matrix and translation about centre 0, i.e.
    ``Parameters: M (row major) t`` and ``FixedParameters: 0 0 0``. ITK's ``ResampleImageFilter``,
    ``antsApplyTransforms -t file.mat`` and Slicer use it to pull the moving image onto the fixed grid.

    Args:
        path: ``.tfm``/``.txt`` (ITK text) or ``.mat`` (MATLAB v4, as ANTs writes).
        T_ras: ``(D + 1, D + 1)`` homogeneous matrix (or ``(D, D + 1)``), e.g.
            :func:`~monai_avsm.functional.theta_to_world_affine`.
        overwrite: replace an existing file.

    Returns:
        the path written.
    """
    caller = "write_affine_transform"
    t = to_numpy(T_ras, "T_ras", caller).astype(np.float64)
    if t.ndim == 2 and t.shape[0] in (2, 3) and t.shape[1] == t.shape[0] + 1:
        t = np.vstack([t, np.eye(t.shape[1])[-1:]])
    t = as_world_matrix(t, None, "T_ras", caller, "cpu").numpy()
    if not np.allclose(t[-1], np.eye(len(t))[-1]):
        raise ValueError(f"{caller}: the last row of 'T_ras' must be (0, ..., 0, 1), got {t[-1].tolist()}.")
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in TRANSFORM_SUFFIXES:
        raise ValueError(f"{caller}: 'path' must end with one of {TRANSFORM_SUFFIXES}, got {os.fspath(path)!r}.")
    ndim = len(t) - 1
    lps = ras_to_lps_affine(torch.as_tensor(t)).numpy()
    path = prepare_output_path(path, overwrite, caller)
    # ITK's two formats written directly (the bytes ITK's MatlabTransformIO / TxtTransformIO write, checked in the
    # tests by reading them back with ITK and ANTs): importing ITK's transform I/O costs ~12 s the first time
    params = [float(v) for v in lps[:ndim, :ndim].reshape(-1)] + [float(v) for v in lps[:ndim, ndim]]
    name = f"AffineTransform_double_{ndim}_{ndim}"
    if suffix == ".mat":

        def variable(var: str, values: list[float]) -> bytes:
            data = np.asarray(values, dtype="<f8")
            header = np.asarray([0, data.size, 1, 0, len(var) + 1], dtype="<i4")  # little-endian doubles, a column
            return header.tobytes() + var.encode("ascii") + b"\0" + data.tobytes()

        with open(path, "wb") as f:
            f.write(variable(name, params) + variable("fixed", [0.0] * ndim))
    else:
        with open(path, "w") as f:
            f.write(
                f"#Insight Transform File V1.0\n#Transform 0\nTransform: {name}\n"
                f"Parameters: {' '.join(repr(v) for v in params)}\nFixedParameters: {' '.join(['0'] * ndim)}\n"
            )
    return path


def read_affine_transform(path: str | os.PathLike) -> torch.Tensor:
    """Read an ITK/ANTs affine transform file (one matrix-offset transform) -> RAS world matrix ``(D + 1, D + 1)``.

    Any ``MatrixOffsetTransformBase`` (affine, Euler, similarity; any centre) is read through its matrix and offset,
    ``q_{LPS} = M p_{LPS} + o``, and converted to RAS (``F T F``). Returns a float64 tensor.
    """
    caller = "read_affine_transform"
    import itk

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{caller}: 'path' {path!r} does not exist.")
    transforms = list(itk.transformread(path))
    if len(transforms) != 1:
        raise ValueError(f"{caller}: {path!r} must hold exactly one transform, got {len(transforms)}.")
    tr = transforms[0]
    if not (hasattr(tr, "GetMatrix") and hasattr(tr, "GetOffset")):
        tr = itk.down_cast(tr)
    if not (hasattr(tr, "GetMatrix") and hasattr(tr, "GetOffset")):
        raise ValueError(f"{caller}: {path!r} holds a {tr.GetNameOfClass()}, not a matrix-offset (affine) transform.")
    m = np.asarray(itk.array_from_matrix(tr.GetMatrix()), dtype=np.float64)
    ndim = m.shape[0]
    lps = np.eye(ndim + 1)
    lps[:ndim, :ndim] = m
    lps[:ndim, ndim] = [float(tr.GetOffset()[i]) for i in range(ndim)]
    return ras_to_lps_affine(torch.as_tensor(lps))


def write_image(
    path: str | os.PathLike,
    array: torch.Tensor | np.ndarray,
    affine: Any = None,
    reference_meta: Mapping | None = None,
    overwrite: bool = False,
) -> str:
    """Write a one-channel image or label map ``(1, *S)`` (or ``(*S)``) with voxel -> RAS ``affine`` as NIfTI.

    Integer and boolean data keep integer values (``int64`` is stored as ``int32`` when it fits, booleans as
    ``uint8``); floating data keep their dtype (``float16`` as ``float32``). qform and sform both hold ``affine``
    (code 1, scanner), so ITK, ANTs, Slicer and nibabel read the same geometry.

    Args:
        path: ``.nii.gz`` or ``.nii``.
        array: the voxels, torch order (MONAI's channel-first tensor).
        affine: ``(D + 1, D + 1)`` voxel -> RAS matrix; default: ``array.affine`` (MONAI ``MetaTensor``) or
            ``reference_meta["affine"]``.
        reference_meta: a MONAI meta dictionary (e.g. ``fixed.meta``) for the default affine.
        overwrite: replace an existing file.

    Returns:
        the path written.
    """
    caller = "write_image"
    import nibabel as nib

    if affine is None:
        affine = getattr(array, "affine", None)
        if affine is None and reference_meta is not None:
            affine = reference_meta.get("affine")
        if affine is None:
            raise ValueError(f"{caller}: 'affine' is required (no MetaTensor affine and no reference_meta['affine']).")
    a = as_world_matrix(affine, None, "affine", caller, "cpu").numpy()
    ndim = len(a) - 1
    data = to_numpy(array, "array", caller)
    if data.ndim == ndim + 1 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != ndim:
        raise ValueError(
            f"{caller}: 'array' must have shape (1, *S) or (*S) with {ndim} spatial dims (from 'affine'), "
            f"got {data.shape}."
        )
    if not is_nifti(os.fspath(path)):
        raise ValueError(f"{caller}: 'path' must end with .nii or .nii.gz, got {os.fspath(path)!r}.")
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    elif data.dtype == np.int64:
        info = np.iinfo(np.int32)
        if data.size == 0 or (data.min() >= info.min and data.max() <= info.max):
            data = data.astype(np.int32)
    elif data.dtype == np.float16:
        data = data.astype(np.float32)
    if ndim == 2:  # NIfTI geometry is 3D: embed the 2D grid in the z = 0 plane
        a4 = np.eye(4)
        a4[:2, :2], a4[:2, 3] = a[:2, :2], a[:2, 2]
        a = a4
    path = prepare_output_path(path, overwrite, caller)
    image = nib.Nifti1Image(np.ascontiguousarray(data), a, dtype=data.dtype)
    image.set_qform(a, code=1)
    image.set_sform(a, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path
