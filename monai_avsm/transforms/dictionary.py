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
  trains on both directions;
- :class:`WarpByMapd`: warp items (images, labels) with a predicted map, e.g. as an engine's ``postprocessing`` to
  get the warped moving label for the Dice metric of validation.

Intensity perturbations (bias field, gamma, noise) are MONAI's ``RandBiasFieldd``, ``RandAdjustContrastd`` and
``RandGaussianNoised``; nothing is re-implemented here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.transforms import MapTransform, RandomizableTransform

from monai_avsm.functional.maps import warp_image, warp_label
from monai_avsm.transforms.array import RandSyntheticDeformation, image_spacing
from monai_avsm.utils.enums import LabelWarpMode

__all__ = [
    "RandSyntheticDeformationd",
    "RandSyntheticDeformationD",
    "RandSyntheticDeformationDict",
    "RandSwapPaird",
    "RandSwapPairD",
    "RandSwapPairDict",
    "WarpByMapd",
    "WarpByMapD",
    "WarpByMapDict",
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


class WarpByMapd(MapTransform):
    """Warp ``keys`` with a pull-back map: ``d[key + postfix] = d[key] o phi`` (``MapSpace.NORMALIZED``).

    ``phi`` is ``d[map_key]``; when that is a dict (an ``AVSMNet`` prediction, e.g. ``"pred"`` in a MONAI engine's
    output) its ``map_entry`` item is used. Labels (integer dtype, or ``label_keys``) are warped with
    :func:`~monai_avsm.functional.warp_label` (``label_mode``), the rest linearly. Works on batched ``(B, C, *S)``
    and on single ``(C, *S)`` items. Used as the evaluator's ``postprocessing`` (``decollate=False``: MONAI merges the
    batch and the output, so ``moving_label`` and ``pred`` are both visible).

    Example (bundle config)::

        "postprocessing": {"_target_": "monai_avsm.transforms.WarpByMapd", "keys": "moving_label"}
    """

    def __init__(
        self,
        keys,
        map_key: str = "pred",
        map_entry: str = "map",
        postfix: str = "_warped",
        label_keys: Sequence[str] | None = None,
        label_mode: LabelWarpMode | str = LabelWarpMode.NEAREST,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.map_key, self.map_entry, self.postfix = map_key, map_entry, postfix
        self.label_keys = set(label_keys) if label_keys is not None else None
        self.label_mode = label_mode

    def _phi(self, d: Mapping) -> torch.Tensor:
        if self.map_key not in d:
            raise KeyError(f"WarpByMapd: no {self.map_key!r} in the data; keys: {sorted(map(str, d))}.")
        phi = d[self.map_key]
        if isinstance(phi, Mapping):
            if self.map_entry not in phi:
                raise KeyError(f"WarpByMapd: {self.map_key!r} has no {self.map_entry!r}; keys: {sorted(phi)}.")
            phi = phi[self.map_entry]
        return phi

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        phi = self._phi(d)
        for key in self.key_iterator(d):
            x = d[key]
            batched = x.ndim == phi.ndim
            xb = x if batched else x.unsqueeze(0)
            pb = phi if phi.ndim == xb.ndim else phi.unsqueeze(0)
            is_label = (key in self.label_keys) if self.label_keys is not None else not x.is_floating_point()
            xb = xb.to(pb.device)
            out = warp_label(xb, pb, mode=self.label_mode) if is_label else warp_image(xb.to(pb.dtype), pb)
            d[f"{key}{self.postfix}"] = out if batched else out[0]
        return d


RandSyntheticDeformationD = RandSyntheticDeformationDict = RandSyntheticDeformationd
RandSwapPairD = RandSwapPairDict = RandSwapPaird
WarpByMapD = WarpByMapDict = WarpByMapd
