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
"""Data of monai_avsm: registration datalists, pair loading transforms, the offline sample data set, label maps and
synthetic training pairs, OAI checks.

See ``docs/data.md``. The sample data set builder (``monai_avsm.data.sample``, templates shipped inside the packages
of the ``demo`` extra) and the OAI check (``monai_avsm.data.oai``) are command-line modules, imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
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
    from .label_maps import label_map_sources
    from .loading import SUPPORTED_FORMATS, CheckPaird, LoadPairImaged, StoreGeometryd, pair_loading_transforms
    from .oai import check_oai_dataset, load_oai_config
    from .sample import build_sample_dataset
    from .synthetic_pairs import SyntheticPairDataset

# the modules with a command line (sample, oai) are imported on first use too, so that ``python -m
# monai_avsm.data.sample`` does not find them imported already (runpy warns about that)
_EXPORTS = {
    "check_subject_split": ".datalist",
    "cross_subject_pairs": ".datalist",
    "load_pair_datalist": ".datalist",
    "longitudinal_pairs": ".datalist",
    "self_pairs": ".datalist",
    "split_pairs": ".datalist",
    "split_subjects": ".datalist",
    "write_datalist": ".datalist",
    "label_map_sources": ".label_maps",
    "SUPPORTED_FORMATS": ".loading",
    "CheckPaird": ".loading",
    "LoadPairImaged": ".loading",
    "StoreGeometryd": ".loading",
    "pair_loading_transforms": ".loading",
    "build_sample_dataset": ".sample",
    "check_oai_dataset": ".oai",
    "load_oai_config": ".oai",
    "SyntheticPairDataset": ".synthetic_pairs",
}
_SUBMODULES = ("datalist", "export", "label_maps", "loading", "oai", "sample", "synthetic_pairs")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "SUPPORTED_FORMATS",
    "CheckPaird",
    "LoadPairImaged",
    "StoreGeometryd",
    "SyntheticPairDataset",
    "build_sample_dataset",
    "check_oai_dataset",
    "check_subject_split",
    "cross_subject_pairs",
    "label_map_sources",
    "load_oai_config",
    "load_pair_datalist",
    "longitudinal_pairs",
    "pair_loading_transforms",
    "self_pairs",
    "split_pairs",
    "split_subjects",
    "write_datalist",
]
