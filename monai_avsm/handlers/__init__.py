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
"""Ignite handlers for AVSM training workflows (require pytorch-ignite, as MONAI's engines do)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # where each name of __all__ is defined: read by type checkers, IDEs and lazy_exports
    from .dataset_epoch import DatasetEpochHandler
    from .registration import RegistrationEvaluation, RegistrationWriter
    from .schedule import EpochScheduleHandler, LossWeightScheduleHandler
    from .stage import NonFiniteLossError, StopOnNaNLoss, TrainingStageHandler
    from .time_limit import TimeLimitHandler


__all__ = [
    "DatasetEpochHandler",
    "TimeLimitHandler",
    "LossWeightScheduleHandler",
    "EpochScheduleHandler",
    "TrainingStageHandler",
    "StopOnNaNLoss",
    "NonFiniteLossError",
    "RegistrationWriter",
    "RegistrationEvaluation",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
