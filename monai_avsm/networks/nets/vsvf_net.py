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
r"""The multi-step vSVF network of AVSM (paper §2.2, eq. 7-12; method spec §3).

Each step :math:`\tau` takes the source warped by the previous map (the affine map for the first step), predicts a
momentum with :class:`~monai_avsm.networks.nets.momentum_net.MomentumUNet` and integrates it with
:class:`~monai_avsm.networks.blocks.VSVFWarp` starting from the previous map:
:math:`\Phi^{-1}_{(\tau)}(0) = \Phi^{-1}_{(\tau-1)}(1)`. The source is always interpolated once, from the original.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from monai_avsm.functional.maps import identity_map, warp_image
from monai_avsm.functional.smoothing import PAPER_SIGMAS, PAPER_WEIGHTS
from monai_avsm.networks.blocks.vsvf_warp import VSVFWarp
from monai_avsm.networks.nets.base import MultiStepRegistrationNet, split_symmetric
from monai_avsm.networks.nets.momentum_net import MomentumUNet
from monai_avsm.utils.enums import BoundaryMode, KernelNormalization
from monai_avsm.utils.validation import check_map

__all__ = ["VSVFNet"]


class VSVFNet(MultiStepRegistrationNet):
    r"""Multi-step vSVF registration network: momentum U-Net + vSVF warp block, ``num_steps`` times.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of each image (the U-Net sees ``2 * in_channels``).
        channels, decoder_channels: the :class:`MomentumUNet` (paper: 16/32/64/128/256).
        num_steps: vSVF steps (paper: train with 2, test with 2 or more); a run-time attribute.
        time_steps: RK4 steps per unit time (paper: 10).
        sigmas, weights, boundary, normalization, velocity_clamp: the :class:`VSVFWarp` smoother and integrator.

    ``forward(moving, fixed, initial_map=None, spacing=None, symmetric=False)``:
    ``moving``/``fixed`` ``(B, C, *S)`` on one grid; ``initial_map`` ``(B, D, *S)`` (the affine map; identity if
    ``None``); ``spacing`` the voxel spacing of ``S``. Returns a dict with ``"map"`` and ``"warped"`` (final) and the
    per-step lists ``"momenta"``, ``"velocities"`` (low resolution), ``"maps"`` and ``"warped_steps"`` (full
    resolution) for the step-wise losses (eq. 12). ``symmetric=True`` adds the target -> source keys (``"_ts"``);
    ``initial_map`` must then hold both directions (batch ``2B``, source->target first) or be ``None``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        decoder_channels: Sequence[int] = (128, 32, 16),
        num_steps: int = 2,
        time_steps: int = 10,
        sigmas: Sequence[float] = PAPER_SIGMAS,
        weights: Sequence[float] = PAPER_WEIGHTS,
        boundary: BoundaryMode | str = BoundaryMode.ZERO,
        normalization: KernelNormalization | str = KernelNormalization.ISOTROPIC,
        velocity_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.momentum_net = MomentumUNet(spatial_dims, 2 * in_channels, channels, decoder_channels, spatial_dims)
        self.warp = VSVFWarp(spatial_dims, sigmas, weights, boundary, normalization, time_steps, velocity_clamp)
        self.num_steps = num_steps

    def _run(self, moving, fixed, initial_map, spacing) -> dict:
        dtype = torch.promote_types(moving.dtype, torch.float32)
        if initial_map is None:
            phi = identity_map(moving.shape[2:], dtype=dtype, device=moving.device).expand(
                moving.shape[0], self.spatial_dims, *moving.shape[2:]
            )
            warped = moving
        else:
            phi = initial_map.to(dtype)
            with torch.autocast(device_type=moving.device.type, enabled=False):
                warped = warp_image(moving.to(dtype), phi).to(moving.dtype)
        out: dict = {"momenta": [], "velocities": [], "maps": [], "warped_steps": []}
        for _ in range(self.num_steps):
            momentum = self.momentum_net(torch.cat([warped, fixed], dim=1))
            step = self.warp(momentum, phi, moving, spacing)
            phi, warped = step["map"], step["warped"]
            out["momenta"].append(momentum.to(step["velocity"].dtype))
            out["velocities"].append(step["velocity"])
            out["maps"].append(phi)
            out["warped_steps"].append(warped)
        out["map"], out["warped"] = phi, warped
        return out

    def forward(
        self,
        moving: torch.Tensor,
        fixed: torch.Tensor,
        initial_map: torch.Tensor | None = None,
        spacing: Sequence[float] | torch.Tensor | None = None,
        symmetric: bool = False,
    ) -> dict:
        name = type(self).__name__
        self.check_pair(moving, fixed)
        batch = moving.shape[0]
        if symmetric:
            moving, fixed = torch.cat([moving, fixed]), torch.cat([fixed, moving])
        if initial_map is not None:
            check_map(initial_map, "initial_map", name)
            if initial_map.shape[2:] != moving.shape[2:] or initial_map.shape[0] not in (1, moving.shape[0]):
                raise ValueError(
                    f"{name}: 'initial_map' must have shape ({moving.shape[0]}, {self.spatial_dims}, "
                    f"*{tuple(moving.shape[2:])}), got {tuple(initial_map.shape)}."
                )
        out = self._run(moving, fixed, initial_map, spacing)
        return split_symmetric(out, batch) if symmetric else out
