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
"""Stop a training run cleanly after a wall-time budget (a sitting of a training that spans several)."""

from __future__ import annotations

import logging
import math
import time

from ignite.engine import Engine, Events

__all__ = ["TimeLimitHandler"]

_LOGGER = logging.getLogger("monai_avsm")


class TimeLimitHandler:
    """Terminate the engine at the end of the first iteration after ``max_seconds`` of training (ignite's
    ``TimeLimit`` as a MONAI handler with ``attach``; the clock starts when the run starts, not when it is built).

    ``engine.terminate()`` ends the run as a finished one: ignite fires ``COMPLETED``, so a ``CheckpointSaver`` with
    ``save_final=True`` writes the final model, and the epoch checkpoints let the next sitting resume.

    Args:
        max_seconds: the budget in seconds; ``None`` or ``0``: no limit (the handler does nothing).

    Example (bundle config)::

        {"_target_": "monai_avsm.handlers.TimeLimitHandler", "max_seconds": "@max_train_seconds"}
    """

    def __init__(self, max_seconds: float | None = None) -> None:
        if max_seconds is not None and not (math.isfinite(float(max_seconds)) and float(max_seconds) >= 0):
            raise ValueError(f"TimeLimitHandler: 'max_seconds' must be a number >= 0 or None, got {max_seconds!r}.")
        self.max_seconds = None if not max_seconds else float(max_seconds)
        self.start: float | None = None
        self.stopped = False

    def attach(self, engine: Engine) -> None:
        if self.max_seconds is None:
            return
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _start(self, engine: Engine) -> None:
        self.start = time.perf_counter()

    def __call__(self, engine: Engine) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        elapsed = time.perf_counter() - self.start
        if elapsed >= self.max_seconds and not self.stopped:
            self.stopped = True
            _LOGGER.info(
                f"TimeLimitHandler: {elapsed:.0f} s >= {self.max_seconds:.0f} s at epoch {engine.state.epoch}, "
                f"iteration {engine.state.iteration}: stopping (a re-run resumes from the checkpoints)"
            )
            engine.terminate()
