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

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
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

_EXPORTS = {
    **{
        name: ".distributed"
        for name in (
            "SUMMARY_COLUMNS",
            "dist_info",
            "distributed_output_dir",
            "merge_shard_evaluation",
            "merge_shard_records",
            "require_shard",
            "shard_items",
        )
    },
    "STAGES": ".evaluation",
    "NativeStageLabels": ".evaluation",
    "SwappedPass": ".evaluation",
    "stage_labels": ".evaluation",
    "cosine_stage_lambda": ".finetune",
    "pretrained_checkpoint": ".finetune",
    "training_pairs": ".finetune",
    "RefineInferer": ".inferers",
    "NativeResampler": ".native",
    "PairGeometry": ".native",
    "load_native": ".native",
    "pair_geometry": ".native",
    "pair_name": ".native",
    "sample_at_points": ".native",
    "write_pair_outputs": ".results",
    "PreparePairBatch": ".utils",
    "batch_spacing": ".utils",
    "label_names": ".utils",
    "latest_checkpoint": ".utils",
    "new_output_dir": ".utils",
    "pair_items": ".utils",
    "require_file": ".utils",
    "resume_checkpoint": ".utils",
}
_SUBMODULES = ("distributed", "evaluation", "finetune", "inferers", "native", "results", "utils")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

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
    "STAGES",
    "NativeStageLabels",
    "SwappedPass",
    "stage_labels",
    "pretrained_checkpoint",
    "training_pairs",
    "cosine_stage_lambda",
    "dist_info",
    "shard_items",
    "distributed_output_dir",
    "merge_shard_records",
    "merge_shard_evaluation",
    "require_shard",
    "SUMMARY_COLUMNS",
]
