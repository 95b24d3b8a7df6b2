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
"""Data of monai_avsm: registration datalists, the pair loading pipeline, the offline sample data set, OAI checks.

See ``docs/data.md``. The sample data set builder (``monai_avsm.data.sample``, templates shipped inside the packages
of the ``demo`` extra) and the OAI check (``monai_avsm.data.oai``) are command-line modules, imported on first use.
The pair transforms the loading pipeline chains (``CheckPaird``, ``LoadPairImaged``, ``StoreGeometryd``,
``SpacingEachd``) are in :mod:`monai_avsm.transforms`, as MONAI keeps ``LoadImaged`` under ``monai.transforms``.
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
    from .loading import pair_loading_transforms
    from .oai import check_oai_dataset, load_oai_config
    from .sample import build_sample_dataset

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
    "pair_loading_transforms": ".loading",
    "build_sample_dataset": ".sample",
    "check_oai_dataset": ".oai",
    "load_oai_config": ".oai",
}
_SUBMODULES = ("datalist", "export", "loading", "oai", "sample")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
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
