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
r"""``MapAdvection``: RK4 integration of :math:`\partial_t \Phi^{-1} + D\Phi^{-1} v = 0` for unit time
(paper eq. 7, method spec §3). Module wrapper of :func:`monai_avsm.functional.advect_map`.
"""

from __future__ import annotations

import torch
from torch import nn

from monai_avsm.functional.advection import advect_map

__all__ = ["MapAdvection"]


class MapAdvection(nn.Module):
    r"""Advect a map under a stationary velocity for unit time with fixed-step RK4.

    Args:
        num_steps: RK4 steps (paper: 10). May be changed at run time (``module.num_steps = 20``).
        velocity_clamp: optional stability clamp, in voxels per unit time of each axis (the authors' code: about
            7.07 at 10 steps); ``None`` (default) for no clamp.

    ``forward(phi0, v)``: ``phi0`` and ``v`` ``(B, D, *S)`` on the same grid (``MapSpace.NORMALIZED``; ``v`` in
    normalised units per unit time) -> :math:`\Phi(1) \approx \Phi_0 \circ \psi_{-1}`. Maps are integrated in the
    dtype of the inputs (float32 under autocast).
    """

    def __init__(self, num_steps: int = 10, velocity_clamp: float | None = None) -> None:
        super().__init__()
        if int(num_steps) != num_steps or num_steps < 0:
            raise ValueError(f"MapAdvection: 'num_steps' must be a non-negative integer, got {num_steps}.")
        if velocity_clamp is not None and not velocity_clamp > 0:
            raise ValueError(f"MapAdvection: 'velocity_clamp' must be > 0 or None, got {velocity_clamp}.")
        self.num_steps = int(num_steps)
        self.velocity_clamp = velocity_clamp

    def forward(self, phi0: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=phi0.device.type, enabled=False):
            dtype = torch.promote_types(phi0.dtype, torch.float32)
            return advect_map(phi0.to(dtype), v.to(dtype), self.num_steps, self.velocity_clamp)

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}, velocity_clamp={self.velocity_clamp}"
