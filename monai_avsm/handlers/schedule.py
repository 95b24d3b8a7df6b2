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
r"""Ignite handlers that apply epoch schedules (method spec §5: "such schedules belong in configuration, not code"):

- :class:`LossWeightScheduleHandler`: a loss weight from a function of the epoch, e.g. the epoch-dependent affine
  regularisation factor :math:`\lambda_{ar}` of paper eq. (13);
- :class:`EpochScheduleHandler`: any attribute set from a piecewise-constant table ``{first_epoch: value}``, e.g. the
  authors' warm-up with global NCC before mk-LNCC, the epoch the symmetric loss starts, or the number of affine
  steps (single step first, then multi-step).

Both act at ``EPOCH_STARTED`` and depend only on the epoch number, so a run resumed from a checkpoint continues with
the values of its epoch.

Written after MONAI's ``LrScheduleHandler`` (``attach`` / ``__call__``, optional ignite import).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from monai_avsm.handlers._ignite import Engine, Events
from monai_avsm.losses.affine import AffineRegularizationWeight

__all__ = ["LossWeightScheduleHandler", "EpochScheduleHandler"]


class LossWeightScheduleHandler:
    r"""At the start of every epoch set ``setattr(loss, attribute, schedule(epoch - 1 - start_epoch))``.

    Args:
        loss: the object holding the weight, e.g. :class:`~monai_avsm.losses.AVSMLoss`.
        schedule: a callable of the (0-based) epoch; default :class:`~monai_avsm.losses.AffineRegularizationWeight`
            (paper eq. 13: :math:`\lambda_{ar}(n) = C_{ar} K_{ar} / (K_{ar} + e^{n / K_{ar}})`, 8 at epoch 0).
        attribute: the weight's attribute name (default ``"affine_reg_weight"``).
        start_epoch: epochs before this one count as ``n = 0`` (restart the schedule at a training stage switch, as
            the authors' code does when the multi-step affine training starts).
        name: logger name; the new value is logged at INFO level.

    Example (bundle config)::

        {"_target_": "monai_avsm.handlers.LossWeightScheduleHandler", "loss": "@loss"}
    """

    def __init__(
        self,
        loss: object,
        schedule: Callable[[int], float] | None = None,
        attribute: str = "affine_reg_weight",
        start_epoch: int = 0,
        name: str | None = None,
    ) -> None:
        if not hasattr(loss, attribute):
            raise AttributeError(
                f"LossWeightScheduleHandler: {type(loss).__name__} has no attribute {attribute!r} to schedule."
            )
        self.loss = loss
        self.schedule = schedule if schedule is not None else AffineRegularizationWeight()
        self.attribute = attribute
        self.start_epoch = int(start_epoch)
        self.logger = logging.getLogger(name or __name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def value_at(self, epoch: int) -> float:
        """The weight for the 1-based ignite ``epoch``."""
        return float(self.schedule(max(epoch - 1 - self.start_epoch, 0)))

    def __call__(self, engine: Engine) -> None:
        value = self.value_at(engine.state.epoch)
        setattr(self.loss, self.attribute, value)
        self.logger.info(f"epoch {engine.state.epoch}: {type(self.loss).__name__}.{self.attribute} = {value:.6g}")


class EpochScheduleHandler:
    """At the start of every epoch set ``setattr(target, attribute, value)`` from a piecewise-constant schedule.

    Args:
        target: the object to change (a loss, a network, a sub-network).
        attribute: the attribute name; nested names are allowed (``"affine_net.num_steps"``).
        schedule: ``{first_epoch: value}`` with 0-based epochs; the value of the largest ``first_epoch <= epoch``
            applies (epochs before the smallest key keep the attribute unchanged). String keys are accepted (JSON).
        name: logger name; each change is logged at INFO level.

    Example (bundle config: NCC for the first 5 epochs, then mk-LNCC)::

        {"_target_": "monai_avsm.handlers.EpochScheduleHandler", "target": "@loss", "attribute": "similarity",
         "schedule": {"0": "@ncc_loss", "5": "@mklncc_loss"}}
    """

    def __init__(self, target: object, attribute: str, schedule: dict, name: str | None = None) -> None:
        if not isinstance(schedule, dict) or not schedule:
            raise ValueError(
                f"EpochScheduleHandler: 'schedule' must be a non-empty dict {{first_epoch: value}}, got {schedule!r}."
            )
        try:
            table = sorted((int(k), v) for k, v in schedule.items())
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"EpochScheduleHandler: the keys of 'schedule' must be epochs (integers), got {list(schedule)}."
            ) from e
        if table[0][0] < 0:
            raise ValueError(f"EpochScheduleHandler: epochs in 'schedule' must be >= 0, got {table[0][0]}.")
        *path, last = attribute.split(".")
        obj = target
        for part in path:
            obj = getattr(obj, part)
        if not hasattr(obj, last):
            raise AttributeError(f"EpochScheduleHandler: {type(obj).__name__} has no attribute {last!r} to schedule.")
        self.target, self.attribute, self.table = target, attribute, table
        self._owner, self._name = obj, last
        self._logged = False  # the first value applied is always logged (the run's starting setting)
        self.logger = logging.getLogger(name or __name__)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def value_at(self, epoch: int):
        """The scheduled value for the 0-based ``epoch`` (``None`` before the first entry: no change)."""
        value = None
        for first, v in self.table:
            if epoch >= first:
                value = (v,)
        return value

    def __call__(self, engine: Engine) -> None:
        value = self.value_at(engine.state.epoch - 1)
        if value is None:
            return
        old = getattr(self._owner, self._name)
        if old is not value[0] or not self._logged:
            setattr(self._owner, self._name, value[0])
            shown = type(value[0]).__name__ if hasattr(value[0], "forward") else repr(value[0])
            self.logger.info(f"epoch {engine.state.epoch}: {self.attribute} = {shown}")
            self._logged = True
