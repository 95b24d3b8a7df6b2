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
"""Shared parts of the recurrent registration networks (multi-step affine and multi-step vSVF): the run-time step
count, the check of a (moving, fixed) pair, and the split of a doubled symmetric batch."""

from __future__ import annotations

import torch
from torch import nn

from monai_avsm.utils.validation import check_same_spatial_shape, check_spatial_tensor

__all__ = ["MultiStepRegistrationNet", "split_symmetric"]


class MultiStepRegistrationNet(nn.Module):
    """Base of the networks applied ``num_steps`` times with shared weights; ``num_steps`` may change at run time."""

    spatial_dims: int

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @num_steps.setter
    def num_steps(self, value: int) -> None:
        if int(value) != value or value < 1:
            raise ValueError(f"{type(self).__name__}: 'num_steps' must be an integer >= 1, got {value}.")
        self._num_steps = int(value)

    def check_pair(self, moving: torch.Tensor, fixed: torch.Tensor) -> None:
        """Both ``(B, C, *S)`` with this network's spatial dims, the same channels, batch and spatial shape."""
        name = type(self).__name__
        if check_spatial_tensor(moving, "moving", name) != self.spatial_dims:
            raise ValueError(f"{name}: expected {self.spatial_dims} spatial dims, got 'moving' {tuple(moving.shape)}.")
        check_spatial_tensor(fixed, "fixed", name, channels=moving.shape[1])
        check_same_spatial_shape(moving, fixed, ("moving", "fixed"), name)
        if moving.shape[0] != fixed.shape[0]:
            raise ValueError(
                f"{name}: 'moving' and 'fixed' batch sizes differ: {moving.shape[0]} and {fixed.shape[0]}."
            )


def split_symmetric(both: dict, batch: int) -> dict:
    """Split the outputs of a doubled batch ``[source; target] -> [target; source]`` into the source -> target keys
    and the target -> source keys (suffix ``"_ts"``); lists of tensors are split element-wise."""
    out: dict = {}
    for key, value in both.items():
        if isinstance(value, torch.Tensor):
            out[key], out[f"{key}_ts"] = value[:batch], value[batch:]
        elif isinstance(value, (list, tuple)):
            out[key] = [v[:batch] for v in value]
            out[f"{key}_ts"] = [v[batch:] for v in value]
        else:
            out[key] = value
    return out
