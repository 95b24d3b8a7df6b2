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

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
    from .registration import RegistrationEvaluation, RegistrationWriter
    from .schedule import EpochScheduleHandler, LossWeightScheduleHandler
    from .stage import NonFiniteLossError, StopOnNaNLoss, TrainingStageHandler

_EXPORTS = {
    "RegistrationEvaluation": ".registration",
    "RegistrationWriter": ".registration",
    "EpochScheduleHandler": ".schedule",
    "LossWeightScheduleHandler": ".schedule",
    "NonFiniteLossError": ".stage",
    "StopOnNaNLoss": ".stage",
    "TrainingStageHandler": ".stage",
}
_SUBMODULES = ("registration", "schedule", "stage")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "LossWeightScheduleHandler",
    "EpochScheduleHandler",
    "TrainingStageHandler",
    "StopOnNaNLoss",
    "NonFiniteLossError",
    "RegistrationWriter",
    "RegistrationEvaluation",
]
