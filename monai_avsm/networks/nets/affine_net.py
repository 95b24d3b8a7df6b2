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
r"""The multi-step affine network of AVSM (paper §2.1, eq. 1; method spec §2).

:class:`AffineNet` is one step: (warped source, target) -> an affine update :math:`(\tilde A, \tilde b)`.
:class:`MultiStepAffineNet` applies it recurrently with shared weights; at every step the *original* source is warped
by the current estimate (interpolated once) and the update is composed with
:func:`monai_avsm.functional.update_affine`.

Deviations from the authors' code (``docs/deviations.md``): the head is size-agnostic (adaptive average pooling to a
fixed small grid instead of a flatten tied to 80x192x192), and the update is parameterised around the identity with
a zero-initialised last layer, so an untrained network predicts the identity (as MONAI's ``AffineHead`` does).
The convolutions reuse MONAI's ``Convolution`` block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers import Pool
from monai.utils import look_up_option
from torch import nn

from monai_avsm.functional.affine import affine_to_map, identity_affine, theta_from_affine, update_affine
from monai_avsm.functional.maps import warp_image
from monai_avsm.networks.nets.base import MultiStepRegistrationNet, split_symmetric
from monai_avsm.utils.enums import ComposeOrder

__all__ = ["AffineNet", "MultiStepAffineNet"]


class AffineNet(nn.Module):
    r"""One step of the affine network: (warped source, target) -> :math:`(\tilde A, \tilde b)`.

    Architecture (after the authors' ``Affine_unet_im``): a shared (siamese) first convolution applied to the
    source and to the target, concatenated; stride-2 convolution stages; adaptive average pooling to
    ``pooled_size`` per axis; ``Linear -> ReLU -> Linear`` to :math:`D^2 + D` numbers :math:`(\Delta A, \tilde b)`,
    and :math:`\tilde A = I + \Delta A`. The last layer is zero-initialised: the untrained step is the identity.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of each input image.
        channels: output channels of the shared first convolution, then of each stride-2 stage.
        hidden: width of the hidden fully connected layer (authors: 32).
        pooled_size: adaptive pooling grid per axis (the head does not depend on the input size).

    ``forward(source, target, target_features=None)`` with ``(B, C, *S)`` each -> ``(A (B, D, D), b (B, D))``,
    float32 (also under autocast). ``target_features = net.first(target)`` may be passed to reuse them across the
    steps of :class:`MultiStepAffineNet` (the target does not change).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 32, 32, 16),
        hidden: int = 32,
        pooled_size: int = 3,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"AffineNet: 'spatial_dims' must be 2 or 3, got {spatial_dims}.")
        if len(channels) < 2:
            raise ValueError(f"AffineNet: 'channels' needs at least 2 entries, got {tuple(channels)}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.first = Convolution(spatial_dims, in_channels, channels[0], kernel_size=3, act="RELU", norm=None)
        layers: list[nn.Module] = []
        c_in = 2 * channels[0]
        for c in channels[1:]:
            layers.append(Convolution(spatial_dims, c_in, c, strides=2, kernel_size=3, act="RELU", norm=None))
            layers.append(Convolution(spatial_dims, c, c, kernel_size=3, act="RELU", norm=None))
            c_in = c
        self.encoder = nn.Sequential(*layers)
        self.pool = Pool["adaptiveavg", spatial_dims](pooled_size)
        n_out = spatial_dims * spatial_dims + spatial_dims
        self.head = nn.Sequential(
            nn.Linear(c_in * pooled_size**spatial_dims, hidden), nn.ReLU(), nn.Linear(hidden, n_out)
        )
        # He initialisation keeps the activations' scale through the stride-2 stages (PyTorch's default shrinks it
        # by about half per layer, and the difference between inputs vanishes before the head); zero last layer.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.head[-1].weight)

    def forward(
        self, source: torch.Tensor, target: torch.Tensor, target_features: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if target_features is None:
            target_features = self.first(target)
        x = torch.cat([self.first(source), target_features], dim=1)
        x = self.pool(self.encoder(x)).flatten(1)
        out = self.head(x).float()
        d = self.spatial_dims
        eye = torch.eye(d, dtype=out.dtype, device=out.device)
        return eye + out[:, : d * d].reshape(-1, d, d), out[:, d * d :]


class MultiStepAffineNet(MultiStepRegistrationNet):
    r"""Recurrent multi-step affine registration (paper §2.1, eq. 1).

    .. math::
        (\tilde A_t, \tilde b_t) = f(I_0 \circ \Phi_{t-1}, I_1), \qquad \Phi_t = \Phi_{t-1} \circ \tilde\Phi_t
        \ (\text{``pullback''}) \text{ or } \tilde\Phi_t \circ \Phi_{t-1}\ (\text{``paper''})

    with shared weights ``f`` (:class:`AffineNet`), :math:`\Phi_0 = id`, the source warped from the original at
    every step.

    Args:
        spatial_dims, in_channels, channels, hidden, pooled_size: the :class:`AffineNet` step (attribute ``net``).
        num_steps: number of steps; a run-time attribute (paper: train with 3 or 5, test with 7). A state dict saved
            with any ``num_steps`` loads for any other (the paper trains 1 step first, then the multi-step net).
        order: :class:`~monai_avsm.utils.enums.ComposeOrder` of the update (default ``"pullback"``).
        input_scale: resolution at which the steps see the images (``0.5``, default: half; ``1.0``: full, the
            authors' default). The images are sampled on a grid of ``ceil(S * input_scale)`` voxels spanning the same
            domain, so the estimated ``(A, b)`` need no conversion; the returned map and warped image are full
            resolution. Deviation: the authors' code runs the affine net at full resolution; half resolution costs
            about 1/8 and is ample for 12 parameters (``docs/deviations.md``).

    ``forward(moving, fixed, symmetric=False)``: ``(B, C, *S)`` each (same grid) -> dict with
    ``"affine"`` (``theta = [A | b]``, ``(B, D, D + 1)``), ``"affine_steps"`` (``(B, T, D, D + 1)``, the composed
    estimate after each step), ``"map"`` (``(B, D, *S)`` normalised pull-back map) and ``"warped"`` (the source warped
    once by ``"map"``). With ``symmetric=True`` the batch also runs target -> source and the same keys with the suffix
    ``"_ts"`` hold that direction (for :class:`~monai_avsm.losses.AffineSymmetryLoss`).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 32, 32, 16),
        hidden: int = 32,
        pooled_size: int = 3,
        num_steps: int = 3,
        order: ComposeOrder | str = ComposeOrder.PULLBACK,
        input_scale: float = 0.5,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.net = AffineNet(spatial_dims, in_channels, channels, hidden, pooled_size)
        self.num_steps = num_steps
        self.order = look_up_option(order, ComposeOrder)
        if not 0 < input_scale <= 1:
            raise ValueError(f"MultiStepAffineNet: 'input_scale' must be in (0, 1], got {input_scale}.")
        self.input_scale = float(input_scale)

    def _run(self, moving: torch.Tensor, fixed: torch.Tensor) -> dict[str, torch.Tensor]:
        shape = tuple(moving.shape[2:])
        dtype = torch.promote_types(moving.dtype, torch.float32)
        low = tuple(max(math.ceil(s * self.input_scale), 2) for s in shape)
        if low != shape:  # sample both images on the coarser grid spanning the same domain (align_corners=True)
            mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
            moving_in = F.interpolate(moving, size=low, mode=mode, align_corners=True)
            fixed_in = F.interpolate(fixed, size=low, mode=mode, align_corners=True)
        else:
            moving_in, fixed_in = moving, fixed
        A, b = identity_affine(moving.shape[0], self.spatial_dims, dtype=dtype, device=moving.device)
        target_features = self.net.first(fixed_in)
        warped = moving_in
        steps = []
        for t in range(self.num_steps):
            if t:  # the original source, warped once by the current estimate
                with torch.autocast(device_type=moving.device.type, enabled=False):
                    warped = warp_image(moving_in.to(dtype), affine_to_map(A, b, low)).to(moving.dtype)
            A_t, b_t = self.net(warped, fixed_in, target_features)
            with torch.autocast(device_type=moving.device.type, enabled=False):
                A, b = update_affine((A, b), (A_t.to(dtype), b_t.to(dtype)), self.order)
            steps.append(theta_from_affine(A, b))
        with torch.autocast(device_type=moving.device.type, enabled=False):
            phi = affine_to_map(A, b, shape)
            warped = warp_image(moving.to(dtype), phi).to(moving.dtype)
        return {"affine": steps[-1], "affine_steps": torch.stack(steps, dim=1), "map": phi, "warped": warped}

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor, symmetric: bool = False) -> dict[str, torch.Tensor]:
        self.check_pair(moving, fixed)
        if not symmetric:
            return self._run(moving, fixed)
        both = self._run(torch.cat([moving, fixed]), torch.cat([fixed, moving]))
        return split_symmetric(both, moving.shape[0])
