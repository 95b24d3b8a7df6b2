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
r"""Glue between registration pairs and MONAI's stock engines (``SupervisedTrainer``/``SupervisedEvaluator``).

MONAI's default ``prepare_batch`` reads ``batch["image"]`` and ``batch["label"]``; a registration pair has
``"moving"`` and ``"fixed"``. :class:`PreparePairBatch` feeds them to the stock engines so that one iteration is

.. code-block:: python

    pred = network(moving, fixed, spacing=...)   # AVSMNet: the dict of maps, warped images, momenta
    loss = loss_function(pred, fixed)            # AVSMLoss: the stage total of eq. 6 / eq. 11-12

and ``engine.state.output`` keeps MONAI's keys (``image`` = moving, ``label`` = fixed, ``pred``, ``loss``), so every
stock handler works. :func:`latest_checkpoint` finds the checkpoint a re-run resumes from.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import MetaTensor

from monai_avsm.data.files import new_output_dir  # re-exported: configs call monai_avsm.engines.new_output_dir

__all__ = [
    "PreparePairBatch",
    "latest_checkpoint",
    "resume_checkpoint",
    "batch_spacing",
    "new_output_dir",
    "require_file",
    "label_names",
]


def batch_spacing(image: Any) -> torch.Tensor | None:
    """Voxel spacing ``(B, D)`` (mm) of a collated channel-first ``MetaTensor`` batch from its affine (the column
    norms of the voxel -> world matrix), or ``None`` for a plain tensor."""
    if not isinstance(image, MetaTensor):
        return None
    affine = torch.as_tensor(image.affine, dtype=torch.float64)
    ndim = image.ndim - 2
    if affine.ndim == 2:
        affine = affine.unsqueeze(0).expand(image.shape[0], -1, -1)
    if affine.shape[-1] != ndim + 1:
        return None
    return torch.linalg.norm(affine[:, :ndim, :ndim], dim=1)


def _plain(x: Any) -> torch.Tensor:
    return x.as_tensor() if isinstance(x, MetaTensor) else x


class PreparePairBatch:
    """``prepare_batch`` for MONAI engines: ``(moving, fixed, (fixed,), {"spacing": ...})``.

    The network is called as ``network(moving, fixed, spacing=spacing)`` and the loss as ``loss(pred, fixed)``.
    Images are passed as plain tensors (``MetaTensor.as_tensor()``): the networks do not use the meta data, and its
    tracking through every operation of the forward and backward pass cost 10-20x the compute at 48x56x48.

    Args:
        moving_key, fixed_key: the pair's keys in the batch.
        pass_spacing: pass the fixed image's voxel spacing (from its ``MetaTensor`` affine) to the network (needed
            for the isotropic-in-mm smoothing kernel on anisotropic working grids, method spec §3). Rows of one
            batch must share a spacing.
        label_keys: ``(moving_label_key, fixed_label_key)`` to pass the pair's label maps to the loss: the target
            is then ``{"fixed": fixed, "moving_label": ..., "fixed_label": ...}``, as
            :class:`~monai_avsm.losses.AVSMLoss` takes it for its label Dice term (synthetic training).
        network_kwargs: further keyword arguments of every network call.

    Example (bundle config)::

        "prepare_batch": {"_target_": "monai_avsm.engines.PreparePairBatch"}
    """

    def __init__(
        self,
        moving_key: str = "moving",
        fixed_key: str = "fixed",
        pass_spacing: bool = True,
        label_keys: Sequence[str] | None = None,
        **network_kwargs: Any,
    ) -> None:
        self.moving_key, self.fixed_key, self.pass_spacing = moving_key, fixed_key, bool(pass_spacing)
        if label_keys is not None and (isinstance(label_keys, str) or len(label_keys) != 2):
            raise ValueError(
                f"PreparePairBatch: 'label_keys' must be (moving_label_key, fixed_label_key), got {label_keys!r}."
            )
        self.label_keys = None if label_keys is None else tuple(label_keys)
        self.network_kwargs = network_kwargs

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple, dict]:
        if not isinstance(batchdata, Mapping):
            raise TypeError(f"PreparePairBatch: the batch must be a dict, got {type(batchdata).__name__}.")
        missing = [k for k in (self.moving_key, self.fixed_key, *(self.label_keys or ())) if k not in batchdata]
        if missing:
            raise KeyError(f"PreparePairBatch: the batch has no {missing}; keys: {sorted(map(str, batchdata))}.")
        extra = dict(self.network_kwargs)
        if self.pass_spacing:
            spacing = batch_spacing(batchdata[self.fixed_key])
            if spacing is not None:
                extra["spacing"] = spacing
        # plain tensors: MetaTensor's per-operation meta data tracking made a training iteration 10-20x slower
        moving, fixed = (
            _plain(batchdata[k]).to(device=device, non_blocking=non_blocking, **kwargs)
            for k in (self.moving_key, self.fixed_key)
        )
        if self.label_keys is None:
            return moving, fixed, (fixed,), extra
        ml, fl = (_plain(batchdata[k]).to(device=device, non_blocking=non_blocking) for k in self.label_keys)
        return moving, {"fixed": fixed, "moving_label": ml, "fixed_label": fl}, (fixed,), extra


_EPOCH = re.compile(r"epoch=(\d+)")


def latest_checkpoint(directory: str | os.PathLike, prefix: str = "checkpoint") -> str | None:
    """The training checkpoint with the highest epoch in ``directory`` (files ``{prefix}*epoch=N*.pt`` written by
    ``CheckpointSaver(save_interval=...)`` or its final save), or ``None`` when there is none (a fresh run).

    A re-run of ``train.json`` loads it with ``CheckpointLoader`` (model, optimizer, scheduler and trainer state, so
    the epoch counter and the stage schedule continue where they stopped).
    """
    folder = Path(directory)
    if not folder.is_dir():
        return None
    found = []
    for f in folder.glob(f"{prefix}*.pt"):
        m = _EPOCH.search(f.name)
        if m and f.stat().st_size > 0:
            found.append((int(m.group(1)), f.stat().st_mtime, str(f)))
    return max(found)[2] if found else None


def resume_checkpoint(directory: str | os.PathLike, resume: bool = True, prefix: str = "checkpoint") -> str | None:
    """The checkpoint a training run starts from: :func:`latest_checkpoint` when ``resume``, else ``None``.

    Raises:
        FileExistsError: ``resume=False`` but ``directory`` already holds training checkpoints: a fresh run there
            would mix its checkpoints with the old ones (and a later resume would pick the wrong one), so it must
            go to a new output folder.
    """
    found = latest_checkpoint(directory, prefix)
    if found is not None and not resume:
        raise FileExistsError(
            f"resume_checkpoint: {str(directory)!r} already holds training checkpoints (latest {found!r}) and "
            "resume is off: give a new --output_dir for a fresh run, or resume (the default)."
        )
    if found is not None:
        logging.getLogger(__name__).info(f"resuming training from {found}")
    return found


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """``path`` if it is a non-empty file, else ``FileNotFoundError`` naming ``what`` and the ``hint`` (for config
    ``initialize`` steps: fail at once with a clear message instead of deep inside a handler)."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        state = "is empty" if p.is_file() else "does not exist"
        raise FileNotFoundError(f"{what} {str(p)!r} {state}." + (f" {hint}" if hint else ""))
    return str(p)


