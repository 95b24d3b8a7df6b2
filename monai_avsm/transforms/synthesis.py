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
r"""Array transforms of the synthetic training-pair generator (SynthMorph-style: Hoffmann et al., "SynthMorph:
learning contrast-invariant registration without acquired images", IEEE TMI 2022): images synthesised from label
maps.

- :func:`gaussian_mixture_image`: the deterministic twin, :math:`I(x) = \mu_{L(x)} + \sigma_{L(x)}\, n(x)` with
  :math:`n \sim \mathcal{N}(0, 1)` per voxel;
- :class:`RandLabelIntensity`: draws the Gaussian mixture (a mean and a standard deviation per label) and applies it;
- :class:`RandIntensityCorruption`: what a scanner adds, each step a MONAI transform: a multiplicative bias field
  (``RandBiasField``), a gamma (``RandAdjustContrast``), blur (``RandGaussianSmooth``) or a lower resolution
  (``RandSimulateLowResolution``), noise (``RandGaussianNoise`` or ``RandRicianNoise``), then the project's
  0.1/99.9 percentile scaling to [0, 1] (:func:`~monai_avsm.data.working_grid.percentile_scale`, as the loading
  of real pairs does).

The spatial part (large random affine plus a multi-scale stationary-velocity diffeomorphism) is
:class:`~monai_avsm.transforms.array.RandSyntheticDeformation`; the pair is assembled by the dictionary transforms
of :mod:`monai_avsm.transforms.synthesis_dictionary`. Written for this project after reading SynthMorph's
description and the voxelmorph/neurite generator; no code was copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    RandAdjustContrast,
    RandBiasField,
    RandGaussianNoise,
    RandGaussianSmooth,
    Randomizable,
    RandRicianNoise,
    RandSimulateLowResolution,
    Transform,
)

from monai_avsm.functional.intensity import percentile_scale
from monai_avsm.utils.options import look_up_option

__all__ = ["gaussian_mixture_image", "RandLabelIntensity", "RandIntensityCorruption"]

_NOISE_TYPES = ("gaussian", "rician")


def _plain(x) -> torch.Tensor:
    return x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)


def _like(out: torch.Tensor, ref):
    """``out`` as a MetaTensor with ``ref``'s meta data (same grid) when ``ref`` is one."""
    return MetaTensor(out, meta=dict(ref.meta)) if isinstance(ref, MetaTensor) else out


class SharedRandomState(Randomizable):
    """A ``Randomizable`` whose inner transforms (:meth:`_children`) draw from its own random state :attr:`R`, so that
    one seed (:meth:`set_random_state`) replays them all. Call :meth:`_share_random_state` once the children exist."""

    def _children(self) -> tuple:
        return ()

    def _share_random_state(self) -> None:
        for t in self._children():
            t.set_random_state(state=self.R)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self._share_random_state()
        return self


def check_label(label, name: str, caller: str) -> int:
    """Check a channel-first integer label map ``(1, *S)`` (2 or 3 spatial dims, values >= 0); return its ndim."""
    if not isinstance(label, torch.Tensor):
        raise TypeError(f"{caller}: {name!r} must be a torch.Tensor label map (1, *S), got {type(label).__name__}.")
    if label.ndim not in (3, 4) or label.shape[0] != 1:
        raise ValueError(
            f"{caller}: {name!r} must be a channel-first label map (1, H, W[, D]), got shape {tuple(label.shape)}."
        )
    if label.is_floating_point() or label.is_complex():
        raise TypeError(f"{caller}: {name!r} must have an integer dtype (a label map), got {label.dtype}.")
    if label.numel() and int(label.min()) < 0:
        raise ValueError(f"{caller}: {name!r} must hold labels >= 0, got minimum {int(label.min())}.")
    return label.ndim - 1


