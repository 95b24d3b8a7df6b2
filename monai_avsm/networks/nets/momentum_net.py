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
r"""The momentum generation network of AVSM: a residual U-Net with its last decoder level removed
(paper §2.2 and supplementary; method spec §3; the authors' ``MomentumGen_resid``).

(warped source, target) at full resolution -> signed vector momentum :math:`m_0` at half resolution.

Deviations from the authors' code (``docs/deviations.md``): the last convolution is zero-initialised, so an
untrained network outputs zero momentum (the identity deformation); inputs of any size are accepted: they are
zero-padded at the end of each axis to a multiple of 16 and the output is cropped to ``ceil(S / 2)``.
MONAI's ``UNet``/``BasicUNet`` return full-resolution outputs and have no residual pairs of this layout, so the
layers are assembled here from MONAI's layer factories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv
from torch import nn

from monai_avsm.utils.validation import check_spatial_tensor

__all__ = ["MomentumUNet"]


class _ConvAct(nn.Module):
    """Convolution (kernel 3, 'same' padding) followed by an optional activation."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int, stride: int = 1, act: str | None = "relu") -> None:
        super().__init__()
        self.conv = Conv["conv", spatial_dims](c_in, c_out, kernel_size=3, stride=stride, padding=1)
        self.act: nn.Module
        if act == "relu":
            self.act = nn.ReLU(inplace=True)
        elif act == "leaky":
            self.act = nn.LeakyReLU(0.01, inplace=True)
        else:
            self.act = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class _UpAct(nn.Module):
    """Transposed convolution (kernel 2, stride 2) followed by LeakyReLU."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = Conv["convtrans", spatial_dims](c_in, c_out, kernel_size=2, stride=2)
        self.act = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class MomentumUNet(nn.Module):
    r"""Residual 4-level U-Net whose output is a signed momentum at half resolution.

    Encoder (``+`` a residual addition; ReLU): full resolution ``c0``; at 1/2 ``e2a = conv_s2``,
    ``e2b = e2a + conv(e2a)``, ``e2c = e2a + conv(e2b)``; at 1/4 and 1/8 ``a = conv_s2``, ``b = a + conv(a)``,
    ``c = b + conv(b)``; at 1/16 ``a = conv_s2``, ``b = a + conv(a)``. Decoder (LeakyReLU): at 1/8, 1/4 and 1/2
    ``u = upconv``, ``v = conv(cat(skip, u))``, ``w = v + conv(v)``, except that the 1/2 level has no residual and
    no activation: ``out = conv(conv(cat(e2c, u)))``. No normalisation layers; no full-resolution decoder level.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (2: warped source and target).
        channels: encoder channels at 1, 1/2, 1/4, 1/8, 1/16 resolution (paper: 16, 32, 64, 128, 256).
        decoder_channels: decoder channels at 1/8, 1/4, 1/2 (authors: 128, 32, 16).
        out_channels: momentum channels (default ``spatial_dims``).

    ``forward(x)``: ``(B, in_channels, *S)`` -> ``(B, out_channels, *ceil(S / 2))``.
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        in_channels: int = 2,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        decoder_channels: Sequence[int] = (128, 32, 16),
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"MomentumUNet: 'spatial_dims' must be 2 or 3, got {spatial_dims}.")
        if len(channels) != 5 or len(decoder_channels) != 3:
            raise ValueError(
                f"MomentumUNet: 'channels' needs 5 entries and 'decoder_channels' 3, got {tuple(channels)} and "
                f"{tuple(decoder_channels)}."
            )
        d = spatial_dims
        c0, c2, c4, c8, c16 = channels
        u8, u4, u2 = decoder_channels
        self.spatial_dims = d
        self.in_channels = in_channels
        self.out_channels = out_channels or d
        self.c1 = _ConvAct(d, in_channels, c0)
        self.e2a, self.e2b, self.e2c = _ConvAct(d, c0, c2, 2), _ConvAct(d, c2, c2), _ConvAct(d, c2, c2)
        self.e4a, self.e4b, self.e4c = _ConvAct(d, c2, c4, 2), _ConvAct(d, c4, c4), _ConvAct(d, c4, c4)
        self.e8a, self.e8b, self.e8c = _ConvAct(d, c4, c8, 2), _ConvAct(d, c8, c8), _ConvAct(d, c8, c8)
        self.e16a, self.e16b = _ConvAct(d, c8, c16, 2), _ConvAct(d, c16, c16)
        self.up8, self.d8b, self.d8c = (
            _UpAct(d, c16, u8),
            _ConvAct(d, c8 + u8, u8, act="leaky"),
            _ConvAct(d, u8, u8, act="leaky"),
        )
        self.up4, self.d4b, self.d4c = (
            _UpAct(d, u8, c4),
            _ConvAct(d, c4 + c4, u4, act="leaky"),
            _ConvAct(d, u4, u4, act="leaky"),
        )
        self.up2 = _UpAct(d, u4, c2)
        self.d2b = _ConvAct(d, c2 + c2, u2, act=None)
        self.out = _ConvAct(d, u2, self.out_channels, act=None)
        for module in self.modules():  # He initialisation (see AffineNet); zero output layer: zero momentum
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(module.weight, a=0.01, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.out.conv.weight)
        if spatial_dims == 3:  # channels-last 3D convolutions are about 1.5x faster on CPU (oneDNN) and on cuDNN
            self.to(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ndim = check_spatial_tensor(x, "x", "MomentumUNet", channels=self.in_channels)
        if ndim != self.spatial_dims:
            raise ValueError(f"MomentumUNet: expected {self.spatial_dims} spatial dims, got input {tuple(x.shape)}.")
        shape = tuple(x.shape[2:])
        padded = tuple(16 * math.ceil(s / 16) for s in shape)
        if padded != shape:
            pad: list[int] = []
            for s, p in zip(reversed(shape), reversed(padded)):
                pad += [0, p - s]
            x = F.pad(x, pad)
        if self.spatial_dims == 3:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        e1 = self.c1(x)
        e2a = self.e2a(e1)
        e2c = e2a + self.e2c(e2a + self.e2b(e2a))
        e4a = self.e4a(e2c)
        e4b = e4a + self.e4b(e4a)
        e4c = e4b + self.e4c(e4b)
        e8a = self.e8a(e4c)
        e8b = e8a + self.e8b(e8a)
        e8c = e8b + self.e8c(e8b)
        e16a = self.e16a(e8c)
        e16b = e16a + self.e16b(e16a)
        u8 = self.d8b(torch.cat([e8c, self.up8(e16b)], dim=1))
        u8 = u8 + self.d8c(u8)
        u4 = self.d4b(torch.cat([e4c, self.up4(u8)], dim=1))
        u4 = u4 + self.d4c(u4)
        u2 = self.d2b(torch.cat([e2c, self.up2(u4)], dim=1))
        m = self.out(u2)
        half = tuple(math.ceil(s / 2) for s in shape)
        return m[(slice(None), slice(None)) + tuple(slice(0, h) for h in half)].contiguous()
