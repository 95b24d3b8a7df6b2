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
"""Data of monai_avsm: registration datalists, pair loading transforms, the offline sample data set, OAI checks.

See ``docs/data.md``. The sample data set builder (``monai_avsm.data.sample``, templates shipped inside the packages
of the ``demo`` extra) and the OAI check (``monai_avsm.data.oai``) are command-line modules, imported on first use.
"""

from __future__ import annotations

from .datalist import (
    check_subject_split,
    cross_subject_pairs,
    load_pair_datalist,
    longitudinal_pairs,
    self_pairs,
    split_pairs,
    split_subjects,
    write_datalist,
)
from .loading import SUPPORTED_FORMATS, CheckPaird, LoadPairImaged, StoreGeometryd, pair_loading_transforms

__all__ = [
    "SUPPORTED_FORMATS",
    "CheckPaird",
    "LoadPairImaged",
    "StoreGeometryd",
    "build_sample_dataset",
    "check_oai_dataset",
    "check_subject_split",
    "cross_subject_pairs",
    "load_oai_config",
    "load_pair_datalist",
    "longitudinal_pairs",
    "pair_loading_transforms",
    "self_pairs",
    "split_pairs",
    "split_subjects",
    "write_datalist",
]


def __getattr__(name: str):
    # the modules with a command line are imported on first use, so that ``python -m monai_avsm.data.sample`` (or
    # ``.oai``) does not find them imported already (runpy warns about that)
    if name == "build_sample_dataset":
        from .sample import build_sample_dataset

        return build_sample_dataset
    if name in ("check_oai_dataset", "load_oai_config"):
        from . import oai

        return getattr(oai, name)
    raise AttributeError(f"module 'monai_avsm.data' has no attribute {name!r}")
