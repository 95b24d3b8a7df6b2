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
"""Files without torch or MONAI: checks of input files (so that the command line reports a missing, empty or corrupt
file in a fraction of a second, before any heavy import), the file an image was read from, new output folders and
files that never overwrite by accident, and the writing of a built data set (files, manifest, cache check).

Every layer may use these (``monai_avsm.data`` sits below the engines, handlers and apps)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "check_image_file",
    "is_nifti",
    "error_summary",
    "image_filename",
    "new_output_dir",
    "prepare_output_path",
    "sha256_hex",
    "nifti_bytes",
    "dataset_manifest",
    "cached_dataset_files",
    "write_dataset_files",
    "NIFTI_SUFFIXES",
    "IMAGE_SUFFIXES",
]

#: suffixes read by nibabel
NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: image file suffixes (read by nibabel or, for the rest, by ITK through MONAI)
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def is_nifti(path: str) -> bool:
    """Whether ``path`` names a NIfTI file (read with nibabel)."""
    return path.lower().endswith(NIFTI_SUFFIXES)


def check_image_file(path: Any, name: str, caller: str) -> str:
    """``path`` as a string after the checks that need no reading: it exists, is not empty (a DICOM folder holds
    files), and, for NIfTI, its header is readable (a corrupt or truncated header is named here, before any heavy
    import).

    Raises:
        ValueError: no path given, an empty file or folder, an unreadable NIfTI header.
        FileNotFoundError: the file does not exist.
    """
    if path is None:
        raise ValueError(f"{caller}: '{name}' is required.")
    p = os.path.expanduser(os.fspath(path))
    if not os.path.exists(p):
        raise FileNotFoundError(f"{caller}: the {name} file {p!r} does not exist.")
    if os.path.isdir(p):
        if not any(os.path.isfile(os.path.join(p, f)) for f in os.listdir(p)):
            raise ValueError(f"{caller}: the {name} folder {p!r} (a DICOM series?) contains no files.")
        return p
    if os.path.getsize(p) == 0:
        raise ValueError(f"{caller}: the {name} file {p!r} is empty (0 bytes).")
    if is_nifti(p):
        import nibabel as nib

        try:
            nib.load(p)  # the header only (the voxels are read later, once)
        except Exception as e:
            raise ValueError(
                f"{caller}: cannot read the {name} file {p!r} (corrupt or not a NIfTI image?): {error_summary(e)}"
            ) from e
    return p


def error_summary(e: BaseException) -> str:
    """``"ErrorType: first line of the message"`` (for one-line error messages)."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"


def image_filename(image: Any, default: str | None = None) -> str | None:
    """The file an image was read from: ``image.path`` (:class:`~monai_avsm.data.image_io.NativeImage`), else MONAI's
    ``image.meta["filename_or_obj"]`` (the first name of a collated batch), else ``default``."""
    path = getattr(image, "path", None)
    if isinstance(path, str):
        return path
    meta = getattr(image, "meta", None)
    name = meta.get("filename_or_obj") if isinstance(meta, Mapping) else None
    if isinstance(name, (list, tuple)):
        name = name[0] if name else None
    return str(name) if name else default


def new_output_dir(path: str | os.PathLike, reuse_empty: bool = True) -> str:
    """``path``, else the first free ``path_2``, ``path_3``, ... (created), so that no earlier result is overwritten:
    inference and evaluation write every run into a new folder, the writers every pair.

    A name is claimed by creating the folder (``os.mkdir`` is atomic), so several processes writing into one parent
    folder (sharded inference) never share one.

    Args:
        path: the folder wanted.
        reuse_empty: an existing empty folder counts as free (the default: a folder made for this run, e.g. by a
            launcher); ``False`` skips every existing name.
    """
    base = Path(path)
    n = 1
    while True:
        candidate = base if n == 1 else base.with_name(f"{base.name}_{n}")
        try:
            candidate.mkdir(parents=True)
            break
        except FileExistsError:
            if not candidate.exists():  # not this name: a file where a parent folder should be
                raise
            if reuse_empty and candidate.is_dir() and not any(candidate.iterdir()):
                break
            n += 1
    if candidate != base:
        logging.getLogger(__name__).info(f"{str(base)!r} exists and is not empty: writing into {str(candidate)!r}")
    return str(candidate)


def prepare_output_path(path: str | os.PathLike, overwrite: bool, caller: str) -> str:
    """``path`` as a string for a file about to be written: refuse an existing file unless ``overwrite``, create the
    parent folders.

    Raises:
        IsADirectoryError: ``path`` is a folder.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{caller}: 'path' {path!r} is a folder, expected a file name.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{caller}: {path!r} exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as a hexadecimal string (the checksums of a data set's ``manifest.json``)."""
    return hashlib.sha256(data).hexdigest()


def nifti_bytes(array: Any, affine: Any, intent: str | None = None) -> bytes:
    """A gzip-compressed NIfTI-1 file (mm units, qform and sform code 1, optional ``intent``) as bytes, identical for
    identical inputs (gzip time stamp 0), so that a rebuilt data set is byte for byte the same."""
    import nibabel as nib

    img = nib.Nifti1Image(array, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    if intent:
        img.header.set_intent(intent)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def dataset_manifest(settings: Any, files: Mapping[str, bytes], **extra: Any) -> bytes:
    """The ``manifest.json`` of a built data set: its ``settings``, the ``extra`` entries, and the SHA-256 of every
    file (relative path -> bytes), as JSON bytes."""
    record = {"settings": settings, **extra, "files": {rel: sha256_hex(data) for rel, data in sorted(files.items())}}
    return (json.dumps(record, indent=2) + "\n").encode()


def cached_dataset_files(out: str | os.PathLike, settings: Any) -> list[str] | None:
    """The files (sorted relative paths) of the data set already in ``out`` when its ``manifest.json`` was written for
    the same ``settings`` and every file it lists still has its checksum; ``None`` otherwise (build it)."""
    out = Path(out)
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return None
    if not isinstance(manifest, dict):
        return None
    recorded = manifest.get("files", {})
    if (
        manifest.get("settings") == settings
        and recorded
        and all((out / rel).is_file() and sha256_hex((out / rel).read_bytes()) == h for rel, h in recorded.items())
    ):
        return sorted(recorded)
    return None


def write_dataset_files(out: Path, files: dict[str, bytes], overwrite: bool, caller: str) -> list[str]:
    """Write a built data set's files (relative path -> bytes) into ``out``: a file that already holds the same
    bytes is left alone, every other one is written atomically (``.part`` then renamed). Returns the paths written.

    Raises:
        FileExistsError: without ``overwrite``, when a file exists with other content (nothing is written then).
    """
    out = Path(out)
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
