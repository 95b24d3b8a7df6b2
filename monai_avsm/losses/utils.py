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
"""Argument checks, the batch reduction and the masked form of a similarity, shared by the losses of
:mod:`monai_avsm.losses` and the optimisations."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import torch

from monai_avsm.utils.enums import LossReduction
from monai_avsm.utils.options import look_up_option

__all__ = ["parse_reduction", "reduce_loss", "check_weight", "check_smooth", "accepts_mask", "masked_similarity"]


def parse_reduction(
    reduction: LossReduction | str, caller: str, allowed: Sequence[str] = ("none", "mean", "sum")
) -> str:
    """``reduction`` as one of ``allowed`` (``look_up_option``), or a ``ValueError`` naming the argument."""
    value = getattr(reduction, "value", reduction)
    try:
        return str(look_up_option(value, tuple(allowed)))
    except ValueError as e:
        hint = " ".join(str(e).split())
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{caller}: 'reduction' must be one of {options}, got {reduction!r}. {hint}") from e


def reduce_loss(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce per-sample loss values ``(B,)``: ``"mean"`` / ``"sum"`` over the batch, ``"none"`` keeps ``(B,)``."""
    if reduction == LossReduction.MEAN.value:
        return values.mean()
    if reduction == LossReduction.SUM.value:
        return values.sum()
    return values


def check_weight(value: float, name: str, caller: str) -> float:
    """A loss weight: a finite number >= 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{caller}: '{name}' must be a finite number >= 0, got {value!r}.")
    return float(value)


def check_smooth(smooth_nr: float, smooth_dr: float, caller: str) -> tuple[float, float]:
    """The numerator and denominator smoothing terms of an NCC: both >= 0."""
    smooth_nr, smooth_dr = float(smooth_nr), float(smooth_dr)
    if smooth_nr < 0 or smooth_dr < 0:
        raise ValueError(f"{caller}: 'smooth_nr' and 'smooth_dr' must be >= 0, got {smooth_nr} and {smooth_dr}.")
    return smooth_nr, smooth_dr


def accepts_mask(similarity: Callable) -> bool:
    """Whether ``similarity`` (a module or a function) takes a ``mask`` keyword (or ``**kwargs``); ``True`` when its
    signature cannot be read (the call then decides)."""
    fn = similarity.forward if isinstance(similarity, torch.nn.Module) else similarity
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        (p.name == "mask" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) or p.kind == p.VAR_KEYWORD
        for p in params
    )


def masked_similarity(similarity: Callable, mask: torch.Tensor | None, caller: str, name: str = "mask") -> Callable:
    """``similarity`` itself when ``mask`` is ``None``, else ``(pred, target) -> similarity(pred, target, mask=mask)``.

    Raises:
        TypeError: a mask is given but ``similarity`` has no ``mask`` keyword (e.g. MONAI's
            ``GlobalMutualInformationLoss``), naming its class.
    """
    if mask is None:
        return similarity
    if not accepts_mask(similarity):
        if isinstance(similarity, torch.nn.Module):
            label = type(similarity).__name__
        else:
            label = getattr(similarity, "__qualname__", type(similarity).__name__)
        raise TypeError(
            f"{caller}: '{name}' was given but the similarity {label} does not accept a 'mask' keyword; use a "
            f"similarity with a 'mask' keyword (e.g. MKLNCCLoss, GlobalNCCLoss) or pass no mask."
        )

    def call(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return similarity(pred, target, mask=mask)

    return call