def check_range(value: Sequence[float], name: str, caller: str, low: float = 0.0, high: float = math.inf):
    """A ``(min, max)`` pair with ``low <= min <= max <= high``, as a tuple of floats."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{caller}: {name!r} must be a (min, max) pair, got {value!r}.") from None
    if not (low <= lo <= hi <= high) or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{caller}: {name!r} must satisfy {low} <= min <= max <= {high}, got ({lo}, {hi}).")
    return lo, hi


def check_probability(value: float, name: str, caller: str) -> float:
    """A probability in [0, 1]."""
    if not (isinstance(value, (int, float)) and 0.0 <= float(value) <= 1.0):
        raise ValueError(f"{caller}: {name!r} must be a probability in [0, 1], got {value!r}.")
    return float(value)


def gaussian_mixture_image(
    label: torch.Tensor, means: torch.Tensor, stds: torch.Tensor, noise: torch.Tensor | None = None
) -> torch.Tensor:
    r"""The image of a label map under a Gaussian mixture: :math:`I(x) = \mu_{L(x)} + \sigma_{L(x)}\, n(x)`.

    Args:
        label: ``(1, *S)`` integer labels ``0..K-1``.
        means, stds: ``(K,)`` per label.
        noise: ``(1, *S)`` standard normal noise (``None``: no within-label noise, each label constant).

    Returns:
        ``(1, *S)`` float32.
    """
    lab = _plain(label).long()
    k = int(lab.max()) + 1 if lab.numel() else 0
    if means.shape[0] < k or stds.shape[0] < k:
        raise ValueError(
            f"gaussian_mixture_image: 'label' has labels up to {k - 1} but 'means'/'stds' have {means.shape[0]}/"
            f"{stds.shape[0]} entries."
        )
    out = means.to(torch.float32)[lab]
    if noise is not None:
        out = out + stds.to(torch.float32)[lab] * noise.to(torch.float32)
    return out


class RandLabelIntensity(Randomizable, Transform):
    r"""Synthesise an image from a label map with a random Gaussian mixture (SynthMorph's label-to-image model).

    :meth:`randomize` draws, for each label :math:`k`, a mean :math:`\mu_k \sim U(\text{mean\_range})` and a
    standard deviation :math:`\sigma_k \sim U(\text{std\_range})`; with probability ``zero_background_prob`` the
    background (label 0) gets :math:`\mu_0 = \sigma_0 = 0` (skull-stripped-like). ``__call__`` then returns
    :func:`gaussian_mixture_image` with fresh per-voxel noise. ``__call__(label, randomize=False)`` reuses the drawn
    mixture (a second image of the same contrast, with its own noise).

    Args:
        mean_range: range of the label means (intensity units; the result is rescaled later).
        std_range: range of the within-label standard deviations; ``(0, 0)`` makes each label constant.
        zero_background_prob: probability of a zero background.

    ``__call__(label, randomize=True)``: ``label`` ``(1, *S)`` integer -> ``(1, *S)`` float32 (a ``MetaTensor``
    with the label's meta data when the label is one). The last mixture is :attr:`means`, :attr:`stds` ``(K,)``.
    """

    def __init__(
        self,
        mean_range: Sequence[float] = (0.0, 1.0),
        std_range: Sequence[float] = (0.0, 0.1),
        zero_background_prob: float = 0.5,
    ) -> None:
        caller = "RandLabelIntensity"
        self.mean_range = check_range(mean_range, "mean_range", caller, low=-math.inf)
        self.std_range = check_range(std_range, "std_range", caller)
        self.zero_background_prob = check_probability(zero_background_prob, "zero_background_prob", caller)
        self.means: torch.Tensor | None = None
        self.stds: torch.Tensor | None = None

    def randomize(self, num_labels: int) -> None:  # type: ignore[override]
        """Draw the mixture for ``num_labels`` labels."""
        k = max(int(num_labels), 1)
        means = self.R.uniform(*self.mean_range, size=k)
        stds = self.R.uniform(*self.std_range, size=k)
        if self.R.uniform() < self.zero_background_prob:
            means[0], stds[0] = 0.0, 0.0
        self.means, self.stds = torch.as_tensor(means), torch.as_tensor(stds)

    def __call__(self, label, randomize: bool = True):
        check_label(label, "label", "RandLabelIntensity")
        k = int(label.max()) + 1 if label.numel() else 1
        if randomize or self.means is None:
            self.randomize(k)
        elif self.means.shape[0] < k:
            raise ValueError(
                f"RandLabelIntensity: the drawn mixture has {self.means.shape[0]} labels but 'label' has labels up to "
                f"{k - 1}; call randomize({k}) first."
            )
        noise = None
        if float(self.stds.max()) > 0:
            noise = torch.from_numpy(self.R.standard_normal(tuple(label.shape)).astype(np.float32))
        return _like(gaussian_mixture_image(label, self.means, self.stds, noise), label)


class RandIntensityCorruption(SharedRandomState, Transform):
    r"""What a scanner does to an image, in this order, each step with its own probability, then scaling to [0, 1]:

    1. bias field (MONAI ``RandBiasField``): :math:`I \exp(\sum_{ijk} c_{ijk} P_i(x) P_j(y) P_k(z))`, Legendre
       polynomials up to degree ``bias_degree``, :math:`c \sim U(-\text{bias\_coeff}, \text{bias\_coeff})`;
    2. gamma (MONAI ``RandAdjustContrast``): :math:`m + r ((I - m) / r)^\gamma`, :math:`\gamma \sim U(\text{gamma})`
       (:math:`m`, :math:`r` the image's minimum and range);
    3. either blur (MONAI ``RandGaussianSmooth``, sigma per axis uniform in ``blur_sigma`` voxels) with probability
       ``blur_prob``, or a lower resolution (MONAI ``RandSimulateLowResolution``: nearest down-sampling by a factor
       uniform in ``lowres_zoom``, trilinear up-sampling) with probability ``lowres_prob`` (exclusive:
       ``blur_prob + lowres_prob <= 1``);
    4. noise (MONAI ``RandGaussianNoise``, or ``RandRicianNoise`` for magnitude-image noise) on the image scaled
       to [0, 1] by its minimum and maximum, standard deviation uniform in ``[0, noise_std]``;
    5. :math:`\mathrm{clip}((I - p_{0.1}) / (p_{99.9} - p_{0.1}), 0, 1)`
       (:func:`~monai_avsm.data.working_grid.percentile_scale`, ``percentiles``), as the loading of real images.

    The MONAI transforms share this transform's random state (:meth:`set_random_state` seeds them all), so one seed
    replays the whole corruption.

    ``__call__(img)``: ``(1, *S)`` float -> ``(1, *S)`` float32 in [0, 1] (a ``MetaTensor`` with the input's meta
    data when the input is one).
    """

    def __init__(
        self,
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
    ) -> None:
        caller = "RandIntensityCorruption"
        probs = {"bias_prob": bias_prob, "gamma_prob": gamma_prob, "blur_prob": blur_prob}
        probs.update({"lowres_prob": lowres_prob, "noise_prob": noise_prob})
        self.probs = {k: check_probability(v, k, caller) for k, v in probs.items()}
        if self.probs["blur_prob"] + self.probs["lowres_prob"] > 1.0 + 1e-12:
            raise ValueError(
                f"{caller}: blur and lower resolution exclude each other: 'blur_prob' + 'lowres_prob' must be <= 1, "
                f"got {blur_prob} + {lowres_prob}."
            )
        for name, value in (("bias_coeff", bias_coeff), ("noise_std", noise_std)):
            if not (isinstance(value, (int, float)) and 0 <= value < math.inf):
                raise ValueError(f"{caller}: {name!r} must be a finite number >= 0, got {value!r}.")
        if int(bias_degree) < 1:
            raise ValueError(f"{caller}: 'bias_degree' must be >= 1, got {bias_degree!r}.")
        self.gamma = check_range(gamma, "gamma", caller, low=1e-6)
        self.blur_sigma = check_range(blur_sigma, "blur_sigma", caller)
        self.lowres_zoom = check_range(lowres_zoom, "lowres_zoom", caller, low=1e-3, high=1.0)
        self.percentiles = check_range(percentiles, "percentiles", caller, high=100.0)
        self.noise_type = look_up_option(noise_type, _NOISE_TYPES)
        self.bias = RandBiasField(degree=int(bias_degree), coeff_range=(-bias_coeff, bias_coeff), prob=1.0)
        self.contrast = RandAdjustContrast(prob=1.0, gamma=self.gamma)
        self.blur = RandGaussianSmooth(
            sigma_x=self.blur_sigma, sigma_y=self.blur_sigma, sigma_z=self.blur_sigma, prob=1.0
        )
        self.lowres = RandSimulateLowResolution(prob=1.0, zoom_range=self.lowres_zoom)
        if self.noise_type == "gaussian":
            self.noise = RandGaussianNoise(prob=1.0, mean=0.0, std=noise_std, sample_std=True)
        else:
            self.noise = RandRicianNoise(prob=1.0, mean=0.0, std=noise_std, relative=False, sample_std=True)
        self.noise_std = float(noise_std)
        self._share_random_state()

    def _children(self) -> tuple:
        return (self.bias, self.contrast, self.blur, self.lowres, self.noise)

    def randomize(self, data=None) -> None:
        """Draw which steps run (the steps draw their own parameters from the shared state when they run)."""
        u = self.R.uniform(size=4)
        p = self.probs
        self._steps = {
            "bias": u[0] < p["bias_prob"] and self.bias.coeff_range[1] > 0,
            "gamma": u[1] < p["gamma_prob"],
            "blur": u[2] < p["blur_prob"],
            "lowres": p["blur_prob"] <= u[2] < p["blur_prob"] + p["lowres_prob"],
            "noise": u[3] < p["noise_prob"] and self.noise_std > 0,
        }

    def __call__(self, img):
        x = _plain(img)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"RandIntensityCorruption: expected a channel-first 2D or 3D image (C, H, W[, D]), got shape "
                f"{tuple(x.shape)}."
            )
        x = x.to(torch.float32)
        self.randomize()
        steps = self._steps
        if steps["bias"]:
            x = _plain(self.bias(x))
        if steps["gamma"]:
            x = _plain(self.contrast(x))
        if steps["blur"]:
            x = _plain(self.blur(x))
        elif steps["lowres"]:
            self.lowres.upsample_mode = "bilinear" if x.ndim == 3 else "trilinear"  # MONAI's default is 3D only
            x = _plain(self.lowres(x))
        if steps["noise"]:
            # noise relative to the image's range: on (I - min) / range (non-negative, as a magnitude image for the
            # Rician case); the percentile scaling below does not depend on this affine change
            lo, hi = float(x.min()), float(x.max())
            x = (x - lo) / (hi - lo) if hi > lo else x - lo
            x = _plain(self.noise(x)).to(torch.float32)
        return _like(percentile_scale(x, *self.percentiles), img)
