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

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import RandomizableTransform, Transform

from monai_avsm.functional.maps import warp_image, warp_label
from monai_avsm.transforms.functional import (
    axis_angle_rotation,
    physical_affine_to_normalized,
    rotation_matrix,
    shear_matrix,
    smooth_velocity,
    synthetic_inverse_map,
    synthetic_map,
)
from monai_avsm.utils.options import look_up_option
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
    :meth:`maps` returns ``(phi, phi_inv)`` ``(D, *S)`` in ``MapSpace.NORMALIZED``; :meth:`map` only ``phi``
    (the inverse is computed only when asked for). The maps of the last grid are cached.
    """

    def __init__(self, A: torch.Tensor, b: torch.Tensor, velocity: torch.Tensor, time_steps: int = 10) -> None:
        self.A, self.b, self.velocity = A, b, velocity
        self.time_steps = time_steps
        self._maps: dict = {}

    def map(self, spatial_shape: Sequence[int]) -> torch.Tensor:
        r""":math:`\phi` on a grid of ``spatial_shape``, ``(D, *S)``."""
        key = tuple(int(s) for s in spatial_shape)
        if key not in self._maps:
            self._maps = {key: [synthetic_map(self.A, self.b, self.velocity, key, self.time_steps), None]}
        return self._maps[key][0]

    def maps(self, spatial_shape: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi, phi_inv)`` on a grid of ``spatial_shape``, each ``(D, *S)``."""
        key = tuple(int(s) for s in spatial_shape)
        phi = self.map(key)
        if self._maps[key][1] is None:
            self._maps[key][1] = synthetic_inverse_map(self.A, self.b, self.velocity, key, self.time_steps)
        return phi, self._maps[key][1]

    def __call__(self, img, mode: str = "bilinear"):
        data = _as_tensor(img)
        phi = self.map(data.shape[1:])
        if mode == "nearest":
            out = warp_label(data.unsqueeze(0), phi.unsqueeze(0).to(torch.float32))[0]
        else:
            out_dtype = data.dtype if data.is_floating_point() else torch.float32
            out = warp_image(data.unsqueeze(0).to(phi.dtype), phi.unsqueeze(0)).to(out_dtype)[0]
        if isinstance(img, MetaTensor):
            return MetaTensor(out, meta=dict(img.meta))  # same grid: the meta data (affine included) still holds
        return out


_ROTATION_AXES = ("per_axis", "random")


