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
r"""Array transforms: synthetic deformations with a known ground-truth map (a random small affine plus a random
smooth diffeomorphism), for longitudinal-like training and test pairs made from one real image.

:class:`RandSyntheticDeformation` draws the parameters and hands them to its deterministic twin
:class:`SyntheticDeformation`, so every applied deformation can be replayed (``transform.deformation``).
MONAI's ``RandAffine``/``Rand3DElastic`` neither return their map in AVSM's convention nor guarantee a
diffeomorphism; these integrate a smooth velocity with the project's RK4 integrator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.data import MetaTensor
from monai.transforms import RandomizableTransform, Transform

from monai_avsm.functional.maps import warp_image, warp_label
from monai_avsm.functional.smoothing import multi_gaussian_smooth
from monai_avsm.transforms.functional import (
    half_extent_mm,
    physical_affine_to_normalized,
    rotation_matrix,
    synthetic_maps,
)
from monai_avsm.utils.validation import ensure_spacing

__all__ = ["SyntheticDeformation", "RandSyntheticDeformation", "image_spacing"]


def image_spacing(img, spacing: Sequence[float] | None, ndim: int, caller: str) -> tuple[float, ...]:
    """The voxel spacing: ``spacing`` if given, else the MetaTensor's ``pixdim``, else 1 mm."""
    if spacing is None and isinstance(img, MetaTensor):
        spacing = [float(s) for s in img.pixdim[:ndim]]
    return ensure_spacing(spacing, ndim, caller)


def _as_tensor(img) -> torch.Tensor:
    return img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)


