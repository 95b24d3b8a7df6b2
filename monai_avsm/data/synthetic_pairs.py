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
"""A data set of synthetic registration pairs drawn from label maps (SynthMorph-style training data).

.. code-block:: python

    from monai.data import DataLoader
    from monai_avsm.data.synthetic_pairs import SyntheticPairDataset

    dataset = SyntheticPairDataset(num_pairs=50, seed=0)        # the label maps of monai_avsm.data.label_maps
    loader = DataLoader(dataset, batch_size=1, num_workers=2)   # each item is generated on the fly
    dataset.set_epoch(1)                                        # other pairs in the next epoch

Item ``i`` of epoch ``e`` is generated from ``numpy.random.SeedSequence([seed, e, i])``: the source (label map) is
chosen and the transform seeded from it, so a given seed, epoch and index always give the same pair, whichever worker
draws it, and different indices (hence workers) draw different streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

__all__ = ["SyntheticPairDataset"]

#: the source entries handed to the transform (and removed from the item it returns)
_INPUT_KEYS = ("label", "image", "tissue_lut")


def default_pair_transform():
    """``Compose([RandLabelMapPaird(), RandSynthIntensityd()])`` with the default ranges."""
    from monai.transforms import Compose

    from monai_avsm.transforms.synthesis_dictionary import RandLabelMapPaird, RandSynthIntensityd

    return Compose([RandLabelMapPaird(), RandSynthIntensityd()])


class SyntheticPairDataset(Dataset):
    """``num_pairs`` synthetic registration pairs, each generated when it is read (a map-style torch ``Dataset``).

    Args:
        sources: label-map sources (dicts with ``"name"``, ``"label"`` and optionally ``"image"``,
            ``"tissue_lut"``, as :func:`~monai_avsm.data.label_maps.label_map_sources` returns); default: all of
            them, built with ``label_map_kwargs``.
        num_pairs: the length of an epoch.
        transform: a randomizable callable that turns ``{"label", "image"?, "tissue_lut"?}`` into a pair; default
            :func:`default_pair_transform`. It is seeded per item (``set_random_state(seed=...)``).
        seed: the data set's seed.
        source_weights: probability of each source (default: equal); normalised.
        label_map_kwargs: arguments of ``label_map_sources`` when ``sources`` is not given (e.g. ``spacing``,
            ``shape``, ``names``).

    Each item is the transform's output without the source entries, plus ``"source"`` (the source's name): with the
    defaults ``moving``/``fixed`` ``(1, X, Y, Z)`` float32 in [0, 1], ``moving_label``/``fixed_label`` and
    ``moving_tissue``/``fixed_tissue`` ``(1, X, Y, Z)`` int64, ``true_map``/``true_inverse_map`` ``(3, X, Y, Z)``
    float32 (zeros for cross pairs), ``has_true_map`` bool, ``pair_kind`` and ``intensity`` strings; MONAI's and
    torch's ``DataLoader`` collate them.

    Raises:
        ValueError: a held-out template among the sources, no sources, bad ``num_pairs`` or ``source_weights``.
    """

    def __init__(
        self,
        sources: Sequence[Mapping[str, Any]] | None = None,
        num_pairs: int = 1000,
        transform: Callable | None = None,
        seed: int = 0,
        source_weights: Sequence[float] | None = None,
        label_map_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        from monai_avsm.data.label_maps import HELD_OUT_SOURCES, label_map_sources

        caller = "SyntheticPairDataset"
        if sources is None:
            sources = label_map_sources(**dict(label_map_kwargs or {}))
        sources = list(sources)
        if not sources:
            raise ValueError(f"{caller}: 'sources' is empty.")
        for i, src in enumerate(sources):
            if not isinstance(src, Mapping) or "label" not in src:
                raise ValueError(f"{caller}: source {i} must be a dict with a 'label' entry, got {type(src).__name__}.")
            if src.get("name") in HELD_OUT_SOURCES:
                raise ValueError(
                    f"{caller}: source {src.get('name')!r} is a held-out template (the evaluation set "
                    f"{list(HELD_OUT_SOURCES)}); it must never be used for training."
                )
        if int(num_pairs) != num_pairs or num_pairs < 1:
            raise ValueError(f"{caller}: 'num_pairs' must be a positive integer, got {num_pairs!r}.")
        if source_weights is None:
            weights = np.full(len(sources), 1.0 / len(sources))
        else:
            weights = np.asarray(source_weights, dtype=np.float64)
            if weights.shape != (len(sources),) or not np.all(weights >= 0) or not weights.sum() > 0:
                raise ValueError(
                    f"{caller}: 'source_weights' must be {len(sources)} non-negative numbers, not all 0, got "
                    f"{list(source_weights)}."
                )
            weights = weights / weights.sum()
        self.sources = sources
        self.names = [str(s.get("name", f"source_{i}")) for i, s in enumerate(sources)]
        self.num_pairs, self.seed, self.weights = int(num_pairs), int(seed), weights
        self.transform = transform if transform is not None else default_pair_transform()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw other pairs from now on (e.g. from an ``Events.EPOCH_STARTED`` handler; the workers that a
        ``DataLoader`` starts for the next epoch copy the data set with it)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_pairs

    def item_seed(self, index: int) -> tuple[int, int]:
        """``(source index, transform seed)`` of item ``index`` in the current epoch."""
        seq = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        rng = np.random.default_rng(seq)
        return int(rng.choice(len(self.sources), p=self.weights)), int(rng.integers(0, 2**32 - 1))

    def __getitem__(self, index: int) -> dict:
        if not -self.num_pairs <= int(index) < self.num_pairs:
            raise IndexError(f"SyntheticPairDataset: index {index} out of range for {self.num_pairs} pairs.")
        index = int(index) % self.num_pairs
        which, seed = self.item_seed(index)
        src = self.sources[which]
        if hasattr(self.transform, "set_random_state"):
            self.transform.set_random_state(seed=seed)
        item = self.transform({k: src[k] for k in _INPUT_KEYS if k in src})
        out = {k: v for k, v in item.items() if k not in _INPUT_KEYS}
        out["source"] = self.names[which]
        return out
