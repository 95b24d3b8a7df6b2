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
"""Data of monai_avsm: registration datalists, the pair loading pipeline (its transforms are in
:mod:`monai_avsm.transforms`, as MONAI keeps ``LoadImaged`` under ``monai.transforms``), label maps and synthetic
training pairs, image files (reading, checking, writing ITK/ANTs files), the working grid, and the brain templates
shipped inside PyPI packages (:mod:`.templates`).

See ``docs/data.md``. The data set builders with a command line live in :mod:`monai_avsm.apps` (``python -m
monai_avsm.apps.sample``, ``python -m monai_avsm.apps.oai``). Names are imported on first use (the pair loading
transforms need MONAI; ``monai_avsm.data.files`` and ``image_io`` serve the command line without it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # where each name of __all__ is defined: read by type checkers, IDEs and lazy_exports
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
    from .loading import pair_loading_transforms
    from .synthetic_pairs import SyntheticPairDataset


__all__ = [
    "SyntheticPairDataset",
    "label_map_sources",
    "check_subject_split",
    "cross_subject_pairs",
    "load_pair_datalist",
    "longitudinal_pairs",
    "pair_loading_transforms",
    "self_pairs",
    "split_pairs",
    "split_subjects",
    "write_datalist",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