class SyntheticDeformation(Transform):
    r"""Apply a known deformation :math:`\phi = \phi_{aff} \circ \psi_{-1}` to channel-first images and labels.

    Args:
        A, b: normalised affine ``(D, D)``, ``(D,)`` (about the image centre; see
            :func:`~monai_avsm.transforms.functional.physical_affine_to_normalized`).
        velocity: ``(D, *s)`` stationary velocity, normalised units per unit time, on any grid spanning the image.
        time_steps: RK4 steps for the integration (10).

    ``__call__(img, mode="bilinear")``: ``img`` ``(C, *S)`` -> ``img o phi`` on the same grid (zero padding); with
    ``mode="nearest"`` integer labels are warped by nearest neighbour and keep their dtype.
    :meth:`maps` returns ``(phi, phi_inv)`` ``(D, *S)`` in ``MapSpace.NORMALIZED``.
    """

    def __init__(self, A: torch.Tensor, b: torch.Tensor, velocity: torch.Tensor, time_steps: int = 10) -> None:
        self.A, self.b, self.velocity = A, b, velocity
        self.time_steps = time_steps
        self._maps: dict = {}

    def maps(self, spatial_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        key = tuple(int(s) for s in spatial_shape)
        if key not in self._maps:
            self._maps = {key: synthetic_maps(self.A, self.b, self.velocity, key, self.time_steps)}
        return self._maps[key]

    def __call__(self, img, mode: str = "bilinear"):
        data = _as_tensor(img)
        phi, _ = self.maps(data.shape[1:])
        if mode == "nearest":
            out = warp_label(data.unsqueeze(0), phi.unsqueeze(0).to(torch.float32))[0]
        else:
            out_dtype = data.dtype if data.is_floating_point() else torch.float32
            out = warp_image(data.unsqueeze(0).to(phi.dtype), phi.unsqueeze(0)).to(out_dtype)[0]
        if isinstance(img, MetaTensor):
            return MetaTensor(out, meta=dict(img.meta))  # same grid: the meta data (affine included) still holds
        return out


class RandSyntheticDeformation(RandomizableTransform):
    r"""Draw a random small affine and a random smooth diffeomorphism, in millimetres, and apply them.

    The affine rotates by up to ``rotation_deg`` (each angle uniform in ``[-r, r]``; one angle in 2D, three in 3D),
    scales each axis by a factor in ``[1 - scale, 1 + scale]`` and translates by up to ``translation_mm`` per axis,
    about the image centre. The smooth part is the flow for unit time of a stationary velocity: Gaussian noise on a
    grid ``control_factor`` times coarser than the image, smoothed by a Gaussian of ``smoothness`` (fraction of the
    longest physical side) and scaled so that its largest speed is ``displacement_mm`` (so no voxel moves more than
    about ``displacement_mm`` through the smooth part). Integrated with RK4 it is a diffeomorphism.

    Args:
        rotation_deg, scale, translation_mm, displacement_mm, smoothness: magnitudes, see above (0 disables a part).
        control_factor: coarsening of the velocity grid (4).
        time_steps: RK4 steps (10).
        prob: probability of deforming; otherwise the identity is applied.

    ``__call__(img, mode="bilinear", spacing=None, randomize=True)``; the spacing comes from the MetaTensor when not
    given. The last deformation is :attr:`deformation` (a :class:`SyntheticDeformation`).
    """

    def __init__(
        self,
        rotation_deg: float = 5.0,
        scale: float = 0.05,
        translation_mm: float = 5.0,
        displacement_mm: float = 4.0,
        smoothness: float = 0.15,
        control_factor: int = 4,
        time_steps: int = 10,
        prob: float = 1.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        magnitudes = {
            "rotation_deg": rotation_deg,
            "translation_mm": translation_mm,
            "displacement_mm": displacement_mm,
        }
        for name, value in magnitudes.items():
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"RandSyntheticDeformation: '{name}' must be a finite number >= 0, got {value}.")
        if not 0 <= scale < 1:
            raise ValueError(f"RandSyntheticDeformation: 'scale' must be in [0, 1), got {scale}.")
        if not smoothness > 0 or int(control_factor) < 1:
            raise ValueError(
                f"RandSyntheticDeformation: need 'smoothness' > 0 and 'control_factor' >= 1, got {smoothness}, "
                f"{control_factor}."
            )
        self.rotation_deg, self.scale, self.translation_mm = rotation_deg, scale, translation_mm
        self.displacement_mm, self.smoothness = displacement_mm, smoothness
        self.control_factor, self.time_steps = int(control_factor), time_steps
        self.deformation: SyntheticDeformation | None = None

    def randomize(self, spatial_shape: Sequence[int], spacing: Sequence[float]) -> None:  # type: ignore[override]
        """Decide (with ``prob``) whether to deform, then draw the deformation for this grid."""
        super().randomize(None)
        self.draw(spatial_shape, spacing, active=self._do_transform)

    def draw(self, spatial_shape: Sequence[int], spacing: Sequence[float], active: bool = True) -> None:
        """Draw a deformation for a grid of ``spatial_shape`` and ``spacing`` (the identity if not ``active``)."""
        ndim = len(spatial_shape)
        low = tuple(max(math.ceil(n / self.control_factor), 4) for n in spatial_shape)
        if not active:
            A, b = torch.eye(ndim, dtype=torch.float64), torch.zeros(ndim, dtype=torch.float64)
            self.deformation = SyntheticDeformation(A, b, torch.zeros(ndim, *low, dtype=torch.float64), self.time_steps)
            return
        r = self.R
        angles = r.uniform(-1, 1, size=1 if ndim == 2 else 3) * math.radians(self.rotation_deg)
        scales = 1 + r.uniform(-1, 1, size=ndim) * self.scale
        shift = r.uniform(-1, 1, size=ndim) * self.translation_mm
        matrix = rotation_matrix(angles) @ torch.diag(torch.as_tensor(scales, dtype=torch.float64))
        A, b = physical_affine_to_normalized(matrix, torch.as_tensor(shift), spatial_shape, spacing)
        noise = torch.as_tensor(r.standard_normal((1, ndim, *low)), dtype=torch.float64)
        low_spacing = [s * (n - 1) / (k - 1) for s, n, k in zip(spacing, spatial_shape, low)]
        v = multi_gaussian_smooth(noise, low_spacing, sigmas=(self.smoothness,), weights=(1.0,))[0]
        h = half_extent_mm(spatial_shape, spacing).reshape(ndim, *([1] * ndim))
        speed_mm = (v * h).norm(dim=0).max()
        v = v * (self.displacement_mm / float(speed_mm)) if float(speed_mm) > 0 else v
        self.deformation = SyntheticDeformation(A, b, v, self.time_steps)

    def __call__(self, img, mode: str = "bilinear", spacing: Sequence[float] | None = None, randomize: bool = True):
        ndim = len(img.shape) - 1
        if ndim not in (2, 3):
            raise ValueError(
                f"RandSyntheticDeformation: expected a channel-first 2D or 3D image, got shape {tuple(img.shape)}."
            )
        if randomize or self.deformation is None:
            self.randomize(tuple(img.shape[1:]), image_spacing(img, spacing, ndim, "RandSyntheticDeformation"))
        return self.deformation(img, mode=mode)
