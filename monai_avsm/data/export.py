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
r"""Writing registration results in the files that ITK, ANTs and 3D Slicer read: warps, affines, images, previews.

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
- :func:`write_preview_png`: a PNG of fixed, warped, their checkerboard and the deformed grid (matplotlib).

Every writer creates the parent folders and refuses to overwrite an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from monai_avsm.functional.world import ras_to_lps_affine

__all__ = [
    "write_displacement_field",
    "read_displacement_field",
    "write_affine_transform",
    "read_affine_transform",
    "write_image",
    "write_preview_png",
    "TRANSFORM_SUFFIXES",
]

#: file suffixes :func:`write_affine_transform` accepts: ITK text (``.tfm``, ``.txt``) and MATLAB (``.mat``, ANTs).
TRANSFORM_SUFFIXES = (".tfm", ".txt", ".mat")


def _prepare_path(path: str | os.PathLike, overwrite: bool, caller: str) -> str:
    """``path`` as a string; refuse an existing file unless ``overwrite``; create the parent folders."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{caller}: 'path' {path!r} is a folder, expected a file name.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{caller}: {path!r} exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path


def _to_numpy(x: Any, name: str, caller: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.as_tensor() if hasattr(x, "as_tensor") else x
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as e:  # pragma: no cover - unusual inputs
        raise TypeError(f"{caller}: '{name}' must be a tensor or an array, got {type(x).__name__}.") from e


def _affine_np(affine: Any, name: str, caller: str, ndim: int | None = None) -> np.ndarray:
    a = _to_numpy(affine, name, caller).astype(np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] not in (3, 4):
        raise ValueError(f"{caller}: '{name}' must have shape (D + 1, D + 1) with D in (2, 3), got {a.shape}.")
    if ndim is not None and a.shape[0] != ndim + 1:
        raise ValueError(f"{caller}: '{name}' must have shape ({ndim + 1}, {ndim + 1}) for D={ndim}, got {a.shape}.")
    if not np.isfinite(a).all():
        raise ValueError(f"{caller}: '{name}' must be finite, got {a.tolist()}.")
    return a


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
    d = _to_numpy(disp_ras, "disp_ras", caller)
    if d.ndim in (4, 5) and d.shape[0] == 1:
        d = d[0]
    if d.ndim not in (3, 4) or d.shape[0] != d.ndim - 1:
        raise ValueError(f"{caller}: 'disp_ras' must have shape (D, *S) with D = len(S) in (2, 3), got {d.shape}.")
    ndim = d.shape[0]
    if not np.isfinite(d).all():
        raise ValueError(f"{caller}: 'disp_ras' must be finite.")
    affine = _affine_np(target_affine, "target_affine", caller, ndim)
    origin, spacing, direction = _itk_geometry(affine, caller)
    path = _prepare_path(path, overwrite, caller)
    d = d.astype(np.float32)  # a copy
    d[:2] *= -1.0  # RAS -> LPS vectors
    if path.lower().endswith((".nii", ".nii.gz")):
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
    if path.lower().endswith((".nii", ".nii.gz")):
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
    t = _to_numpy(T_ras, "T_ras", caller).astype(np.float64)
    if t.ndim == 2 and t.shape[0] in (2, 3) and t.shape[1] == t.shape[0] + 1:
        t = np.vstack([t, np.eye(t.shape[1])[-1:]])
    t = _affine_np(t, "T_ras", caller)
    if not np.allclose(t[-1], np.eye(len(t))[-1]):
        raise ValueError(f"{caller}: the last row of 'T_ras' must be (0, ..., 0, 1), got {t[-1].tolist()}.")
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in TRANSFORM_SUFFIXES:
        raise ValueError(f"{caller}: 'path' must end with one of {TRANSFORM_SUFFIXES}, got {os.fspath(path)!r}.")
    ndim = len(t) - 1
    lps = ras_to_lps_affine(torch.as_tensor(t)).numpy()
    path = _prepare_path(path, overwrite, caller)
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
    a = _affine_np(affine, "affine", caller)
    ndim = len(a) - 1
    data = _to_numpy(array, "array", caller)
    if data.ndim == ndim + 1 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != ndim:
        raise ValueError(
            f"{caller}: 'array' must have shape (1, *S) or (*S) with {ndim} spatial dims (from 'affine'), "
            f"got {data.shape}."
        )
    suffix = os.fspath(path).lower()
    if not (suffix.endswith(".nii") or suffix.endswith(".nii.gz")):
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
    path = _prepare_path(path, overwrite, caller)
    image = nib.Nifti1Image(np.ascontiguousarray(data), a, dtype=data.dtype)
    image.set_qform(a, code=1)
    image.set_sform(a, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path


def _spatial(x: Any, name: str, caller: str) -> np.ndarray:
    """``(1, *S)`` or ``(1, 1, *S)`` -> ``(*S)`` float array."""
    a = _to_numpy(x, name, caller)
    if a.ndim >= 4 and a.shape[0] == 1 and a.shape[1] == 1:
        a = a[0, 0]
    elif a.ndim >= 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim not in (2, 3):
        raise ValueError(f"{caller}: '{name}' must have shape (1, *S) or (1, 1, *S) with 2 or 3 spatial dims.")
    return a.astype(np.float64)


def _slices(shape: Sequence[int]) -> list[tuple[tuple, int, int, str]]:
    """Middle slices: ``(index, first in-plane axis, second in-plane axis, title)`` for each axis."""
    if len(shape) == 2:
        return [((slice(None), slice(None)), 0, 1, "")]
    out = []
    for axis in range(3):
        idx = [slice(None)] * 3
        idx[axis] = shape[axis] // 2
        b, c = [k for k in range(3) if k != axis]
        out.append((tuple(idx), b, c, f"axis {axis} = {shape[axis] // 2}"))
    return out


def _display_order(affine: np.ndarray, ndim: int):
    """Flips and axis order that show a grid in RAS voxel order (``nibabel.orientations``)."""
    import nibabel.orientations as nio

    ornt = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt("RAS"[:ndim]))
    flips = tuple(ax for ax, f in enumerate(ornt[:, 1]) if f == -1)
    perm = tuple(int(i) for i in np.argsort(ornt[:, 0]))
    return flips, perm


def write_preview_png(
    path: str | os.PathLike,
    fixed: torch.Tensor | np.ndarray,
    warped: torch.Tensor | np.ndarray,
    phi: torch.Tensor | np.ndarray | None = None,
    moving: torch.Tensor | np.ndarray | None = None,
    overwrite: bool = False,
    dpi: int = 100,
    contours: torch.Tensor | np.ndarray | None = None,
    spacing: Sequence[float] | None = None,
    affine: Any = None,
) -> str:
    r"""A PNG to check a registration by eye: middle slices of every axis (one row each; one row in 2D).

    Columns: [moving |] fixed | warped | checkerboard of fixed and warped | [deformed grid]. The deformed grid is
    drawn as contour lines of the map's two in-plane coordinates ``phi_b``, ``phi_c`` (the moving grid's lines pulled
    back onto the fixed grid; straight lines for the identity). With ``contours`` (a label map on the same grid, e.g.
    the fixed label) the label boundaries are drawn in colour over the fixed and the warped image. Grey levels are
    shared by every image, from the 1st and 99th percentiles of ``fixed``.

    Orientation: with ``affine`` (the grid's voxel -> RAS matrix) the slices are shown in RAS order whatever the
    file's voxel order (R, A, S to the right and up); without it the first in-plane tensor axis is horizontal and
    the second vertical, upwards. The aspect ratio follows ``spacing`` (or the affine's, or a MONAI ``MetaTensor``
    ``fixed``'s).

    Args:
        path: output ``.png``.
        fixed, warped: ``(1, *S)`` or ``(1, 1, *S)`` on the same grid.
        phi: optional map ``(D, *S)`` or ``(1, D, *S)`` on that grid (``MapSpace.NORMALIZED``).
        moving: optional moving image on that grid (e.g. resampled to it), shown first.
        overwrite: replace an existing file.
        dpi: resolution (each panel is 3 x 3 inches).
        contours: optional label map ``(1, *S)`` whose boundaries are drawn.
        spacing: voxel size per tensor axis (mm).
        affine: voxel -> RAS matrix of the grid, for the display orientation and the spacing.

    Raises:
        ImportError: when matplotlib is not installed.
    """
    caller = "write_preview_png"
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"{caller}: matplotlib is required for the preview PNG; 'pip install matplotlib'.") from e

    f = _spatial(fixed, "fixed", caller)
    w = _spatial(warped, "warped", caller)
    if w.shape != f.shape:
        raise ValueError(f"{caller}: 'fixed' and 'warped' must have the same spatial shape, got {f.shape}, {w.shape}.")
    m = None if moving is None else _spatial(moving, "moving", caller)
    if m is not None and m.shape != f.shape:
        raise ValueError(f"{caller}: 'moving' must have the spatial shape of 'fixed' {f.shape}, got {m.shape}.")
    lab = None if contours is None else _spatial(contours, "contours", caller)
    if lab is not None and lab.shape != f.shape:
        raise ValueError(f"{caller}: 'contours' must have the spatial shape of 'fixed' {f.shape}, got {lab.shape}.")
    ndim = f.ndim
    p = None
    if phi is not None:
        p = _to_numpy(phi, "phi", caller).astype(np.float64)
        if p.ndim == ndim + 2 and p.shape[0] == 1:
            p = p[0]
        if p.shape != (ndim, *f.shape):
            raise ValueError(f"{caller}: 'phi' must have shape (1, {ndim}, *S) with S = {f.shape}, got {p.shape}.")
    if not str(os.fspath(path)).lower().endswith(".png"):
        raise ValueError(f"{caller}: 'path' must end with .png, got {os.fspath(path)!r}.")
    sp = np.ones(ndim)
    aff = affine if affine is not None else getattr(fixed, "affine", None)
    a = None
    if aff is not None:
        try:
            a = _affine_np(aff, "affine", caller, ndim)
            sp = np.sqrt((a[:ndim, :ndim] ** 2).sum(axis=0))
        except ValueError:
            a = None
    if spacing is not None:
        sp = np.asarray([float(v) for v in spacing], dtype=np.float64)
    if affine is not None and a is not None:  # show the slices in RAS order
        flips, perm = _display_order(a, ndim)

        def order(x):
            return None if x is None else np.transpose(np.flip(x, flips) if flips else x, perm)

        f, w, m, lab = order(f), order(w), order(m), order(lab)
        if p is not None:
            p = np.stack([order(p[c]) for c in perm])
        sp = sp[list(perm)]
    path = _prepare_path(path, overwrite, caller)

    finite = f[np.isfinite(f)]
    vmin, vmax = (np.percentile(finite, 1), np.percentile(finite, 99)) if finite.size else (0.0, 1.0)
    vmax = vmax if vmax > vmin else vmin + 1.0
    titles = (
        (["moving"] if m is not None else [])
        + ["fixed", "warped" + (" + fixed label" if lab is not None else ""), "checkerboard"]
        + (["grid"] if p is not None else [])
    )
    rows = _slices(f.shape)
    fig = Figure(figsize=(3 * len(titles), 3 * len(rows)), dpi=dpi)
    FigureCanvasAgg(fig)
    for r, (idx, b, c, label) in enumerate(rows):
        fs, ws = f[idx], w[idx]
        tile = max(min(fs.shape) // 8, 1)
        ii, jj = np.meshgrid(np.arange(fs.shape[0]), np.arange(fs.shape[1]), indexing="ij")
        checker = np.where(((ii // tile) + (jj // tile)) % 2 == 0, fs, ws)
        panels = ([m[idx]] if m is not None else []) + [fs, ws, checker]
        aspect = sp[c] / sp[b]
        for k, title in enumerate(titles):
            ax = fig.add_subplot(len(rows), len(titles), r * len(titles) + k + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title)
            if k == 0 and label:
                ax.set_ylabel(label)
            if title == "grid":
                ax.imshow(ws.T, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", aspect=aspect, alpha=0.35)
                for comp, color in ((b, "tab:red"), (c, "tab:blue")):
                    n = f.shape[comp]
                    step = max((n - 1) // 12, 1)
                    levels = np.unique(np.clip(2.0 * np.arange(0, n, step) / (n - 1) - 1.0, -1.0, 1.0))
                    values = p[comp][idx]
                    if np.ptp(values) > 0:
                        ax.contour(
                            values.T, levels=levels, colors=color, linewidths=0.6, linestyles="solid", origin="lower"
                        )
                ax.set_xlim(-0.5, fs.shape[0] - 0.5)
                ax.set_ylim(-0.5, fs.shape[1] - 0.5)
            else:
                ax.imshow(panels[k].T, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", aspect=aspect)
                if lab is not None and title.startswith(("fixed", "warped")):
                    ls = lab[idx]
                    values = np.unique(ls)
                    values = values[values != 0]
                    if values.size:
                        ax.contour(ls.T, levels=values - 0.5, cmap="autumn", linewidths=0.6, origin="lower", alpha=0.9)
                ax.set_xlim(-0.5, fs.shape[0] - 0.5)
                ax.set_ylim(-0.5, fs.shape[1] - 0.5)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=dpi)
    return path
