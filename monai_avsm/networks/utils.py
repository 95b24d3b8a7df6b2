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
"""Utilities of the networks (as ``monai.networks.utils``): reading trained weights from a file."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

__all__ = ["read_state_dict"]


def read_state_dict(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", caller: str = "read_state_dict", hint: str = ""
) -> dict[str, torch.Tensor]:
    """The weights in a model file, ready for ``load_state_dict``: a bare ``state_dict`` (``models/model.pt``), or a
    trainer checkpoint holding one under ``"model"`` (MONAI's ``CheckpointSaver``); a ``"module."`` prefix on every key
    (a ``DistributedDataParallel`` model saved as it is) is removed. Read with ``torch.load(weights_only=True)``.

    Args:
        path: the file.
        map_location: where ``torch.load`` puts the tensors.
        caller, hint: the function named in the error and a hint appended to it.

    Raises:
        ValueError: the file holds no state dict.
    """
    path = os.fspath(path)
    state = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]  # a trainer checkpoint: model, optimizer, scheduler and trainer state
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{caller}: {path!r} does not hold a state dict of the network." + (f" {hint}" if hint else "")
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)
