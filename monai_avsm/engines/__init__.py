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
"""Engine glue for registration pairs in MONAI's stock ``SupervisedTrainer``/``SupervisedEvaluator``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # where each name of __all__ is defined: read by type checkers, IDEs and lazy_exports
    from .distributed import (
        SUMMARY_COLUMNS,
        dist_info,
        distributed_output_dir,
        merge_shard_evaluation,
        merge_shard_records,
        require_shard,
        shard_items,
    )
    from .evaluation import STAGES, NativeStageLabels, SwappedPass, stage_labels
    from .finetune import cosine_stage_lambda, pretrained_checkpoint, training_pairs
    from .inferers import RefineInferer
    from .native import NativeResampler, PairGeometry, load_native, pair_geometry, pair_name, sample_at_points
    from .results import write_pair_outputs
    from .utils import (
        PreparePairBatch,
        batch_spacing,
        label_names,
        latest_checkpoint,
        new_output_dir,
        pair_items,
        require_file,
        resume_checkpoint,
    )

__all__ = [
    "RefineInferer",
    "PreparePairBatch",
    "batch_spacing",
    "latest_checkpoint",
    "resume_checkpoint",
    "new_output_dir",
    "require_file",
    "label_names",
    "pair_items",
    "NativeResampler",
    "PairGeometry",
    "load_native",
    "pair_geometry",
    "pair_name",
    "sample_at_points",
    "write_pair_outputs",
    "pretrained_checkpoint",
    "STAGES",
    "NativeStageLabels",
    "SwappedPass",
    "stage_labels",
    "require_shard",
    "training_pairs",
    "cosine_stage_lambda",
    "dist_info",
    "shard_items",
    "distributed_output_dir",
    "merge_shard_records",
    "merge_shard_evaluation",
    "SUMMARY_COLUMNS",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
