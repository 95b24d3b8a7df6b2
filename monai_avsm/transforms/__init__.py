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
"""Transforms of monai_avsm: synthetic deformations with a known map, pair handling, and the synthetic training-pair
generator from label maps (MONAI conventions)."""

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
    from .synthesis import RandIntensityCorruption, RandLabelIntensity, gaussian_mixture_image
    from .synthesis_dictionary import (
        RandLabelMapPairD,
        RandLabelMapPaird,
        RandLabelMapPairDict,
        RandSynthIntensityD,
        RandSynthIntensityd,
        RandSynthIntensityDict,
    )

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
    "RandIntensityCorruption": ".synthesis",
    "RandLabelIntensity": ".synthesis",
    "gaussian_mixture_image": ".synthesis",
    "RandLabelMapPairD": ".synthesis_dictionary",
    "RandLabelMapPaird": ".synthesis_dictionary",
    "RandLabelMapPairDict": ".synthesis_dictionary",
    "RandSynthIntensityD": ".synthesis_dictionary",
    "RandSynthIntensityd": ".synthesis_dictionary",
    "RandSynthIntensityDict": ".synthesis_dictionary",
}
_SUBMODULES = ("array", "dictionary", "functional", "synthesis", "synthesis_dictionary")
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBMODULES)

__all__ = [
    "RandIntensityCorruption",
    "RandLabelIntensity",
    "RandLabelMapPairD",
    "RandLabelMapPairDict",
    "RandLabelMapPaird",
    "RandSwapPairD",
    "RandSwapPairDict",
    "RandSwapPaird",
    "RandSyntheticDeformation",
    "RandSyntheticDeformationD",
    "RandSyntheticDeformationDict",
    "RandSyntheticDeformationd",
    "RandSynthIntensityD",
    "RandSynthIntensityDict",
    "RandSynthIntensityd",
    "SyntheticDeformation",
    "WarpByMapD",
    "WarpByMapDict",
    "WarpByMapd",
    "gaussian_mixture_image",
]
