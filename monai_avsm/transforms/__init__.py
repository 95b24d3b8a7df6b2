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
"""Transforms of monai_avsm: synthetic deformations with a known map, and pair handling (MONAI conventions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monai_avsm.utils.lazy import lazy_exports

if TYPE_CHECKING:  # where each name of __all__ is defined: read by type checkers, IDEs and lazy_exports
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
    from .synthesis import RandIntensityCorruption, RandLabelIntensity, gaussian_mixture_image
    from .synthesis_dictionary import (
        RandLabelMapPairD,
        RandLabelMapPaird,
        RandLabelMapPairDict,
        RandSynthIntensityD,
        RandSynthIntensityd,
        RandSynthIntensityDict,
    )


__all__ = [
    "SUPPORTED_FORMATS",
    "CheckPaird",
    "LoadPairImaged",
    "SpacingEachd",
    "StoreGeometryd",
    "RandIntensityCorruption",
    "RandLabelIntensity",
    "RandLabelMapPairD",
    "RandLabelMapPairDict",
    "RandLabelMapPaird",
    "RandSynthIntensityD",
    "RandSynthIntensityDict",
    "RandSynthIntensityd",
    "gaussian_mixture_image",
    "RandSwapPairD",
    "RandSwapPairDict",
    "RandSwapPaird",
    "RandSyntheticDeformation",
    "RandSyntheticDeformationD",
    "RandSyntheticDeformationDict",
    "RandSyntheticDeformationd",
    "SyntheticDeformation",
    "WarpByMapD",
    "WarpByMapDict",
    "WarpByMapd",
]
__getattr__, __dir__ = lazy_exports(__name__, __all__)
