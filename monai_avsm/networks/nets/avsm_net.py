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
r"""AVSMNet: the end-to-end AVSM registration network, multi-step affine then multi-step vSVF (paper §2, Fig. 1).

The affine map initialises the vSVF advection (the two are composed through the initial condition, never by
resampling an image twice); the source is interpolated once, from the original, with the final map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import look_up_option
from torch import nn

from monai_avsm.functional.maps import map_to_ddf
from monai_avsm.networks.nets.affine_net import MultiStepAffineNet
from monai_avsm.networks.nets.vsvf_net import VSVFNet

__all__ = ["AVSMNet"]


class AVSMNet(nn.Module):
    r"""Joint affine + vSVF registration: :math:`I_0 \circ \Phi^{-1}` with
    :math:`\Phi^{-1} = \Phi^{-1}_{(T)}(1)` integrated from the affine map :math:`\Phi^{-1}_a` (paper §2).

    Args:
        affine_net: the :class:`MultiStepAffineNet` (default: built for ``spatial_dims`` with its defaults).
        vsvf_net: the :class:`VSVFNet`; ``None`` for an affine-only network (the first training stage).
        spatial_dims: used only to build default sub-networks.
        output: ``"dict"`` (default) or ``"warped"``: return only the warped source, for MONAI's
            ``verify_net_in_out``, ``ckpt_export`` and ``torch.jit.trace``.
        symmetric_training: run the symmetric forward (both directions) whenever the network is in training mode and
            ``symmetric`` is not given, so that a stock ``SupervisedTrainer`` feeds :class:`~monai_avsm.losses.AVSMLoss`
            the target->source terms.

    Attributes:
        vsvf_enabled: run the vSVF net (default ``True``); ``False`` gives the affine-only output even when a vSVF net
            exists, so one network (one checkpoint) serves both training stages
            (:class:`~monai_avsm.handlers.TrainingStageHandler` switches it).

    ``forward(moving, fixed=None, spacing=None, symmetric=None)``: ``moving``/``fixed`` ``(B, C, *S)`` on one grid,
    or ``moving`` ``(B, 2C, *S)`` holding (moving, fixed) along channels and ``fixed=None``. Returns a dict with

    - ``"warped"`` ``(B, C, *S)``: the source warped once by the final map;
    - ``"map"`` ``(B, D, *S)``: the final pull-back map (``MapSpace.NORMALIZED``); ``"ddf"``: the same as a MONAI
      voxel-unit DDF (``monai.networks.blocks.Warp`` convention);
    - ``"affine"`` ``(B, D, D + 1)`` (``theta = [A | b]``), ``"affine_steps"``, ``"affine_map"``, ``"affine_warped"``;
    - with a vSVF net, the per-step lists ``"momenta"``, ``"velocities"``, ``"maps"``, ``"warped_steps"``;
    - with ``symmetric=True``, every key again with the suffix ``"_ts"`` for target -> source;
    - ``"moving"``, ``"fixed"``: the inputs (references, no copy).
    """

    def __init__(
        self,
        affine_net: MultiStepAffineNet | None = None,
        vsvf_net: VSVFNet | None = None,
        spatial_dims: int = 3,
        output: str = "dict",
        symmetric_training: bool = False,
    ) -> None:
        super().__init__()
        self.affine_net = affine_net if affine_net is not None else MultiStepAffineNet(spatial_dims)
        self.vsvf_net = vsvf_net
        self.spatial_dims = self.affine_net.spatial_dims
        if vsvf_net is not None and vsvf_net.spatial_dims != self.spatial_dims:
            raise ValueError(
                f"AVSMNet: 'affine_net' and 'vsvf_net' must have the same spatial_dims, got {self.spatial_dims} and "
                f"{vsvf_net.spatial_dims}."
            )
        self.output = look_up_option(output, ("dict", "warped"))
        self.symmetric_training = bool(symmetric_training)
        self._affine_frozen = False
        self.vsvf_enabled = True

    @property
    def affine_frozen(self) -> bool:
        return self._affine_frozen

    def freeze_affine(self, freeze: bool = True) -> AVSMNet:
        """Freeze (or unfreeze) the affine network for the vSVF training stage: no gradients, eval mode."""
        self._affine_frozen = bool(freeze)
        for p in self.affine_net.parameters():
            p.requires_grad_(not freeze)
        self.affine_net.train(self.training and not freeze)
        return self

    def train(self, mode: bool = True) -> AVSMNet:
        super().train(mode)
        if self._affine_frozen:
            self.affine_net.eval()
        return self

    def forward(
        self,
        moving: torch.Tensor,
        fixed: torch.Tensor | None = None,
        spacing: Sequence[float] | torch.Tensor | None = None,
        symmetric: bool | None = None,
    ):
        if symmetric is None:
            symmetric = self.training and self.symmetric_training
        if fixed is None:
            if not isinstance(moving, torch.Tensor) or moving.ndim < 3 or moving.shape[1] % 2:
                shape = tuple(moving.shape) if isinstance(moving, torch.Tensor) else type(moving).__name__
                raise ValueError(
                    f"AVSMNet: with 'fixed' omitted, the input must hold (moving, fixed) along an even number of "
                    f"channels, got shape {shape}."
                )
            half = moving.shape[1] // 2
            moving, fixed = moving[:, :half], moving[:, half:]
        if self._affine_frozen:
            with torch.no_grad():
                aff = self.affine_net(moving, fixed, symmetric=symmetric)
        else:
            aff = self.affine_net(moving, fixed, symmetric=symmetric)
        suffixes = ("", "_ts") if symmetric else ("",)
        out: dict = {}
        for s in suffixes:
            out[f"affine{s}"] = aff[f"affine{s}"]
            out[f"affine_steps{s}"] = aff[f"affine_steps{s}"]
            out[f"affine_map{s}"] = aff[f"map{s}"]
            out[f"affine_warped{s}"] = aff[f"warped{s}"]
        if self.vsvf_net is None or not self.vsvf_enabled:
            for s in suffixes:
                out[f"map{s}"], out[f"warped{s}"] = aff[f"map{s}"], aff[f"warped{s}"]
        else:
            initial = torch.cat([aff["map"], aff["map_ts"]]) if symmetric else aff["map"]
            v = self.vsvf_net(moving, fixed, initial_map=initial, spacing=spacing, symmetric=symmetric)
            out.update(v)
        for s in suffixes:
            out[f"ddf{s}"] = map_to_ddf(out[f"map{s}"])
        out["moving"], out["fixed"] = moving, fixed  # the inputs, so that losses and metrics need only the dict
        if self.output == "warped":
            return out["warped"]
        return out
