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
"""Transforms of monai_avsm: synthetic deformations with a known map, pair handling, and reading and checking a pair
(MONAI conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and IDEs; at run time they are imported on first use
    from .array import RandSyntheticDeformation, SyntheticDeformation
    from .dictionary import (
        RandSwapPairD,
        RandSwapPaird,
        RandSwapPairDict,
        RandSyntheticDeformationD,
        RandSyntheticDeformationd,
        RandSyntheticDeformationDict,
        WarpByMapD,
        WarpByMapd,
        WarpByMapDict,
    )
    from .pair_io import SUPPORTED_FORMATS, CheckPaird, LoadPairImaged, SpacingEachd, StoreGeometryd

_EXPORTS = {
    "RandSyntheticDeformation": ".array",
    "SyntheticDeformation": ".array",
    "RandSwapPairD": ".dictionary",
    "RandSwapPaird": ".dictionary",
    "RandSwapPairDict": ".dictionary",
    "RandSyntheticDeformationD": ".dictionary",
    "RandSyntheticDeformationd": ".dictionary",
    "RandSyntheticDeformationDict": ".dictionary",
    "WarpByMapD": ".dictionary",
    "WarpByMapd": ".dictionary",
    "WarpByMapDict": ".dictionary",
    "SUPPORTED_FORMATS": ".pair_io",
    "CheckPaird": ".pair_io",
    "LoadPairImaged": ".pair_io",
    "SpacingEachd": ".pair_io",
    "StoreGeometryd": ".pair_io",
}
_SUBMODULES = ("array", "dictionary", "functional", "pair_io")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "SUPPORTED_FORMATS",
    "CheckPaird",
    "LoadPairImaged",
    "RandSwapPairD",
    "RandSwapPairDict",
    "RandSwapPaird",
    "RandSyntheticDeformation",
    "RandSyntheticDeformationD",
    "RandSyntheticDeformationDict",
    "RandSyntheticDeformationd",
    "SpacingEachd",
    "StoreGeometryd",
    "SyntheticDeformation",
    "WarpByMapD",
    "WarpByMapDict",
    "WarpByMapd",
]
