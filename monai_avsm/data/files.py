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
"""Checks of input files that need neither torch nor MONAI, so that the command line reports a missing, empty or
corrupt file in a fraction of a second, before any heavy import."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["check_image_file", "is_nifti", "error_summary", "NIFTI_SUFFIXES", "IMAGE_SUFFIXES"]

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