class RandSyntheticDeformation(RandomizableTransform):
    r"""Draw a random affine and a random smooth diffeomorphism, in millimetres, and apply them.

    The affine :math:`M = R\, S_h\, \mathrm{diag}(s)` about the image centre, then a translation:

    - rotation :math:`R`: with ``rotation_axis="per_axis"`` (default) each angle is uniform in ``[-r, r]``
      (``r = rotation_deg``; one angle in 2D, three in 3D, composed about axes 0, 1, 2); with ``"random"`` one
      angle uniform in ``[-r, r]`` about an axis uniform on the sphere, so the rotation angle is at most ``r``;
    - shear :math:`S_h`: upper unit-triangular, each entry uniform in ``[-shear, shear]`` (drawn only if > 0);
    - scaling: each axis by a factor uniform in ``[1 - scale, 1 + scale]``;
    - translation: uniform in ``[-translation_mm, translation_mm]`` per axis.

    The smooth part is the flow for unit time of a stationary velocity (:func:`~monai_avsm.transforms.functional.
    smooth_velocity`): Gaussian noise on a grid ``control_factor`` times coarser than the image, smoothed by a
    Gaussian of ``smoothness`` (fraction of the longest physical side; a sequence gives one independent field per
    scale, each normalised and weighted by a uniform random weight, then summed: a multi-scale deformation) and
    scaled so that its largest speed is ``displacement_mm`` (with ``random_displacement``: uniform in
    ``[0, displacement_mm]``), so no voxel moves more than that through the smooth part. Integrated with RK4 it is a
    diffeomorphism (det J > 0).

    Args:
        rotation_deg, scale, translation_mm, displacement_mm, smoothness, shear: magnitudes, see above (0 disables
            a part; ``smoothness`` must be > 0).
        control_factor: coarsening of the velocity grid (4).
        time_steps: RK4 steps (10).
        prob: probability of deforming; otherwise the identity is applied.
        rotation_axis: ``"per_axis"`` or ``"random"``.
        random_displacement: draw the largest displacement uniformly in ``[0, displacement_mm]``.
        dtype: of the velocity and the maps (the draws are made in float64 either way); float32 halves the cost of
            the full-resolution steps.

    ``__call__(img, mode="bilinear", spacing=None, randomize=True)``; the spacing comes from the MetaTensor when not
    given. The last deformation is :attr:`deformation` (a :class:`SyntheticDeformation`); the last affine in
    millimetres is :attr:`matrix` ``(D, D)`` and :attr:`translation` ``(D,)``. The defaults (small deformations)
    are those of the longitudinal-like pairs of ``RandSyntheticDeformationd``; with the defaults the random draws
    are those of earlier versions, so seeded pairs are replayed unchanged.
    """

    def __init__(
        self,
        rotation_deg: float = 5.0,
        scale: float = 0.05,
        translation_mm: float = 5.0,
        displacement_mm: float = 4.0,
        smoothness: float | Sequence[float] = 0.15,
        control_factor: int = 4,
        time_steps: int = 10,
        prob: float = 1.0,
        shear: float = 0.0,
        rotation_axis: str = "per_axis",
        random_displacement: bool = False,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        magnitudes = {
            "rotation_deg": rotation_deg,
            "translation_mm": translation_mm,
            "displacement_mm": displacement_mm,
            "shear": shear,
        }
        for name, value in magnitudes.items():
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"RandSyntheticDeformation: '{name}' must be a finite number >= 0, got {value}.")
        if not 0 <= scale < 1:
            raise ValueError(f"RandSyntheticDeformation: 'scale' must be in [0, 1), got {scale}.")
        sigmas = (float(smoothness),) if isinstance(smoothness, (int, float)) else tuple(float(s) for s in smoothness)
        if not sigmas or not all(s > 0 and math.isfinite(s) for s in sigmas) or int(control_factor) < 1:
            raise ValueError(
                f"RandSyntheticDeformation: need 'smoothness' > 0 (one value or one per scale) and 'control_factor' "
                f">= 1, got {smoothness}, {control_factor}."
            )
        self.rotation_deg, self.scale, self.translation_mm = rotation_deg, scale, translation_mm
        self.displacement_mm, self.smoothness, self.shear = displacement_mm, sigmas, shear
        self.rotation_axis = look_up_option(rotation_axis, _ROTATION_AXES)
        self.random_displacement = bool(random_displacement)
        self.control_factor, self.time_steps = int(control_factor), time_steps
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"RandSyntheticDeformation: 'dtype' must be torch.float32 or torch.float64, got {dtype}.")
        self.dtype = dtype
        self.deformation: SyntheticDeformation | None = None
        self.matrix: torch.Tensor | None = None
        self.translation: torch.Tensor | None = None

    def randomize(self, spatial_shape: Sequence[int], spacing: Sequence[float]) -> None:  # type: ignore[override]
        """Decide (with ``prob``) whether to deform, then draw the deformation for this grid."""
        super().randomize(None)
        self.draw(spatial_shape, spacing, active=self._do_transform)

    def velocity_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """The grid of the velocity: ``control_factor`` times coarser, at least 4 voxels per axis."""
        return tuple(max(math.ceil(n / self.control_factor), 4) for n in spatial_shape)

    def draw(self, spatial_shape: Sequence[int], spacing: Sequence[float], active: bool = True) -> None:
        """Draw a deformation for a grid of ``spatial_shape`` and ``spacing`` (the identity if not ``active``)."""
        ndim = len(spatial_shape)
        low = self.velocity_shape(spatial_shape)
        if not active:
            A, b = torch.eye(ndim, dtype=torch.float64), torch.zeros(ndim, dtype=torch.float64)
            self.matrix, self.translation = A.clone(), b.clone()
            self.deformation = SyntheticDeformation(A, b, torch.zeros(ndim, *low, dtype=self.dtype), self.time_steps)
            return
        r = self.R
        max_angle = math.radians(self.rotation_deg)
        if self.rotation_axis == "random" and ndim == 3:
            axis = r.standard_normal(3)
            rot = axis_angle_rotation(
                axis if np.linalg.norm(axis) > 0 else (1.0, 0.0, 0.0), r.uniform(-1, 1) * max_angle
            )
        else:
            rot = rotation_matrix(r.uniform(-1, 1, size=1 if ndim == 2 else 3) * max_angle)
        scales = 1 + r.uniform(-1, 1, size=ndim) * self.scale
        shift = r.uniform(-1, 1, size=ndim) * self.translation_mm
        matrix = rot
        if self.shear > 0:
            matrix = matrix @ shear_matrix(r.uniform(-1, 1, size=1 if ndim == 2 else 3) * self.shear)
        matrix = matrix @ torch.diag(torch.as_tensor(scales, dtype=torch.float64))
        self.matrix, self.translation = matrix, torch.as_tensor(shift, dtype=torch.float64)
        A, b = physical_affine_to_normalized(matrix, self.translation, spatial_shape, spacing)
        k = len(self.smoothness)
        noise = torch.as_tensor(r.standard_normal((k, ndim, *low)), dtype=torch.float64)
        weights = r.uniform(0, 1, size=k).tolist() if k > 1 else None
        speed = self.displacement_mm * (r.uniform(0, 1) if self.random_displacement else 1.0)
        v = smooth_velocity(noise, spatial_shape, spacing, self.smoothness, speed, weights)
        self.deformation = SyntheticDeformation(A, b, v.to(self.dtype), self.time_steps)

    def __call__(self, img, mode: str = "bilinear", spacing: Sequence[float] | None = None, randomize: bool = True):
        ndim = len(img.shape) - 1
        if ndim not in (2, 3):
            raise ValueError(
                f"RandSyntheticDeformation: expected a channel-first 2D or 3D image, got shape {tuple(img.shape)}."
            )
        if randomize or self.deformation is None:
            self.randomize(tuple(img.shape[1:]), image_spacing(img, spacing, ndim, "RandSyntheticDeformation"))
        return self.deformation(img, mode=mode)
