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
"""The OAI knee presets of the paper (``configs/oai_longitudinal.json``, ``configs/oai_cross_subject.json``).

The Osteoarthritis Initiative (OAI) images are not redistributable: users request them from the OAI and set
``dataset_dir`` in a preset. :func:`check_oai_dataset` then checks, before any training, that the folder, the datalist
and every listed image and label exist, and fails with a message naming what is missing and where the data can be
requested.

    python -m monai_avsm.apps.oai configs/oai_longitudinal.json --dataset-dir /data/OAI
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from monai_avsm.data.datalist import load_pair_datalist

__all__ = ["OAI_DATA_REQUEST", "REQUIRED_KEYS", "load_oai_config", "check_oai_dataset", "main"]

#: where OAI data can be requested (the OAI moved from its UCSF site to the NIMH Data Archive).
OAI_DATA_REQUEST = (
    "the Osteoarthritis Initiative, https://nda.nih.gov/oai (NIMH Data Archive; formerly https://oai.epi-ucsf.org); "
    "the cartilage segmentations used by the paper are not part of the OAI image release"
)
#: keys every OAI preset must have.
REQUIRED_KEYS = ("dataset_dir", "datalist", "pairing", "labels", "preprocessing", "affine", "vsvf", "training")


def load_oai_config(config_path: str | os.PathLike) -> dict[str, Any]:
    """Read an OAI preset and check that it has the keys the bundle reads (:data:`REQUIRED_KEYS`).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: invalid JSON or a missing key (the message names the file and the key).
    """
    caller = "load_oai_config()"
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: OAI preset {str(path)!r} does not exist (see configs/README.md).")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{caller}: {str(path)!r} is not valid JSON: {e}.") from e
    if not isinstance(config, dict):
        raise ValueError(f"{caller}: {str(path)!r} must hold a JSON object, got {type(config).__name__}.")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ValueError(f"{caller}: {str(path)!r} has no {missing[0]!r} key (required: {list(REQUIRED_KEYS)}).")
    return config


def check_oai_dataset(
    config_path: str | os.PathLike,
    dataset_dir: str | os.PathLike | None = None,
    sections: tuple[str, ...] = ("training", "validation", "test"),
    check_files: bool = True,
) -> dict[str, Any]:
    """Check that the OAI data a preset points to is there; fail clearly when it is not.

    Args:
        config_path: an OAI preset (``configs/oai_longitudinal.json`` or ``configs/oai_cross_subject.json``).
        dataset_dir: overrides the preset's ``dataset_dir``.
        sections: datalist sections to check; ``training`` and ``test`` must not be empty, and ``validation`` and
            ``test`` pairs must have both labels (Dice is computed on them).
        check_files: check that every listed image and label file exists.

    Returns:
        ``{"dataset_dir", "datalist", "pairs": {section: count}}``.

    Raises:
        ValueError: ``dataset_dir`` is not set, a section is empty, or a pair has no labels.
        FileNotFoundError: the preset, the data folder, the datalist or a listed file is missing; the message names
            it and says where OAI data can be requested.
    """
    caller = "check_oai_dataset()"
    config = load_oai_config(config_path)
    root = dataset_dir if dataset_dir is not None else config.get("dataset_dir")
    if root in (None, ""):
        raise ValueError(
            f"{caller}: {str(config_path)!r}: 'dataset_dir' is not set; set it to the folder of your OAI images "
            f"(in the preset, or dataset_dir=... / --dataset-dir). OAI data can be requested from {OAI_DATA_REQUEST}."
        )
    root = Path(os.path.expanduser(str(root)))
    if not root.is_dir():
        raise FileNotFoundError(
            f"{caller}: {str(config_path)!r}: the OAI data folder 'dataset_dir' = {str(root)!r} does not exist. "
            f"OAI data can be requested from {OAI_DATA_REQUEST}."
        )
    datalist = root / config["datalist"]
    if not datalist.is_file():
        raise FileNotFoundError(
            f"{caller}: {str(config_path)!r}: the datalist {str(datalist)!r} ('datalist' = {config['datalist']!r}, "
            f"relative to dataset_dir) does not exist; build it from your images with "
            f"monai_avsm.data.split_pairs(items, pairing={config['pairing']!r}) and write_datalist(...)."
        )
    pairs = {}
    for section in sections:
        try:
            items = load_pair_datalist(datalist, data_root=root, section=section, check_files=check_files)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{caller}: {e} OAI data can be requested from {OAI_DATA_REQUEST}.") from e
        if section in ("training", "test") and not items:
            raise ValueError(f"{caller}: section {section!r} of {str(datalist)!r} is empty.")
        if section in ("validation", "test"):
            for i, item in enumerate(items):
                for key in ("moving_label", "fixed_label"):
                    if item.get(key) is None:
                        raise ValueError(
                            f"{caller}: {str(datalist)!r}, section {section!r}, item {i} has no {key!r}; "
                            "evaluation pairs need the cartilage labels "
                            f"{config['labels']}."
                        )
        pairs[section] = len(items)
    return {"dataset_dir": str(root), "datalist": str(datalist), "pairs": pairs}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m monai_avsm.apps.oai PRESET [--dataset-dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_avsm.apps.oai", description="Check that the OAI data of a preset is in place."
    )
    parser.add_argument("config", help="an OAI preset, e.g. configs/oai_longitudinal.json")
    parser.add_argument("--dataset-dir", default=None, help="overrides the preset's dataset_dir")
    args = parser.parse_args(argv)
    try:
        res = check_oai_dataset(args.config, args.dataset_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"OAI data in {res['dataset_dir']}: pairs {res['pairs']} ({res['datalist']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
