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
"""Registration datalists: JSON files of image pairs in the MONAI decathlon layout, and the helpers that build them.

A registration datalist is a JSON object whose sections are lists of pairs::

    {
      "training":   [{"moving": "img/s1_t0.nii.gz", "fixed": "img/s1_t1.nii.gz",
                      "moving_label": "seg/s1_t0.nii.gz", "fixed_label": "seg/s1_t1.nii.gz",
                      "moving_subject": "s1", "fixed_subject": "s1"}, ...],
      "validation": [...],
      "test":       [...],
      "training_images": [{"image": "img/s1_t0.nii.gz", "label": "seg/s1_t0.nii.gz", "subject": "s1"}, ...]
    }

Labels and subject ids are optional. Relative paths are resolved against a data root (by default the folder of the
JSON file). Sections ending in ``_images`` list single images (``image``, optional ``label``): the training-time
synthetic deformation (``monai_avsm.transforms.RandSyntheticDeformationd``) turns each into a pair with a known map.

The paper trains on both directions of every pair (source and target swapped), so the pair builders return each
pair twice, (a, b) and (b, a), unless ``both_directions=False``. Every builder is deterministic for a given ``seed``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PAIR_KEYS",
    "IMAGE_KEYS",
    "PATH_KEYS",
    "SECTIONS",
    "load_pair_datalist",
    "longitudinal_pairs",
    "cross_subject_pairs",
    "split_subjects",
    "split_pairs",
    "check_subject_split",
    "write_datalist",
    "self_pairs",
]

logger = logging.getLogger(__name__)

#: keys of a pair item: required first, optional labels after.
PAIR_KEYS = ("moving", "fixed", "moving_label", "fixed_label")
#: keys of a single-image item (sections ending in ``_images``).
IMAGE_KEYS = ("image", "label")
#: every key whose value is a file path (resolved against the data root when loading, made relative when writing).
PATH_KEYS = PAIR_KEYS + IMAGE_KEYS
#: the pair sections, in the order of the decathlon layout.
SECTIONS = ("training", "validation", "test")


def _is_image_section(section: str) -> bool:
    return section.endswith("_images")


def load_pair_datalist(
    path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    section: str = "training",
    check_files: bool = True,
) -> list[dict]:
    """Read one section of a registration datalist and return its items with absolute paths.

    Args:
        path: the JSON datalist.
        data_root: folder that relative paths are resolved against (default: the folder of ``path``). Absolute
            paths in the file are kept.
        section: ``"training"``, ``"validation"``, ``"test"`` (pairs: ``moving``, ``fixed`` required, labels
            optional) or a section ending in ``_images`` (``image`` required, ``label`` optional).
        check_files: raise if a listed image file (or DICOM series folder) does not exist.

    Returns:
        a list of dicts (copies of the items) whose path keys (:data:`PATH_KEYS`) are absolute paths; other keys
        (subject ids, time points) are kept unchanged.

    Raises:
        FileNotFoundError: the datalist, or (``check_files``) a listed image, does not exist; the message names the
            datalist, the section, the item index and the key.
        ValueError: the file is not valid JSON, is not an object of lists, lacks ``section``, or an item lacks a
            required key.

    Note:
        ``monai.data.load_decathlon_datalist`` is not used because it always resolves only ``image`` and ``label``;
        other keys (``moving``, ``fixed``) are joined with the base folder only when the joined file exists, so a
        missing moving image would silently stay a relative path and fail later, far from its cause.
    """
    caller = "load_pair_datalist()"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: datalist file {str(path)!r} does not exist.")
    try:
        with open(path) as f:
            content = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{caller}: datalist file {str(path)!r} is not valid JSON: {e}.") from e
    if not isinstance(content, dict):
        raise ValueError(
            f"{caller}: datalist file {str(path)!r} must hold a JSON object of sections "
            f"(e.g. {{'training': [...]}}), got {type(content).__name__}."
        )
    if section not in content:
        available = sorted(k for k, v in content.items() if isinstance(v, list))
        raise ValueError(
            f"{caller}: datalist file {str(path)!r} has no section {section!r}; sections found: {available}."
        )
    items = content[section]
    if not isinstance(items, list):
        raise ValueError(
            f"{caller}: section {section!r} of {str(path)!r} must be a list of items, got {type(items).__name__}."
        )
    root = Path(data_root) if data_root is not None else path.parent
    required = ("image",) if _is_image_section(section) else ("moving", "fixed")
    out = []
    for i, item in enumerate(items):
        where = f"{caller}: {str(path)!r}, section {section!r}, item {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be a dict with keys {required}, got {type(item).__name__}: {item!r}.")
        missing = [k for k in required if k not in item]
        if missing:
            raise ValueError(f"{where} has no key {missing[0]!r} (required: {list(required)}; found: {sorted(item)}).")
        resolved = dict(item)
        for key in PATH_KEYS:
            if key not in resolved or resolved[key] is None:
                continue
            value = resolved[key]
            if not isinstance(value, (str, os.PathLike)):
                raise ValueError(f"{where}: {key!r} must be a file path (string), got {type(value).__name__}.")
            full = Path(os.path.expanduser(value))
            full = full if full.is_absolute() else root / full
            full_str = os.path.normpath(str(full))
            if check_files and not os.path.exists(full_str):
                raise FileNotFoundError(f"{where}: {key!r} file {full_str!r} does not exist (listed as {value!r}).")
            resolved[key] = full_str
        out.append(resolved)
    return out


def self_pairs(items: Sequence[Mapping], image_key: str = "image", label_key: str = "label") -> list[dict]:
    """Single-image items (a ``*_images`` section) as pairs of the image with itself:
    ``{"moving": image, "fixed": image, "moving_label": label, "fixed_label": label}``, other keys kept.

    A random transform of the fixed side (``RandSyntheticDeformationd(image_key="fixed", moving_key="fixed", ...)``)
    then makes each a pair with a known deformation, in the same pipeline as the real pairs (the bundle's training
    data: real pairs and synthetic pairs through one ``Compose``).
    """
    out = []
    for i, item in enumerate(items):
        if image_key not in item:
            raise ValueError(f"self_pairs(): item {i} has no {image_key!r} key, got keys {sorted(item)}.")
        pair = {k: v for k, v in item.items() if k not in (image_key, label_key)}
        pair["moving"] = pair["fixed"] = item[image_key]
        if item.get(label_key) is not None:
            pair["moving_label"] = pair["fixed_label"] = item[label_key]
        pair.setdefault("moving_subject", item.get("subject"))
        pair.setdefault("fixed_subject", item.get("subject"))
        out.append(pair)
    return out


def _group_by_subject(items: Sequence[Mapping], caller: str, subject_key: str, image_key: str) -> dict:
    groups: dict[Hashable, list[Mapping]] = {}
    for i, item in enumerate(items):
        if image_key not in item:
            raise ValueError(f"{caller}: item {i} has no {image_key!r} key, got keys {sorted(item)}.")
        if subject_key not in item:
            raise ValueError(f"{caller}: item {i} ({item[image_key]!r}) has no {subject_key!r} key (the subject id).")
        groups.setdefault(item[subject_key], []).append(item)
    return groups


def _pair(a: Mapping, b: Mapping, image_key: str, label_key: str, subject_key: str) -> dict:
    pair: dict[str, Any] = {"moving": a[image_key], "fixed": b[image_key]}
    if a.get(label_key) is not None and b.get(label_key) is not None:
        pair["moving_label"] = a[label_key]
        pair["fixed_label"] = b[label_key]
    pair["moving_subject"] = a[subject_key]
    pair["fixed_subject"] = b[subject_key]
    return pair


def _sort_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def longitudinal_pairs(
    items: Sequence[Mapping],
    seed: int = 0,
    both_directions: bool = True,
    image_key: str = "image",
    label_key: str = "label",
    subject_key: str = "subject",
    time_key: str = "time",
    shuffle: bool = True,
) -> list[dict]:
    """Pairs of images of the same subject at different time points (the paper's longitudinal setting).

    Every two images of one subject with different ``time`` values (or, without ``time``, every two distinct
    images of the subject) form a pair; with ``both_directions`` the pair is listed as (earlier, later) and
    (later, earlier).

    Args:
        items: dicts with ``image_key`` (path), ``subject_key`` (any hashable id), optional ``time_key`` (sortable)
            and ``label_key`` (path). Labels are copied into the pair only when both images have one.
        seed: seed of the order of the returned pairs (``shuffle``).
        both_directions: also list each pair with moving and fixed swapped.
        image_key, label_key, subject_key, time_key: the item keys used.
        shuffle: shuffle the pairs with ``seed``; otherwise they are grouped by subject, then by time.

    Returns:
        pair dicts ``{"moving", "fixed", ["moving_label", "fixed_label"], "moving_subject", "fixed_subject"}``.

    Raises:
        ValueError: an item lacks the image or subject key.
    """
    caller = "longitudinal_pairs()"
    groups = _group_by_subject(items, caller, subject_key, image_key)
    pairs = []
    for subject in sorted(groups, key=_sort_key):
        scans = groups[subject]
        if all(time_key in s for s in scans):
            scans = sorted(scans, key=lambda s: (_sort_key(s[time_key]), str(s[image_key])))
        for a, b in itertools.combinations(scans, 2):
            if a[image_key] == b[image_key]:
                continue
            if time_key in a and time_key in b and a[time_key] == b[time_key]:
                continue
            pairs.append(_pair(a, b, image_key, label_key, subject_key))
            if both_directions:
                pairs.append(_pair(b, a, image_key, label_key, subject_key))
    if shuffle:
        _shuffle_keep_directions(pairs, seed, both_directions)
    return pairs


def _shuffle_keep_directions(pairs: list, seed: int, both_directions: bool) -> None:
    """Shuffle in place; the two directions of a pair stay next to each other (so a swap never crosses splits)."""
    rng = random.Random(seed)
    if not both_directions:
        rng.shuffle(pairs)
        return
    blocks = [pairs[i : i + 2] for i in range(0, len(pairs), 2)]
    rng.shuffle(blocks)
    pairs[:] = [p for block in blocks for p in block]


def cross_subject_pairs(
    items: Sequence[Mapping],
    num_pairs: int | None = None,
    seed: int = 0,
    both_directions: bool = True,
    image_key: str = "image",
    label_key: str = "label",
    subject_key: str = "subject",
) -> list[dict]:
    """Random pairs of images of two different subjects (the paper's cross-subject setting).

    Args:
        items: dicts with ``image_key`` (path), ``subject_key`` (any hashable id) and optional ``label_key``.
        num_pairs: number of distinct unordered pairs to draw without replacement (each listed twice with
            ``both_directions``, so ``2 * num_pairs`` items are returned); ``None`` takes every cross-subject pair.
        seed: seed of the draw and of the order.
        both_directions: also list each pair with moving and fixed swapped.
        image_key, label_key, subject_key: the item keys used.

    Returns:
        pair dicts ``{"moving", "fixed", ["moving_label", "fixed_label"], "moving_subject", "fixed_subject"}``.

    Raises:
        ValueError: an item lacks a key, fewer than two subjects, or ``num_pairs`` exceeds the number of
            cross-subject pairs.
    """
    caller = "cross_subject_pairs()"
    _group_by_subject(items, caller, subject_key, image_key)
    ordered = sorted(items, key=lambda it: (_sort_key(it[subject_key]), str(it[image_key])))
    n = len(ordered)
    same = sum(math.comb(c, 2) for c in _counts(ordered, subject_key).values())
    total = math.comb(n, 2) - same
    if total == 0:
        raise ValueError(f"{caller}: need images of at least two subjects, got {n} image(s) of one subject.")
    if num_pairs is None:
        num_pairs = total
    if not isinstance(num_pairs, int) or num_pairs < 1 or num_pairs > total:
        raise ValueError(
            f"{caller}: 'num_pairs' must be an integer in [1, {total}] (the number of cross-subject pairs of "
            f"{n} images), got {num_pairs!r}."
        )
    rng = random.Random(seed)
    if num_pairs == total or total <= 200_000:
        candidates = [
            (i, j) for i, j in itertools.combinations(range(n), 2) if ordered[i][subject_key] != ordered[j][subject_key]
        ]
        chosen = rng.sample(candidates, num_pairs)
    else:  # rejection sampling: no list of all O(n^2) pairs
        seen: set[tuple[int, int]] = set()
        chosen = []
        while len(chosen) < num_pairs:
            i, j = sorted(rng.sample(range(n), 2))
            if ordered[i][subject_key] == ordered[j][subject_key] or (i, j) in seen:
                continue
            seen.add((i, j))
            chosen.append((i, j))
    pairs = []
    for i, j in chosen:
        a, b = ordered[i], ordered[j]
        pairs.append(_pair(a, b, image_key, label_key, subject_key))
        if both_directions:
            pairs.append(_pair(b, a, image_key, label_key, subject_key))
    return pairs


def _counts(items: Sequence[Mapping], subject_key: str) -> dict:
    counts: dict[Hashable, int] = {}
    for it in items:
        counts[it[subject_key]] = counts.get(it[subject_key], 0) + 1
    return counts


def split_subjects(
    subjects: Sequence[Hashable],
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 0,
    sections: Sequence[str] = SECTIONS,
) -> dict[str, list]:
    """Assign subjects (not images, not pairs) to sections, so that no subject is in two sections.

    Args:
        subjects: subject ids (duplicates are ignored).
        fractions: share of subjects per section, in the order of ``sections``; they must sum to 1. The default
            0.7/0.1/0.2 is the split helper of the authors' code. Every section with a positive fraction gets at
            least one subject when there are enough subjects.
        seed: seed of the assignment.
        sections: section names.

    Returns:
        ``{section: [subject ids, sorted]}``.

    Raises:
        ValueError: bad ``fractions`` or fewer subjects than sections with a positive fraction.
    """
    caller = "split_subjects()"
    if len(fractions) != len(sections):
        raise ValueError(
            f"{caller}: 'fractions' needs one value per section {tuple(sections)}, got {tuple(fractions)}."
        )
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"{caller}: 'fractions' must be >= 0 and sum to 1, got {tuple(fractions)}.")
    unique = sorted(set(subjects), key=_sort_key)
    wanted = sum(1 for f in fractions if f > 0)
    if len(unique) < wanted:
        raise ValueError(
            f"{caller}: {len(unique)} subject(s) cannot fill {wanted} sections with a positive fraction "
            f"{dict(zip(sections, fractions))}."
        )
    random.Random(seed).shuffle(unique)
    n = len(unique)
    raw = [f * n for f in fractions]
    counts = [int(math.floor(r)) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda k: (raw[k] - counts[k], fractions[k]), reverse=True)
    for k in by_remainder[: n - sum(counts)]:  # largest remainders first
        counts[k] += 1
    for k, f in enumerate(fractions):  # every section with a positive fraction gets a subject
        if f > 0 and counts[k] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[k] += 1
    out, start = {}, 0
    for name, c in zip(sections, counts):
        out[name] = sorted(unique[start : start + c], key=_sort_key)
        start += c
    return out


def split_pairs(
    items: Sequence[Mapping],
    pairing: str = "longitudinal",
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    num_pairs: int | Mapping[str, int | None] | None = None,
    seed: int = 0,
    both_directions: bool = True,
    image_key: str = "image",
    label_key: str = "label",
    subject_key: str = "subject",
    time_key: str = "time",
) -> dict[str, list[dict]]:
    """Build a registration datalist: split the subjects, then pair images inside each section only.

    Because subjects are assigned to sections before pairing, no image of a validation or test subject appears in
    a training pair (checked by :func:`check_subject_split` before returning).

    Args:
        items: dicts with ``image_key``, ``subject_key``, optional ``time_key`` and ``label_key``.
        pairing: ``"longitudinal"`` (same subject, different time: :func:`longitudinal_pairs`) or
            ``"cross_subject"`` (:func:`cross_subject_pairs`).
        fractions: subject shares of training, validation and test (:func:`split_subjects`).
        num_pairs: cross-subject only: at most this many unordered pairs per section (fewer when a section has
            fewer), one int for all or a dict by section (``None``: every pair).
        seed: seed of the split and of the pairing (each section uses a seed derived from it).
        both_directions: list every pair in both directions.
        image_key, label_key, subject_key, time_key: the item keys used.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...], "training_images": [...], ...}``: the pair
        sections and, per section, the single images (``{"image", ["label"], "subject", ["time"]}``) that the
        synthetic-deformation transform can pair with a deformed copy of themselves.

    Raises:
        ValueError: unknown ``pairing``, bad ``fractions``, or a section that cannot be paired.
    """
    caller = "split_pairs()"
    if pairing not in ("longitudinal", "cross_subject"):
        raise ValueError(f"{caller}: 'pairing' must be 'longitudinal' or 'cross_subject', got {pairing!r}.")
    groups = _group_by_subject(items, caller, subject_key, image_key)
    assignment = split_subjects(list(groups), fractions, seed)
    datalist: dict[str, list[dict]] = {}
    for k, section in enumerate(SECTIONS):
        section_items = [it for s in assignment[section] for it in groups[s]]
        if not section_items:
            datalist[section] = []
        elif pairing == "longitudinal":
            datalist[section] = longitudinal_pairs(
                section_items, seed + k, both_directions, image_key, label_key, subject_key, time_key
            )
        else:
            n = num_pairs.get(section) if isinstance(num_pairs, Mapping) else num_pairs
            if len(assignment[section]) < 2:
                raise ValueError(
                    f"{caller}: section {section!r} has {len(assignment[section])} subject(s); cross-subject pairs "
                    f"need at least 2: change 'fractions' {tuple(fractions)} or add subjects."
                )
            total = math.comb(len(section_items), 2) - sum(
                math.comb(c, 2) for c in _counts(section_items, subject_key).values()
            )
            n = None if n is None else min(int(n), total)  # at most the pairs the section has
            datalist[section] = cross_subject_pairs(
                section_items, n, seed + k, both_directions, image_key, label_key, subject_key
            )
    for section in SECTIONS:
        datalist[f"{section}_images"] = [
            {
                "image": it[image_key],
                **({"label": it[label_key]} if it.get(label_key) is not None else {}),
                "subject": it[subject_key],
                **({"time": it[time_key]} if time_key in it else {}),
            }
            for s in assignment[section]
            for it in groups[s]
        ]
    check_subject_split(datalist)
    return datalist


def _subjects(item: Mapping) -> list:
    return [item[k] for k in ("moving_subject", "fixed_subject", "subject") if k in item]


def check_subject_split(datalist: Mapping[str, Sequence[Mapping]], source: str = "datalist") -> None:
    """Raise if a validation or test subject (or image file) also appears in training.

    Subjects are read from ``moving_subject`` / ``fixed_subject`` / ``subject``; image paths are compared too, so
    the check also works for lists without subject ids.

    Args:
        datalist: a dict of sections (``training``, ``validation``, ``test``, ``*_images``).
        source: name of the datalist in the error message (e.g. its file).

    Raises:
        ValueError: naming the section, the subject or file, and the item index.
    """
    train_subjects, train_files = set(), set()
    for section in ("training", "training_images"):
        for item in datalist.get(section, []):
            train_subjects.update(_subjects(item))
            train_files.update(str(item[k]) for k in PATH_KEYS if item.get(k) is not None)
    for section in ("validation", "test", "validation_images", "test_images"):
        for i, item in enumerate(datalist.get(section, [])):
            for s in _subjects(item):
                if s in train_subjects:
                    raise ValueError(
                        f"check_subject_split(): {source}: subject {s!r} of {section!r} item {i} also appears in "
                        "training; validation and test subjects must be unseen in training."
                    )
            for k in PATH_KEYS:
                if item.get(k) is not None and str(item[k]) in train_files:
                    raise ValueError(
                        f"check_subject_split(): {source}: file {item[k]!r} ({k!r} of {section!r} item {i}) is also "
                        "used in training."
                    )


def write_datalist(
    datalist: Mapping[str, Any],
    path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a datalist as JSON with paths relative to ``data_root``.

    Args:
        datalist: sections (lists of dicts) and optional metadata entries (any JSON value), written as given.
        path: the JSON file to write.
        data_root: folder the paths are made relative to (default: the folder of ``path``); pass the same folder to
            :func:`load_pair_datalist`.
        overwrite: replace an existing file with different content (an identical file is always left as it is).

    Returns:
        the path written.

    Raises:
        FileExistsError: ``path`` exists with different content and ``overwrite`` is False.
    """
    path = Path(path)
    root = Path(data_root) if data_root is not None else path.parent
    root_abs = os.path.abspath(root)

    def rel(value: Any) -> Any:
        if not isinstance(value, (str, os.PathLike)):
            return value
        p = os.path.expanduser(str(value))
        if not os.path.isabs(p):
            return p.replace(os.sep, "/")
        return os.path.relpath(p, root_abs).replace(os.sep, "/")

    out: dict[str, Any] = {}
    for name, section in datalist.items():
        if isinstance(section, list) and all(isinstance(it, Mapping) for it in section):
            out[name] = [{k: (rel(v) if k in PATH_KEYS else v) for k, v in item.items()} for item in section]
        else:
            out[name] = section
    text = json.dumps(out, indent=2) + "\n"
    if path.exists():
        if path.read_text() == text:
            logger.info("datalist %s is up to date", path)
            return path
        if not overwrite:
            raise FileExistsError(
                f"write_datalist(): {str(path)!r} exists with different content; pass overwrite=True or another path."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    logger.info(
        "wrote datalist %s (%s)", path, ", ".join(f"{k}: {len(v)}" for k, v in out.items() if isinstance(v, list))
    )
    return path
