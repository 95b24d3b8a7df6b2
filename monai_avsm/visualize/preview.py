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
r"""A PNG to check a registration by eye: middle slices of fixed, warped, their checkerboard and the deformed grid
(matplotlib, imported only when a preview is written).

:func:`write_preview_png` is what ``monai-avsm register --preview`` and the bundle's writer produce
(``preview.png`` next to the result files, :func:`~monai_avsm.engines.write_pair_outputs`). Like the file writers of
:mod:`monai_avsm.data.export` it creates the parent folders and refuses to overwrite a file unless ``overwrite=True``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from monai_avsm.data.files import prepare_output_path
from monai_avsm.functional.world import as_world_matrix
from monai_avsm.utils.validation import to_numpy

__all__ = ["write_preview_png"]


def _spatial(x: Any, name: str, caller: str) -> np.ndarray:
    """``(1, *S)`` or ``(1, 1, *S)`` -> ``(*S)`` float array."""
    a = to_numpy(x, name, caller)
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
        p = to_numpy(phi, "phi", caller).astype(np.float64)
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
            a = as_world_matrix(aff, ndim, "affine", caller, "cpu").numpy()
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
    path = prepare_output_path(path, overwrite, caller)

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
