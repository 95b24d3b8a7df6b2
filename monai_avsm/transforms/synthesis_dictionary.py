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
r"""Dictionary transforms of the synthetic training-pair generator (SynthMorph-style, Hoffmann et al., IEEE TMI
2022): one label map in, a registration pair out.

.. code-block:: python

    from monai.transforms import Compose
    from monai_avsm.transforms import RandLabelMapPaird, RandSynthIntensityd

    make_pair = Compose([RandLabelMapPaird(), RandSynthIntensityd()])
    make_pair.set_random_state(seed=0)                   # same seed -> the same pair, byte for byte
    pair = make_pair({"label": source["label"], "image": source["image"], "tissue_lut": source["tissue_lut"]})

- :class:`RandLabelMapPaird` (spatial): two images of one label map :math:`L`, each under its own large random
  affine and multi-scale smooth diffeomorphism (:class:`~monai_avsm.transforms.array.RandSyntheticDeformation`):
  ``"cross"`` pairs (cross-subject-like) are two independent draws, :math:`L \circ \phi_1` and
  :math:`L \circ \phi_2`; ``"longitudinal"`` pairs are :math:`M = L \circ \phi_1` and
  :math:`F = M \circ \phi = L \circ (\phi_1 \circ \phi)` for a drawn :math:`\phi`, written as the true map (the
  convention of :class:`~monai_avsm.transforms.RandSyntheticDeformationd`). Labels are warped once, by nearest
  neighbour, a real image linearly.
- :class:`RandSynthIntensityd` (intensity): images from the warped labels by a random Gaussian mixture (shared by
  the two images by default: the similarity, mk-LNCC, expects one contrast), or with probability ``real_prob`` the
  real template intensities, then a random bias field, gamma, blur or lower resolution and noise, and the 0.1/99.9
  percentile scaling to [0, 1] (:mod:`monai_avsm.transforms.synthesis`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_avsm.functional.maps import compose_maps, warp_image, warp_label
from monai_avsm.transforms.array import RandSyntheticDeformation, image_spacing
from monai_avsm.transforms.synthesis import (
    RandIntensityCorruption,
    RandLabelIntensity,
    SharedRandomState,
    _like,
    _plain,
    check_label,
    check_probability,
)

__all__ = [
    "PAIR_KINDS",
    "RandLabelMapPaird",
    "RandLabelMapPairD",
    "RandLabelMapPairDict",
    "RandSynthIntensityd",
    "RandSynthIntensityD",
    "RandSynthIntensityDict",
]

PAIR_KINDS = ("cross", "longitudinal")


def _require(d: Mapping, key: str, caller: str):
    if key not in d:
        raise KeyError(f"{caller}: the input has no key {key!r}; keys: {sorted(map(str, d))}.")
    return d[key]


class RandLabelMapPaird(SharedRandomState, MapTransform):
    r"""A registration pair of deformed copies of one label map (SynthMorph's spatial model), with a known map for
    longitudinal-like pairs.

    Each image is the label map under a random affine (rotation about a random axis up to ``rotation_deg``, scaling
    up to ``scale``, shear up to ``shear``, shift up to ``translation_mm`` per axis) and the unit-time flow of a
    multi-scale stationary velocity (one field per entry of ``smoothness``, largest displacement uniform in
    ``[0, displacement_mm]``), integrated by RK4, so a diffeomorphism (det J > 0); see
    :class:`~monai_avsm.transforms.array.RandSyntheticDeformation`. With probability ``longitudinal_prob`` the pair is
    longitudinal-like:

    .. math:: M = L \circ \phi_1, \qquad F = M \circ \phi = L \circ (\phi_1 \circ \phi),

    with :math:`\phi` a third draw (same ranges), written under ``map_key`` (``(D, *S)`` float32 pull-back map,
    ``MapSpace.NORMALIZED``: registering moving to fixed should recover it) and :math:`\phi^{-1}` under
    ``inverse_map_key`` (so ``RandSwapPaird`` swaps them with the images). Otherwise the pair is cross-subject-like:
    :math:`M = L \circ \phi_1`, :math:`F = L \circ \phi_2`. The labels are warped once, by nearest neighbour
    (:func:`~monai_avsm.functional.warp_label`), through the composed map; a real image (``image_key``, if present)
    linearly (zero outside the field of view).

    Args:
        label_key: the label map ``(1, *S)``, integers ``0..K-1`` (a ``MetaTensor``: its affine gives the spacing).
        image_key: optional real intensities on the same grid; warped into ``moving_key``/``fixed_key`` when present.
        lut_key: optional ``(K,)`` look-up table (e.g. each label's tissue class); when present,
            ``moving_tissue_key``/``fixed_tissue_key`` get ``lut[label]``.
        rotation_deg, rotation_axis, scale, shear, translation_mm, displacement_mm, smoothness, control_factor,
            time_steps, random_displacement: the spatial ranges, see ``RandSyntheticDeformation`` (all ``>= 0``;
            zero ranges give the identity). The velocity grid is 5x coarser than the image (about 10 mm at the
            2 mm working grid; at 96x112x96 its fields have fewer elements than torch's parallel grain, so the RK4
            steps run without thread synchronisation, 3x faster on a busy 2-core machine than a 4x coarser grid).
        longitudinal_prob: probability of a longitudinal pair.
        cross_map: also write the true map of cross pairs, :math:`\phi_1^{-1} \circ \phi_2` (and its inverse), at the
            cost of two inverse maps; off by default.
        map_placeholder: for pairs without a map write zero-filled maps and ``has_map_key`` = False, so that every
            item has the same keys and shapes (MONAI's ``DataLoader`` collates them: ``has_true_map`` ``(B,)`` bool
            says which rows hold a real map); with False the map keys are absent there.
        spacing: voxel spacing (default: from the label's ``MetaTensor`` affine, else 1 mm).
        pose_rotation_deg, pose_scale, pose_translation_mm: a *shared* random pose :math:`P` of the pair (rotation
            about a random axis, scaling, shift; default 0: none), applied to the label map before both images'
            own draws, :math:`M = L \circ P \circ \phi_1`, :math:`F = L \circ P \circ \phi_2` (longitudinal:
            :math:`F = M \circ \phi` as above). For a model that works after the initial alignment
            (``prealignment`` in inference.json): the pair lies in any scanner pose (large ``pose_*``) while the
            two images are only a residual apart (small per-image ranges), as after the alignment. One
            interpolation of the labels as without a pose.

    Output keys (defaults): ``moving``/``fixed`` (with a real image only), ``moving_label``/``fixed_label``
    (``(1, *S)``, the label's dtype and meta data), ``moving_tissue``/``fixed_tissue`` (with a look-up table),
    ``true_map``/``true_inverse_map`` (``(D, *S)`` float32), ``has_true_map`` (0-d bool tensor), ``pair_kind``
    (``"cross"`` or ``"longitudinal"``). The last draws are :attr:`deformations` (``RandSyntheticDeformation``'s
    ``SyntheticDeformation`` objects, ``[phi_1, phi_2 or phi]``, then the pose ``P`` when drawn).
    """

    def __init__(
        self,
        label_key: str = "label",
        image_key: str | None = "image",
        lut_key: str | None = "tissue_lut",
        rotation_deg: float = 30.0,
        rotation_axis: str = "random",
        scale: float = 0.15,
        shear: float = 0.1,
        translation_mm: float = 30.0,
        displacement_mm: float = 10.0,
        smoothness: float | Sequence[float] = (0.05, 0.1, 0.2),
        control_factor: int = 5,
        time_steps: int = 8,
        random_displacement: bool = True,
        longitudinal_prob: float = 0.5,
        cross_map: bool = False,
        map_placeholder: bool = True,
        moving_key: str = "moving",
        fixed_key: str = "fixed",
        moving_label_key: str = "moving_label",
        fixed_label_key: str = "fixed_label",
        moving_tissue_key: str = "moving_tissue",
        fixed_tissue_key: str = "fixed_tissue",
        map_key: str = "true_map",
        inverse_map_key: str | None = "true_inverse_map",
        has_map_key: str = "has_true_map",
        kind_key: str = "pair_kind",
        spacing: Sequence[float] | None = None,
        pose_rotation_deg: float = 0.0,
        pose_scale: float = 0.0,
        pose_translation_mm: float = 0.0,
    ) -> None:
        MapTransform.__init__(self, [label_key], allow_missing_keys=False)
        caller = "RandLabelMapPaird"
        self.pose = None
        if pose_rotation_deg or pose_scale or pose_translation_mm:
            self.pose = RandSyntheticDeformation(
                rotation_deg=pose_rotation_deg,
                scale=pose_scale,
                translation_mm=pose_translation_mm,
                displacement_mm=0.0,
                shear=0.0,
                rotation_axis="random",
                dtype=torch.float32,
            )
        self.longitudinal_prob = check_probability(longitudinal_prob, "longitudinal_prob", caller)
        self.spatial = RandSyntheticDeformation(
            rotation_deg=rotation_deg,
            scale=scale,
            translation_mm=translation_mm,
            displacement_mm=displacement_mm,
            smoothness=smoothness,
            control_factor=control_factor,
            time_steps=time_steps,
            shear=shear,
            rotation_axis=rotation_axis,
            random_displacement=random_displacement,
            dtype=torch.float32,
        )
        self.label_key, self.image_key, self.lut_key = label_key, image_key, lut_key
        self.moving_key, self.fixed_key = moving_key, fixed_key
        self.moving_label_key, self.fixed_label_key = moving_label_key, fixed_label_key
        self.moving_tissue_key, self.fixed_tissue_key = moving_tissue_key, fixed_tissue_key
        self.map_key, self.inverse_map_key, self.has_map_key, self.kind_key = (
            map_key,
            inverse_map_key,
            has_map_key,
            kind_key,
        )
        self.cross_map, self.map_placeholder = bool(cross_map), bool(map_placeholder)
        if self.cross_map and self.pose is not None:
            raise ValueError(f"{caller}: 'cross_map' is not available with a shared pose ('pose_*' > 0).")
        self.spacing = spacing
        self.deformations: list = []
        self._share_random_state()

    def _children(self) -> tuple:
        return (self.spatial,) if self.pose is None else (self.spatial, self.pose)

    def randomize(self, data=None) -> None:
        """Draw the pair's kind (the deformations are drawn in ``__call__``, they need the grid)."""
        self.kind = PAIR_KINDS[1] if self.R.uniform() < self.longitudinal_prob else PAIR_KINDS[0]

    def _draw(self, shape, spacing):
        self.spatial.draw(shape, spacing, active=True)
        return self.spatial.deformation

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        caller = "RandLabelMapPaird"
        d = dict(data)
        label = _require(d, self.label_key, caller)
        ndim = check_label(label, self.label_key, caller)
        shape = tuple(int(s) for s in label.shape[1:])
        spacing = image_spacing(label, self.spacing, ndim, caller)
        image = d.get(self.image_key) if self.image_key else None
        if image is not None and tuple(image.shape[1:]) != shape:
            raise ValueError(
                f"{caller}: {self.image_key!r} {tuple(image.shape)} and {self.label_key!r} {tuple(label.shape)} must "
                "have the same spatial shape."
            )
        self.randomize()
        first = self._draw(shape, spacing)
        second = self._draw(shape, spacing)
        self.deformations = [first, second]
        phi_1 = first.map(shape).to(torch.float32)
        pose_map = None
        if self.pose is not None:
            self.pose.draw(shape, spacing, active=True)
            self.deformations.append(self.pose.deformation)
            pose_map = self.pose.deformation.map(shape).to(torch.float32)
            phi_1 = compose_maps(pose_map[None], phi_1[None])[0]  # M = L o P o phi_1
        true_map = true_inv = None
        if self.kind == "longitudinal":
            phi, phi_inv = second.maps(shape)
            true_map, true_inv = phi.to(torch.float32), phi_inv.to(torch.float32)
            phi_2 = compose_maps(phi_1[None], true_map[None])[0]  # F = L o (phi_1 o phi)
        else:
            phi_2 = second.map(shape).to(torch.float32)
            if pose_map is not None:
                phi_2 = compose_maps(pose_map[None], phi_2[None])[0]  # F = L o P o phi_2
            if self.cross_map:  # F = M o (phi_1^-1 o phi_2), M = F o (phi_2^-1 o phi_1)
                inv_1, inv_2 = first.maps(shape)[1].to(torch.float32), second.maps(shape)[1].to(torch.float32)
                true_map = compose_maps(inv_1[None], phi_2[None])[0]
                true_inv = compose_maps(inv_2[None], phi_1[None])[0]
        lab = _plain(label).unsqueeze(0)
        moving_label = warp_label(lab, phi_1[None])[0]
        fixed_label = warp_label(lab, phi_2[None])[0]
        d[self.moving_label_key], d[self.fixed_label_key] = _like(moving_label, label), _like(fixed_label, label)
        if self.lut_key and self.lut_key in d:
            lut = torch.as_tensor(_plain(d[self.lut_key])).long().reshape(-1)
            k = int(lab.max()) + 1 if lab.numel() else 0
            if lut.numel() < k:
                raise ValueError(
                    f"{caller}: {self.lut_key!r} has {lut.numel()} entries but {self.label_key!r} has labels up to "
                    f"{k - 1}."
                )
            d[self.moving_tissue_key] = _like(lut[moving_label.long()].to(label.dtype), label)
            d[self.fixed_tissue_key] = _like(lut[fixed_label.long()].to(label.dtype), label)
        if image is not None:
            img = _plain(image).to(torch.float32).unsqueeze(0)
            d[self.moving_key] = _like(warp_image(img, phi_1[None])[0], image)
            d[self.fixed_key] = _like(warp_image(img, phi_2[None])[0], image)
        has_map = true_map is not None
        if not has_map and self.map_placeholder:
            true_map = torch.zeros((ndim, *shape), dtype=torch.float32)
            true_inv = torch.zeros_like(true_map)
        if true_map is not None:
            d[self.map_key] = true_map
            if self.inverse_map_key:
                d[self.inverse_map_key] = true_inv
            d[self.has_map_key] = torch.tensor(has_map)
        d[self.kind_key] = self.kind
        return d


class RandSynthIntensityd(SharedRandomState, MapTransform):
    r"""Images for a pair of label maps: a random Gaussian mixture per label (or the real intensities), then random
    scanner effects and the 0.1/99.9 percentile scaling to [0, 1].

    With probability ``real_prob``, when the input has real images under ``moving_key`` and ``fixed_key`` (as
    :class:`RandLabelMapPaird` writes them for template sources), those are kept; otherwise each label :math:`k`
    gets :math:`\mu_k \sim U(\text{mean\_range})`, :math:`\sigma_k \sim U(\text{std\_range})` and the image is
    :math:`\mu_{L(x)} + \sigma_{L(x)} n(x)` (:class:`~monai_avsm.transforms.synthesis.RandLabelIntensity`). With
    ``same_contrast`` (default) the two images share the mixture (one contrast, as mk-LNCC expects; each has its
    own noise), else each draws its own. Each image then gets its own corruption
    (:class:`~monai_avsm.transforms.synthesis.RandIntensityCorruption`: MONAI's ``RandBiasField``,
    ``RandAdjustContrast``, ``RandGaussianSmooth`` or ``RandSimulateLowResolution``, ``RandGaussianNoise`` or
    ``RandRicianNoise``, then :func:`~monai_avsm.data.working_grid.percentile_scale`).

    Args:
        real_prob: probability of the real intensities (when present).
        same_contrast: one Gaussian mixture for both images.
        mean_range, std_range, zero_background_prob: the mixture (``RandLabelIntensity``).
        bias_prob ... percentiles: the corruption (``RandIntensityCorruption``).
        intensity_key: where ``"synthetic"`` or ``"real"`` is written (``None``: not written).

    Writes ``moving_key``/``fixed_key``: ``(1, *S)`` float32 in [0, 1] with the labels' meta data.
    """

    def __init__(
        self,
        moving_label_key: str = "moving_label",
        fixed_label_key: str = "fixed_label",
        moving_key: str = "moving",
        fixed_key: str = "fixed",
        real_prob: float = 0.2,
        same_contrast: bool = True,
        mean_range: Sequence[float] = (0.0, 1.0),
        std_range: Sequence[float] = (0.0, 0.1),
        zero_background_prob: float = 0.5,
        bias_prob: float = 0.5,
        bias_coeff: float = 0.2,
        bias_degree: int = 3,
        gamma_prob: float = 0.5,
        gamma: Sequence[float] = (0.7, 1.5),
        blur_prob: float = 0.3,
        blur_sigma: Sequence[float] = (0.25, 1.0),
        lowres_prob: float = 0.2,
        lowres_zoom: Sequence[float] = (0.5, 1.0),
        noise_prob: float = 0.8,
        noise_std: float = 0.05,
        noise_type: str = "gaussian",
        percentiles: Sequence[float] = (0.1, 99.9),
        intensity_key: str | None = "intensity",
    ) -> None:
        MapTransform.__init__(self, [moving_label_key, fixed_label_key], allow_missing_keys=False)
        self.real_prob = check_probability(real_prob, "real_prob", "RandSynthIntensityd")
        self.same_contrast = bool(same_contrast)
        self.mixture = RandLabelIntensity(mean_range, std_range, zero_background_prob)
        self.corruption = RandIntensityCorruption(
            bias_prob,
            bias_coeff,
            bias_degree,
            gamma_prob,
            gamma,
            blur_prob,
            blur_sigma,
            lowres_prob,
            lowres_zoom,
            noise_prob,
            noise_std,
            noise_type,
            percentiles,
        )
        self.moving_label_key, self.fixed_label_key = moving_label_key, fixed_label_key
        self.moving_key, self.fixed_key, self.intensity_key = moving_key, fixed_key, intensity_key
        self._share_random_state()

    def _children(self) -> tuple:
        return (self.mixture, self.corruption)

    def randomize(self, data=None) -> None:
        """Draw whether the real intensities are used (one draw always, so that replays do not depend on the input)."""
        self._real_draw = self.R.uniform()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        caller = "RandSynthIntensityd"
        d = dict(data)
        labels = [_require(d, k, caller) for k in (self.moving_label_key, self.fixed_label_key)]
        for key, lab in zip((self.moving_label_key, self.fixed_label_key), labels):
            check_label(lab, key, caller)
        if labels[0].shape != labels[1].shape:
            raise ValueError(
                f"{caller}: {self.moving_label_key!r} {tuple(labels[0].shape)} and {self.fixed_label_key!r} "
                f"{tuple(labels[1].shape)} must have the same shape."
            )
        self.randomize()
        real = self.moving_key in d and self.fixed_key in d and self._real_draw < self.real_prob
        if real:
            images = [d[self.moving_key], d[self.fixed_key]]
        else:
            k = max(int(lab.max()) for lab in labels) + 1
            self.mixture.randomize(k)
            first = self.mixture(labels[0], randomize=False)
            if not self.same_contrast:
                self.mixture.randomize(k)
            images = [first, self.mixture(labels[1], randomize=False)]
        moving, fixed = (self.corruption(img) for img in images)
        d[self.moving_key] = _meta_of(moving, labels[0])
        d[self.fixed_key] = _meta_of(fixed, labels[1])
        if self.intensity_key:
            d[self.intensity_key] = "real" if real else "synthetic"
        return d


def _meta_of(img, label):
    """``img`` with the label's meta data (the same grid), as a ``MetaTensor`` when the label is one."""
    return MetaTensor(_plain(img), meta=dict(label.meta)) if isinstance(label, MetaTensor) else _plain(img)


RandLabelMapPairD = RandLabelMapPairDict = RandLabelMapPaird
RandSynthIntensityD = RandSynthIntensityDict = RandSynthIntensityd
