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

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .distributed import SUMMARY_COLUMNS as SUMMARY_COLUMNS
    from .distributed import dist_info as dist_info
    from .distributed import distributed_output_dir as distributed_output_dir
    from .distributed import merge_shard_evaluation as merge_shard_evaluation
    from .distributed import merge_shard_records as merge_shard_records
    from .distributed import require_shard as require_shard
    from .distributed import shard_items as shard_items
    from .evaluation import STAGES as STAGES
    from .evaluation import NativeStageLabels as NativeStageLabels
    from .evaluation import SwappedPass as SwappedPass
    from .evaluation import stage_labels as stage_labels
    from .finetune import cosine_stage_lambda as cosine_stage_lambda
    from .finetune import pretrained_checkpoint as pretrained_checkpoint
    from .finetune import training_pairs as training_pairs
    from .inferers import AutocastInferer as AutocastInferer
    from .inferers import RefineInferer as RefineInferer
    from .native import NativeResampler as NativeResampler
    from .native import PairGeometry as PairGeometry
    from .native import load_native as load_native
    from .native import pair_geometry as pair_geometry
    from .native import pair_name as pair_name
    from .native import sample_at_points as sample_at_points
    from .results import write_pair_outputs as write_pair_outputs
    from .utils import PreparePairBatch as PreparePairBatch
    from .utils import batch_spacing as batch_spacing
    from .utils import label_names as label_names
    from .utils import latest_checkpoint as latest_checkpoint
    from .utils import new_output_dir as new_output_dir
    from .utils import pair_items as pair_items
    from .utils import require_file as require_file
    from .utils import resume_checkpoint as resume_checkpoint

__all__, __getattr__, __dir__ = lazy_package(__name__)
