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

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .datalist import check_subject_split as check_subject_split
    from .datalist import cross_subject_pairs as cross_subject_pairs
    from .datalist import load_pair_datalist as load_pair_datalist
    from .datalist import longitudinal_pairs as longitudinal_pairs
    from .datalist import self_pairs as self_pairs
    from .datalist import split_pairs as split_pairs
    from .datalist import split_subjects as split_subjects
    from .datalist import write_datalist as write_datalist
    from .label_maps import label_map_sources as label_map_sources
    from .loading import pair_loading_transforms as pair_loading_transforms
    from .synthetic_pairs import SyntheticPairDataset as SyntheticPairDataset


__all__, __getattr__, __dir__ = lazy_package(__name__)
