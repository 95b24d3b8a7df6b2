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
r"""The two AVSM training stages in one run (method spec §5, paper §3): the affine stage (eq. 6) for the first
``vsvf_start_epoch`` epochs, then the vSVF stage (eq. 11-12) with the affine network frozen.

One network (one checkpoint, one optimizer) serves both stages: :class:`TrainingStageHandler` sets, at the start of
every epoch, ``network.vsvf_enabled``, ``network.freeze_affine(...)`` and ``loss.stage`` from the epoch number alone,
so a run resumed from any checkpoint is in the right stage. ``vsvf_start_epoch=0`` trains only the vSVF stage (from
a pretrained affine net), ``vsvf_start_epoch >= max_epochs`` only the affine stage.

:class:`StopOnNaNLoss` stops training before a non-finite loss reaches the weights (at ``LOSS_COMPLETED``, before
the backward pass and the optimizer step), so the model and every checkpoint stay finite.
"""

from __future__ import annotations

import logging
import math

from monai.engines.utils import IterationEvents

from monai_avsm.handlers._ignite import Engine, Events

__all__ = ["TrainingStageHandler", "StopOnNaNLoss", "NonFiniteLossError"]


class TrainingStageHandler:
    """Switch an :class:`~monai_avsm.networks.nets.AVSMNet` and its :class:`~monai_avsm.losses.AVSMLoss` between the
    affine and the vSVF training stage by epoch.

    Args:
        network: the ``AVSMNet`` (or a ``DistributedDataParallel`` wrapping it).
        loss: the ``AVSMLoss``.
        vsvf_start_epoch: first (0-based) epoch of the vSVF stage.
        name: logger name; stage changes are logged at INFO level.
    """

    def __init__(self, network: object, loss: object, vsvf_start_epoch: int, name: str | None = None) -> None:
        net = getattr(network, "module", network)
        for attr in ("vsvf_enabled", "freeze_affine", "vsvf_net"):
            if not hasattr(net, attr):
                raise TypeError(f"TrainingStageHandler: 'network' must be an AVSMNet, got {type(net).__name__}.")
        if not hasattr(loss, "stage"):
            raise TypeError(f"TrainingStageHandler: 'loss' must be an AVSMLoss, got {type(loss).__name__}.")
        if int(vsvf_start_epoch) < 0:
            raise ValueError(f"TrainingStageHandler: 'vsvf_start_epoch' must be >= 0, got {vsvf_start_epoch}.")
        self.network, self.loss, self.vsvf_start_epoch = net, loss, int(vsvf_start_epoch)
        self.logger = logging.getLogger(name or __name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def stage_at(self, epoch: int) -> str:
        """``"affine"`` or ``"vsvf"`` for the 0-based ``epoch``."""
        return "vsvf" if epoch >= self.vsvf_start_epoch else "affine"

    def apply(self, stage: str) -> None:
        vsvf = stage == "vsvf"
        if vsvf and self.network.vsvf_net is None:
            raise ValueError("TrainingStageHandler: the vSVF stage needs an AVSMNet with a 'vsvf_net'.")
        self.network.vsvf_enabled = vsvf
        self.network.freeze_affine(vsvf)
        self.loss.stage = stage

    def __call__(self, engine: Engine) -> None:
        stage = self.stage_at(engine.state.epoch - 1)
        changed = stage != self.loss.stage or self.network.vsvf_enabled != (stage == "vsvf")
        self.apply(stage)
        if changed or engine.state.epoch == 1:
            self.logger.info(
                f"epoch {engine.state.epoch}: {stage} stage"
                + (
                    " (affine network frozen)"
                    if stage == "vsvf"
                    else f" (vSVF stage from epoch {self.vsvf_start_epoch + 1})"
                )
            )


class NonFiniteLossError(FloatingPointError):
    """Raised by :class:`StopOnNaNLoss`."""


class StopOnNaNLoss:
    """Stop training with a clear error when the loss is NaN or infinite, before the backward pass and the
    optimizer step (``IterationEvents.LOSS_COMPLETED``), so the weights and the last checkpoint stay good.

    Args:
        loss: optional loss object with a ``parts`` dict (``AVSMLoss``) whose named terms are put in the message.
        checkpoint_dir: where the last good checkpoint is, named in the message (re-running resumes from it).
    """

    def __init__(self, loss: object | None = None, checkpoint_dir: str | None = None) -> None:
        self.loss, self.checkpoint_dir = loss, checkpoint_dir

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        value = engine.state.output["loss"]
        value = float(value.detach()) if hasattr(value, "detach") else float(value)
        if math.isfinite(value):
            return
        parts = getattr(self.loss, "parts", None) or {}
        detail = ", ".join(f"{k}={v:.4g}" for k, v in parts.items())
        where = f" The last good checkpoint is in {self.checkpoint_dir!r};" if self.checkpoint_dir else ""
        raise NonFiniteLossError(
            f"StopOnNaNLoss: the training loss is {value} at epoch {engine.state.epoch}, iteration "
            f"{engine.state.iteration}" + (f" (terms: {detail})" if detail else "") + "; training stopped before "
            f"the update, the weights are unchanged.{where} lower the learning rate (--learning_rate) or the "
            "regularisation weights, check the inputs for NaNs, and re-run the same command to resume."
        )
