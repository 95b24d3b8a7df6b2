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
"""Apply written transforms to another image, as ``antsApplyTransforms`` does (``monai-avsm apply``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from monai_avsm.data.export import TRANSFORM_SUFFIXES, read_affine_transform, read_displacement_field, write_image
from monai_avsm.data.image_io import IMAGE_SUFFIXES, read_image
from monai_avsm.engines.native import sample_at_points
from monai_avsm.functional.world import apply_affine_points, resample_world, voxel_world_points

__all__ = ["apply_transforms", "field_in_folder"]


def field_in_folder(folder: str, name: str = "displacement_field") -> str:
    """The displacement field ``name`` written by :func:`~monai_avsm.register` into ``folder`` (``.nii`` or
    ``.nii.gz``); the ``.nii.gz`` path when neither exists (for the error message)."""
    for ext in (".nii", ".nii.gz"):
        candidate = os.path.join(folder, name + ext)
        if os.path.isfile(candidate):
            return candidate
    return os.path.join(folder, name + ".nii.gz")


def _reference_grid(reference: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    img = read_image(reference, name="reference", caller="apply_transforms")
    return img.affine, img.spatial_shape


def _parse_transform(item: str) -> tuple[str, bool]:
    """ANTs' ``[file,1]`` (inverse) / ``[file,0]`` syntax -> ``(file, invert)``."""
    text = item.strip()
    if text.startswith("[") and text.endswith("]") and "," in text:
        path, flag = text[1:-1].rsplit(",", 1)
        if flag.strip() not in ("0", "1"):
            raise ValueError(f"apply_transforms: {item!r}: the flag after the comma must be 0 or 1.")
        return path.strip(), flag.strip() == "1"
    return text, False


def apply_transforms(
    transforms: str | os.PathLike | Sequence[str | os.PathLike],
    image: str | os.PathLike,
    reference: str | os.PathLike,
    output: str | os.PathLike,
    label: bool = False,
    overwrite: bool = False,
) -> str:
    r"""Apply written transforms to an image, as ``antsApplyTransforms -i image -r reference -t T1 -t T2 ...`` does.

    For each voxel ``p`` of the reference grid (world), the image is read at :math:`T_n(\dots T_2(T_1(p)))`: the
    transforms are listed in ANTs' order (the first listed acts first on the reference points; "the last one is
    applied first to the image"), checked against ANTs in ``tests/apps/test_ants_roundtrip.py``. Each transform is

    - a displacement field (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``; ITK vector image, LPS): ``p -> p + d(p)``
      (zero displacement outside its grid, as ITK);
    - an affine file (``.tfm``, ``.txt``, ``.mat``): ``p -> T p``; ``"[affine.mat,1]"`` uses its inverse (ANTs'
      syntax);
    - a folder written by :func:`~monai_avsm.register`: its ``displacement_field``.

    So ``[result/displacement_field.nii]`` equals ``[result/deformable_field.nii, result/affine.mat]``, and the
    inverse direction (``reference`` = the moving image) is ``[result/inverse_displacement_field.nii]`` or
    ``["[result/affine.mat,1]", result/inverse_deformable_field.nii]``.

    Args:
        transforms: one transform or a list (ANTs order).
        image: the image (or label map) to warp.
        reference: the image whose grid the output takes (e.g. the fixed image; for the inverse direction the
            moving image).
        output: the new file (never overwritten unless ``overwrite``).
        label: nearest neighbour (for label maps), else linear.
        overwrite: replace an existing ``output``.

    Returns:
        the path written.

    Raises:
        FileNotFoundError: a transform, the image or the reference is missing; FileExistsError: ``output`` exists;
        ValueError: a file that is neither a displacement field nor an affine file, a label map with non-integer
        values, an unreadable image.
    """
    caller = "apply_transforms"
    items = [transforms] if isinstance(transforms, (str, os.PathLike)) else list(transforms)
    if not items:
        raise ValueError(f"{caller}: give at least one transform.")
    out = os.fspath(output)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{caller}: {out!r} exists; choose a new file name or pass overwrite=True (--overwrite).")
    parsed = []
    for t in items:  # every transform checked before any image is read
        t, invert = _parse_transform(os.fspath(t))
        if invert and not t.lower().endswith(TRANSFORM_SUFFIXES):
            raise ValueError(f"{caller}: only affine files can be inverted with '[file,1]', got {t!r}.")
        if os.path.isdir(t):
            t = field_in_folder(t)
        if not os.path.isfile(t):
            raise FileNotFoundError(f"{caller}: the transform {t!r} does not exist.")
        if not t.lower().endswith(TRANSFORM_SUFFIXES + IMAGE_SUFFIXES):
            raise ValueError(
                f"{caller}: cannot tell what {t!r} is; transforms are displacement fields "
                f"({', '.join(IMAGE_SUFFIXES)}) or affine files ({', '.join(TRANSFORM_SUFFIXES)})."
            )
        parsed.append((t, invert))
    ref_affine, ref_shape = _reference_grid(os.fspath(reference))
    img = read_image(image, label=label, name="image", caller=caller)
    points = voxel_world_points(ref_affine, ref_shape)
    for t, invert in parsed:
        if t.lower().endswith(TRANSFORM_SUFFIXES):
            T = read_affine_transform(t)
            if invert:
                T = torch.linalg.inv(T)
            points = apply_affine_points(T, points)
        else:
            disp, aff = read_displacement_field(t)
            points = points + resample_world(disp, aff, points, mode="bilinear").to(torch.float64)
    return write_image(out, sample_at_points(img, points, label), ref_affine, overwrite=overwrite)
