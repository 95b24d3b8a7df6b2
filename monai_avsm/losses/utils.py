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
"""Argument checks and the batch reduction shared by every loss in :mod:`monai_avsm.losses`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_avsm.utils.enums import LossReduction
from monai_avsm.utils.options import look_up_option

__all__ = ["parse_reduction", "reduce_loss", "check_weight", "check_smooth"]


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
