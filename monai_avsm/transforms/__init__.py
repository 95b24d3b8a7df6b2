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

from monai_avsm.utils.lazy import lazy_package

if TYPE_CHECKING:  # the lazy exports (``X as X``), each from its module: read by type checkers, IDEs and lazy_package
    from .array import RandSyntheticDeformation as RandSyntheticDeformation
    from .array import SyntheticDeformation as SyntheticDeformation
    from .dictionary import RandSwapPairD as RandSwapPairD
    from .dictionary import RandSwapPaird as RandSwapPaird
    from .dictionary import RandSwapPairDict as RandSwapPairDict
    from .dictionary import RandSyntheticDeformationD as RandSyntheticDeformationD
    from .dictionary import RandSyntheticDeformationd as RandSyntheticDeformationd
    from .dictionary import RandSyntheticDeformationDict as RandSyntheticDeformationDict
    from .dictionary import WarpByMapD as WarpByMapD
    from .dictionary import WarpByMapd as WarpByMapd
    from .dictionary import WarpByMapDict as WarpByMapDict
    from .pair_io import SUPPORTED_FORMATS as SUPPORTED_FORMATS
    from .pair_io import CheckPaird as CheckPaird
    from .pair_io import LoadPairImaged as LoadPairImaged
    from .pair_io import SpacingEachd as SpacingEachd
    from .pair_io import StoreGeometryd as StoreGeometryd
    from .synthesis import RandIntensityCorruption as RandIntensityCorruption
    from .synthesis import RandLabelIntensity as RandLabelIntensity
    from .synthesis import gaussian_mixture_image as gaussian_mixture_image
    from .synthesis_dictionary import RandLabelMapPairD as RandLabelMapPairD
    from .synthesis_dictionary import RandLabelMapPaird as RandLabelMapPaird
    from .synthesis_dictionary import RandLabelMapPairDict as RandLabelMapPairDict
    from .synthesis_dictionary import RandSynthIntensityD as RandSynthIntensityD
    from .synthesis_dictionary import RandSynthIntensityd as RandSynthIntensityd
    from .synthesis_dictionary import RandSynthIntensityDict as RandSynthIntensityDict


__all__, __getattr__, __dir__ = lazy_package(__name__)
