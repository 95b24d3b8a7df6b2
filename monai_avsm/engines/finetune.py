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
r"""Fine-tuning a trained AVSM model on one's own pairs (``bundle/configs/finetune.json``, merged after
``train.json``):

- :func:`pretrained_checkpoint`: the weights a run starts from (``--pretrained_path``, default the shipped
  ``models/model.pt``), checked before the run, unless it resumes from one of its own checkpoints; ``train.json``'s
  ``checkpointing#pretrained``, MONAI's ``CheckpointLoader``, loads them into ``network_def`` when training starts;
- :func:`training_pairs` reads the training items of a user's datalist (its ``"training"`` pairs, plus the
  ``"training_images"`` self pairs when the datalist has that section);
- :func:`cosine_stage_lambda` is the learning-rate factor of ``torch.optim.lr_scheduler.LambdaLR``: a cosine decay
  over each training stage.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

from .utils import require_file

__all__ = ["pretrained_checkpoint", "training_pairs", "cosine_stage_lambda"]

_HINT = (
    "Give the trained weights with --pretrained_path PATH (a state dict of network_def such as bundle/models/model.pt "
    "or a training run's checkpoints/model.pt, or a trainer checkpoint with a 'model' entry)."
)


def pretrained_checkpoint(path: str | os.PathLike | None, resume_from: str | os.PathLike | None = None) -> str | None:
    """The weights a fine-tuning run starts from, for ``train.json``'s ``checkpointing#pretrained`` (MONAI's
    ``CheckpointLoader`` with ``load_dict={"model": network_def}``), unless the run resumes from a checkpoint.

    A fine-tuning run starts from ``path``; a re-run in the same output folder continues from its own last
    checkpoint (``resume_from``, loaded by ``checkpointing#loader``), so the weights at ``path`` are then neither
    needed nor loaded (they would be overwritten by the checkpoint anyway). ``CheckpointLoader`` reads a bare state
    dict (``models/model.pt``) as well as a trainer checkpoint with a ``"model"`` entry
    (``checkpoints/checkpoint_epoch=N.pt``), and raises when the weights do not fit the network.

    Args:
        path: the weights (``--pretrained_path``), or ``None`` for a run from scratch.
        resume_from: the checkpoint the run resumes from (``train.json``'s ``resume_checkpoint``), or ``None``.

    Returns:
        ``path`` (as a string) when the run starts from it, ``None`` when it resumes or has no weights to start from.

    Raises:
        FileNotFoundError: ``path`` does not exist or is empty (the message names the file and the option).
    """
    logger = logging.getLogger(__name__)
    if path is None:
        return None
    if resume_from is not None:
        logger.info(f"resuming fine-tuning from {str(resume_from)!r}: the pretrained weights are not loaded")
        return None
    path = require_file(path, "the pretrained model", _HINT)
    logger.info(f"fine-tuning from the weights in {path!r}")
    return path


def training_pairs(datalist: str | os.PathLike, section: str = "training") -> list[dict]:
    """The training items of a datalist: the pairs of ``section`` plus, when the datalist has a
    ``"{section}_images"`` section, each of its images paired with itself (turned into a pair with a known
    deformation by the training augmentation, as in ``train.json``).

    ``train.json`` requires both sections (the sample data has both); a user's datalist often lists only pairs.

    Args:
        datalist: the JSON datalist (``monai_avsm.data`` format; relative paths are resolved against its folder).
        section: the pair section (default ``"training"``).

    Returns:
        the items with absolute paths: the pairs first, then the self pairs.

    Raises:
        FileNotFoundError, ValueError: as :func:`monai_avsm.data.load_pair_datalist` (missing datalist, section or
            file).
    """
    from monai_avsm.data.datalist import load_pair_datalist, self_pairs

    items = load_pair_datalist(datalist, section=section)
    images = f"{section}_images"
    with open(Path(datalist)) as f:
        has_images = images in json.load(f)
    if has_images:
        items = items + self_pairs(load_pair_datalist(datalist, section=images))
    if not items:
        raise ValueError(f"training_pairs: the datalist {str(datalist)!r} has no training items in {section!r}.")
    return items


def cosine_stage_lambda(affine_epochs: int, vsvf_epochs: int, min_ratio: float = 0.1) -> Callable[[int], float]:
    """The learning-rate factor of epoch ``e`` (0-based) for ``LambdaLR``: a cosine decay from 1 to ``min_ratio``
    over each training stage, restarting at the vSVF stage (as ``train.json``'s step schedule restarts).

    Epoch ``i`` of a stage of ``n`` epochs gets ``min_ratio + (1 - min_ratio) * (1 + cos(pi * i / n)) / 2`` (1 at
    the stage's first epoch); epochs past the end get ``min_ratio``.

    Args:
        affine_epochs: epochs of the affine stage (0: the run is one vSVF stage).
        vsvf_epochs: epochs of the vSVF stage.
        min_ratio: the factor at the end of each stage (0.1: the learning rate ends at a tenth).

    Returns:
        a plain function of the epoch (``LambdaLR`` saves no state of it in the checkpoint, so a resumed run uses
        the current settings).
    """
    affine_epochs, vsvf_epochs, min_ratio = int(affine_epochs), int(vsvf_epochs), float(min_ratio)
    if affine_epochs < 0 or vsvf_epochs < 0:
        raise ValueError(f"cosine_stage_lambda: epochs must be >= 0, got {affine_epochs}, {vsvf_epochs}.")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"cosine_stage_lambda: 'min_ratio' must be in [0, 1], got {min_ratio}.")

    def factor(epoch: int) -> float:
        i, n = (epoch, affine_epochs) if epoch < affine_epochs else (epoch - affine_epochs, vsvf_epochs)
        n = max(n, 1)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(i, n) / n))

    return factor
