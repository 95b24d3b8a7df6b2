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
"""Dictionary transforms for registration pairs (MONAI ``...d`` convention).

- :class:`RandSyntheticDeformationd`: one image (and its label) -> a longitudinal-like pair with a known map;
- :class:`RandSwapPaird`: swap moving and fixed (and their labels and true maps) with a probability, as the paper
  trains on both directions.

Intensity perturbations (bias field, gamma, noise) are MONAI's ``RandBiasFieldd``, ``RandAdjustContrastd`` and
``RandGaussianNoised``; nothing is re-implemented here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.transforms import MapTransform, RandomizableTransform

from monai_avsm.transforms.array import RandSyntheticDeformation, image_spacing

__all__ = [
    "RandSyntheticDeformationd",
    "RandSyntheticDeformationD",
    "RandSyntheticDeformationDict",
    "RandSwapPaird",
    "RandSwapPairD",
    "RandSwapPairDict",
]


class RandSyntheticDeformationd(RandomizableTransform, MapTransform):
    r"""Make a registration pair with a known answer from one image: ``fixed = moving o phi``.

    Reads ``image_key`` (and ``label_key`` if given) and writes ``moving_key`` (the image), ``fixed_key`` (the image
    deformed by :math:`\phi`), ``moving_label_key``/``fixed_label_key`` (nearest neighbour), ``map_key`` (the true
    pull-back map :math:`\phi`, ``(D, *S)``, ``MapSpace.NORMALIZED``: registering moving to fixed should recover it)
    and ``inverse_map_key`` (:math:`\phi^{-1}`). One random draw for the image and its label. The magnitudes are in
    millimetres (see :class:`~monai_avsm.transforms.array.RandSyntheticDeformation`).

    Example::

        >>> t = RandSyntheticDeformationd(image_key="image", label_key="label", displacement_mm=4.0)
        >>> t.set_random_state(seed=0)
        >>> pair = t({"image": img, "label": lbl})
        >>> sorted(pair)
        ['fixed', 'fixed_label', 'image', 'label', 'moving', 'moving_label', 'true_inverse_map', 'true_map']
    """

    def __init__(
        self,
        image_key: str = "image",
        label_key: str | None = "label",
        rotation_deg: float = 5.0,
        scale: float = 0.05,
        translation_mm: float = 5.0,
        displacement_mm: float = 4.0,
        smoothness: float = 0.15,
        control_factor: int = 4,
        time_steps: int = 10,
        prob: float = 1.0,
        moving_key: str = "moving",
        fixed_key: str = "fixed",
        moving_label_key: str = "moving_label",
        fixed_label_key: str = "fixed_label",
        map_key: str = "true_map",
        inverse_map_key: str = "true_inverse_map",
        spacing: Sequence[float] | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        keys = [image_key] + ([label_key] if label_key else [])
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.image_key, self.label_key = image_key, label_key
        self.out_keys = (moving_key, fixed_key, moving_label_key, fixed_label_key, map_key, inverse_map_key)
        self.spacing = spacing
        self.rand = RandSyntheticDeformation(
            rotation_deg, scale, translation_mm, displacement_mm, smoothness, control_factor, time_steps, prob=1.0
        )

    def set_random_state(self, seed=None, state=None) -> RandSyntheticDeformationd:
        super().set_random_state(seed, state)
        self.rand.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        if self.image_key not in d:
            raise KeyError(
                f"RandSyntheticDeformationd: the input has no key {self.image_key!r}; keys: {sorted(map(str, d))}."
            )
        img = d[self.image_key]
        ndim = len(img.shape) - 1
        if ndim not in (2, 3):
            raise ValueError(
                f"RandSyntheticDeformationd: {self.image_key!r} must be a channel-first 2D or 3D image, got shape "
                f"{tuple(img.shape)}."
            )
        self.randomize(None)
        spacing = image_spacing(img, self.spacing, ndim, "RandSyntheticDeformationd")
        self.rand.draw(tuple(img.shape[1:]), spacing, active=self._do_transform)
        moving_key, fixed_key, moving_label_key, fixed_label_key, map_key, inverse_map_key = self.out_keys
        d[moving_key] = img
        d[fixed_key] = self.rand(img, mode="bilinear", randomize=False)
        phi, phi_inv = self.rand.deformation.maps(img.shape[1:])
        d[map_key], d[inverse_map_key] = phi.float(), phi_inv.float()
        if self.label_key is not None and self.label_key in d:
            label = d[self.label_key]
            if tuple(label.shape[1:]) != tuple(img.shape[1:]):
                raise ValueError(
                    f"RandSyntheticDeformationd: {self.label_key!r} {tuple(label.shape)} and {self.image_key!r} "
                    f"{tuple(img.shape)} must have the same spatial shape."
                )
            d[moving_label_key] = label
            d[fixed_label_key] = self.rand(label, mode="nearest", randomize=False)
        elif self.label_key is not None and not self.allow_missing_keys:
            raise KeyError(f"RandSyntheticDeformationd: the input has no key {self.label_key!r}.")
        return d


class RandSwapPaird(RandomizableTransform, MapTransform):
    """Swap the moving and fixed images (and labels, and true map / inverse map when present) with probability
    ``prob``, so that a data set of pairs is seen in both directions (the paper trains on swapped pairs).

    Args:
        pairs: key pairs to swap; default ``(("moving", "fixed"), ("moving_label", "fixed_label"),
            ("true_map", "true_inverse_map"))``. Pairs whose keys are absent are skipped.
        prob: swap probability (default 0.5).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]] = (
            ("moving", "fixed"),
            ("moving_label", "fixed_label"),
            ("true_map", "true_inverse_map"),
        ),
        prob: float = 0.5,
    ) -> None:
        pairs = tuple((str(a), str(b)) for a, b in pairs)
        MapTransform.__init__(self, [k for p in pairs for k in p], allow_missing_keys=True)
        RandomizableTransform.__init__(self, prob)
        self.pairs = pairs

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for a, b in self.pairs:
            if a in d and b in d:
                d[a], d[b] = d[b], d[a]
            elif (a in d) != (b in d):
                raise KeyError(f"RandSwapPaird: only one of {a!r} and {b!r} is present; cannot swap them.")
        return d


RandSyntheticDeformationD = RandSyntheticDeformationDict = RandSyntheticDeformationd
RandSwapPairD = RandSwapPairDict = RandSwapPaird
