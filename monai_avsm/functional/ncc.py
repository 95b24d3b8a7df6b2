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
r"""Global normalized cross-correlation over the whole image (not squared), the similarity of the authors' affine
warm-up (easyreg ``NCCLoss``); :class:`~monai_avsm.losses.GlobalNCCLoss` is :math:`1 - \mathrm{NCC}`."""

from __future__ import annotations

import torch

from monai_avsm.utils.validation import check_binary_mask, check_image_pair

__all__ = ["global_ncc"]


def global_ncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    smooth_nr: float = 0.0,
    smooth_dr: float = 1e-5,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Global (not squared) NCC per sample and channel.

    .. math:: \mathrm{NCC} = \frac{\overline{(I - \bar I)(T - \bar T)} + \epsilon_{nr}}
        {\sqrt{\overline{(I-\bar I)^2}\; \overline{(T-\bar T)^2}} + \epsilon_{dr}}

    with means over the spatial axes; the authors' ``NCCLoss`` (affine warm-up) has the same form with
    :math:`\epsilon_{dr} = 10^{-7}`. Statistics in float32 (float64 for float64 inputs); the product under the square
    root is clamped at the smallest normal number, so constant images give finite values and gradients.

    Args:
        pred: ``(B, C, *S)``.
        target: ``(B, C, *S)``.
        mask: ``None`` or a binary mask on the grid of ``target``, ``(B, 1, *S)`` or ``(1, 1, *S)``: every mean runs
            over the masked voxels only (a project extension; values outside the mask never enter).

    Returns:
        ``(B, C)``.
    """
    check_image_pair(pred, target, "global_ncc")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)  # float32 or float64
    m = None if mask is None else check_binary_mask(mask, target, "mask", "global_ncc").flatten(2)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        x = pred.to(dtype).flatten(2)
        y = target.to(dtype).flatten(2)
        if m is None:
            x = x - x.mean(dim=2, keepdim=True)
            y = y - y.mean(dim=2, keepdim=True)
            cov = (x * y).mean(dim=2)
            var = (x * x).mean(dim=2) * (y * y).mean(dim=2)
        else:
            zero = torch.zeros((), dtype=dtype, device=pred.device)
            count = m.sum(dim=2, dtype=dtype)  # (B|1, 1), >= 1
            x = torch.where(m, x, zero)
            y = torch.where(m, y, zero)
            x = torch.where(m, x - (x.sum(dim=2) / count).unsqueeze(2), zero)
            y = torch.where(m, y - (y.sum(dim=2) / count).unsqueeze(2), zero)
            cov = (x * y).sum(dim=2) / count
            var = ((x * x).sum(dim=2) / count) * ((y * y).sum(dim=2) / count)
        return (cov + smooth_nr) / (var.clamp_min(torch.finfo(dtype).tiny).sqrt() + smooth_dr)
