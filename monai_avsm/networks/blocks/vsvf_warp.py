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
r"""``VSVFWarp``: the vSVF warp block of AVSM (paper §2.2, eq. 7-8; method spec §3).

    momentum m0 (low resolution) --smoother--> v0 = K * m0
    initial map (full resolution) --resample--> Phi0 (low resolution)
    Phi0, v0 --RK4 advection--> Phi(1) (low resolution) --resample--> Phi (full resolution)
    source --warp by Phi (once, from the original)--> warped source

The block has no trainable parameters; gradients flow to the momentum and to the initial map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from monai_avsm.functional.maps import identity_map, resample_map, warp_image
from monai_avsm.functional.smoothing import PAPER_SIGMAS, PAPER_WEIGHTS
from monai_avsm.networks.blocks.integrator import MapAdvection
from monai_avsm.networks.blocks.smoother import MultiGaussianSmoother
from monai_avsm.utils.enums import BoundaryMode, KernelNormalization
from monai_avsm.utils.validation import check_map, check_spatial_tensor, ensure_spacing

__all__ = ["VSVFWarp"]


class VSVFWarp(nn.Module):
    r"""Momentum -> velocity -> advected map -> warped source (the vSVF warp block).

    .. math::
        v_0 = K \star m_0, \qquad \partial_t \Phi^{-1} + D\Phi^{-1} v_0 = 0,\ \Phi^{-1}(0) = \Phi^{-1}_{(0)},
        \qquad I_{warped} = I_0 \circ \Phi^{-1}(1)

    The velocity and the advection live on the momentum's (low-resolution) grid; the initial map is sampled down to
    it and the integrated map sampled up to the initial map's (full-resolution) grid, both by linear interpolation
    of the map, as in the authors' code.

    Args:
        spatial_dims: 2 or 3.
        sigmas, weights, boundary, normalization: the :class:`MultiGaussianSmoother` (paper defaults).
        num_steps: RK4 time steps (paper: 10).
        velocity_clamp: optional stability clamp in low-resolution voxels per unit time (off by default).

    Forward args:
        momentum: ``(B, D, *s)`` vector momentum at low resolution (usually half of ``S``).
        initial_map: ``(B, D, *S)`` normalised pull-back map at full resolution (affine map or previous vSVF step),
            or ``None`` for the identity on the source grid.
        source: ``(B, C, *S_src)`` image to warp (zero padding), from the original each time.
        spacing: voxel spacing of the full-resolution grid (needed for ``normalization="isotropic"`` with
            anisotropic voxels; default 1).

    Returns:
        dict with ``"velocity"`` ``(B, D, *s)``, ``"map_low"`` ``(B, D, *s)``, ``"map"`` ``(B, D, *S)`` and
        ``"warped"`` ``(B, C, *S)``. Maps and velocity are float32 (or float64 for float64 inputs), also under autocast.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        sigmas: Sequence[float] = PAPER_SIGMAS,
        weights: Sequence[float] = PAPER_WEIGHTS,
        boundary: BoundaryMode | str = BoundaryMode.ZERO,
        normalization: KernelNormalization | str = KernelNormalization.ISOTROPIC,
        num_steps: int = 10,
        velocity_clamp: float | None = None,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.smoother = MultiGaussianSmoother(spatial_dims, sigmas, weights, boundary, normalization)
        self.integrator = MapAdvection(num_steps, velocity_clamp)

    @property
    def num_steps(self) -> int:
        return self.integrator.num_steps

    @num_steps.setter
    def num_steps(self, value: int) -> None:
        self.integrator.num_steps = int(value)

    def forward(
        self,
        momentum: torch.Tensor,
        initial_map: torch.Tensor | None,
        source: torch.Tensor,
        spacing: Sequence[float] | torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        ndim = check_map(momentum, "momentum", "VSVFWarp")
        if ndim != self.spatial_dims:
            raise ValueError(
                f"VSVFWarp: expected {self.spatial_dims} spatial dims, got momentum {tuple(momentum.shape)}."
            )
        if check_spatial_tensor(source, "source", "VSVFWarp") != ndim:
            raise ValueError(
                f"VSVFWarp: 'source' {tuple(source.shape)} and 'momentum' must have the same spatial dims."
            )
        dtype = torch.promote_types(momentum.dtype, torch.float32)
        if initial_map is None:
            initial_map = identity_map(source.shape[2:], dtype=dtype, device=momentum.device)
        check_map(initial_map, "initial_map", "VSVFWarp")
        full_shape = tuple(initial_map.shape[2:])
        low_shape = tuple(momentum.shape[2:])
        sp = ensure_spacing(spacing, ndim, "VSVFWarp")
        # the low-resolution grid spans the same physical domain: spacing scales by (N - 1) / (n - 1)
        low_spacing = tuple(s * (n - 1) / (k - 1) for s, n, k in zip(sp, full_shape, low_shape))
        with torch.autocast(device_type=momentum.device.type, enabled=False):
            velocity = self.smoother(momentum.to(dtype), low_spacing)
            phi0_low = resample_map(initial_map.to(dtype), low_shape)  # batch 1 broadcasts in advect_map
            map_low = self.integrator(phi0_low, velocity)
            phi = resample_map(map_low, full_shape)
            warped = warp_image(source.to(dtype), phi, mode="bilinear", padding_mode="zeros")
        return {"velocity": velocity, "map_low": map_low, "map": phi, "warped": warped.to(source.dtype)}

    def extra_repr(self) -> str:
        return f"spatial_dims={self.spatial_dims}"