def label_names(datalist: str | os.PathLike | None, num_classes: int) -> list[str] | None:
    """Names of the foreground labels 1 .. num_classes - 1 from a datalist's ``"labels"`` entry (decathlon style,
    ``{"0": "background", "1": "grey matter", ...}``), or ``None`` when there is no such entry."""
    if datalist is None or not Path(datalist).is_file():
        return None
    import json

    with open(datalist) as f:
        labels = json.load(f).get("labels")
    if not isinstance(labels, dict):
        return None
    names = [str(labels.get(str(i), f"label{i}")).replace(" ", "_") for i in range(1, int(num_classes))]
    return names


def pair_items(
    datalist: str | os.PathLike | None,
    section: str = "test",
    moving: str | None = None,
    fixed: str | None = None,
    moving_label: str | None = None,
    fixed_label: str | None = None,
) -> list[dict]:
    """The pairs an inference or evaluation run registers: one pair given on the command line (``--moving PATH
    --fixed PATH [--moving_label PATH] [--fixed_label PATH]``), else ``section`` of the datalist.

    Raises:
        ValueError: only one of ``moving``/``fixed``, or labels without the pair.
        FileNotFoundError: a given file does not exist (named), or the datalist is missing.
    """
    given = {"moving": moving, "fixed": fixed, "moving_label": moving_label, "fixed_label": fixed_label}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        from monai_avsm.data.datalist import load_pair_datalist

        if datalist is None:
            raise ValueError("pair_items: give a datalist, or one pair with --moving PATH --fixed PATH.")
        return load_pair_datalist(datalist, section=section)
    if moving is None or fixed is None:
        missing = "--fixed" if moving is not None else "--moving"
        raise ValueError(
            f"pair_items: one pair needs both --moving and --fixed; {missing} is missing (given: "
            f"{', '.join('--' + k for k in given)})."
        )
    for key, path in given.items():
        if not os.path.exists(str(path)):
            raise FileNotFoundError(f"pair_items: --{key} file {str(path)!r} does not exist.")
    return [{k: str(v) for k, v in given.items()}]
