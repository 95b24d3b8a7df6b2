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
"""Tell a data set which epoch it is, so that a generated data set draws new items every epoch."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["DatasetEpochHandler"]


class DatasetEpochHandler:
    """Call ``dataset.set_epoch(engine.state.epoch)`` when every epoch starts (e.g.
    :class:`~monai_avsm.data.synthetic_pairs.SyntheticPairDataset`, whose item ``i`` of epoch ``e`` is seeded from
    ``(seed, e, i)``: new pairs each epoch, the same pairs when a resumed run replays an epoch).

    Args:
        dataset: any object with ``set_epoch(int)``.

    Example (bundle config)::

        {"_target_": "monai_avsm.handlers.DatasetEpochHandler", "dataset": "@train#dataset"}
    """

    def __init__(self, dataset) -> None:
        if not callable(getattr(dataset, "set_epoch", None)):
            raise TypeError(f"DatasetEpochHandler: 'dataset' must have a set_epoch(epoch) method, got {type(dataset)}.")
        self.dataset = dataset

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        self.dataset.set_epoch(int(engine.state.epoch))
