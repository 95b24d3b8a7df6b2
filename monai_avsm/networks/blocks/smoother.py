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
r"""``MultiGaussianSmoother``: the velocity :math:`v_0 = K \star m_0` of the vSVF model (paper eq. 8, method spec §3).

A module wrapper of :mod:`monai_avsm.functional.smoothing` that caches the kernel (its per-axis matrices or its FFT)
per grid, spacing, dtype and device (the cache is not part of the state dict).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from monai_avsm.functional.smoothing import (
    PAPER_SIGMAS,
    PAPER_WEIGHTS,
    SMOOTHING_METHODS,
    check_sigmas_weights,
    fft_grid_shape,
    kernel_unit_spacing,
    multi_gaussian_kernel_fft,
    multi_gaussian_kernel_matrices,
    smooth_fft,
    smooth_separable,
    smoothing_method,
)
from monai_avsm.utils.enums import BoundaryMode, KernelNormalization
from monai_avsm.utils.options import look_up_option
from monai_avsm.utils.validation import check_spatial_tensor, ensure_spacing

__all__ = ["MultiGaussianSmoother"]


class MultiGaussianSmoother(nn.Module):
    r"""Multi-Gaussian smoothing by FFT, :math:`v = \sum_i w_i\, G_{\sigma_i} \star m` (paper eq. 8).

    Args:
        spatial_dims: 2 or 3.
        sigmas: standard deviations in units where the image domain has length 1 (see ``normalization``);
            default: the paper's ``(0.05, 0.10, 0.15, 0.20, 0.25)``.
        weights: non-negative weights, normalised to sum 1; default: the paper's ``(0.067, 0.133, 0.2, 0.267, 0.333)``.
        boundary: ``"zero"`` (default: zero outside the image, no wrap-around) or ``"periodic"`` (the authors' code).
        normalization: ``"isotropic"`` (default: longest physical side = 1, Gaussians isotropic in millimetres)
            or ``"per_axis"`` (every axis = 1, the authors' code).
        method: ``"auto"`` (default: ``"separable"`` up to 256 voxels along the longest axis, else ``"fft"``),
            ``"separable"`` (per-axis matrix products, :func:`~monai_avsm.functional.smooth_separable`) or
            ``"fft"`` (:func:`~monai_avsm.functional.smooth_fft`). Same result to round-off; only the speed differs.

    Deviation: the authors' code uses periodic boundaries and per-axis normalisation (``docs/deviations.md``).

    ``forward(m, spacing=None)``: ``m`` ``(B, C, *S)``; ``spacing`` the voxel spacing of ``m``'s grid (only its ratios
    matter, and only for ``"isotropic"``). Half-precision inputs are smoothed in float32 and returned in float32.
    """

    _max_cache = 8

    def __init__(
        self,
        spatial_dims: int = 3,
        sigmas: Sequence[float] = PAPER_SIGMAS,
        weights: Sequence[float] = PAPER_WEIGHTS,
        boundary: BoundaryMode | str = BoundaryMode.ZERO,
        normalization: KernelNormalization | str = KernelNormalization.ISOTROPIC,
        method: str = "auto",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"MultiGaussianSmoother: 'spatial_dims' must be 2 or 3, got {spatial_dims}.")
        self.spatial_dims = spatial_dims
        self.sigmas, self.weights = check_sigmas_weights(sigmas, weights, "MultiGaussianSmoother")
        self.boundary = look_up_option(boundary, BoundaryMode)
        self.normalization = look_up_option(normalization, KernelNormalization)
        self.method = look_up_option(method, SMOOTHING_METHODS)
        self._cache: OrderedDict = OrderedDict()

    def _method_for(self, spatial_shape: Sequence[int]) -> str:
        return smoothing_method(spatial_shape, self.method)

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()``, kept by ``key`` in a cache of the last :attr:`_max_cache` kernels. Not while tracing: a cached
        kernel becomes a constant and a fresh one an op, so two traces of the same call (torch.jit.trace's check,
        MONAI's ckpt_export) would give different graphs."""
        if torch.jit.is_tracing():
            return build()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self._cache[key] = build()
        if len(self._cache) > self._max_cache:
            self._cache.popitem(last=False)
        return self._cache[key]

    def kernel_matrices(
        self, spatial_shape: Sequence[int], spacing: Sequence[float] | None, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, ...]:
        """The kernel's per-axis matrices for fields on ``spatial_shape`` (cached, not while tracing)."""
        shape = tuple(int(n) for n in spatial_shape)
        unit = kernel_unit_spacing(shape, spacing, self.normalization)
        key = ("separable", shape, tuple(round(u, 12) for u in unit), dtype, str(device))
        return self._cached(
            key,
            lambda: multi_gaussian_kernel_matrices(
                shape, unit, self.sigmas, self.weights, self.boundary, dtype, device
            ),
        )

    def kernel_fft(
        self, spatial_shape: Sequence[int], spacing: Sequence[float] | None, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        """The kernel's ``rfftn`` and the FFT grid for fields on ``spatial_shape`` (cached, not while tracing)."""
        shape = tuple(int(n) for n in spatial_shape)
        unit = kernel_unit_spacing(shape, spacing, self.normalization)
        key = (shape, tuple(round(u, 12) for u in unit), dtype, str(device))

        def build() -> tuple[torch.Tensor, tuple[int, ...]]:
            # the spectrum is built on the FFT grid: for zero boundaries gaussian_1d lays it out on fft_size(2N-1)
            grid = fft_grid_shape(shape, self.boundary)
            return multi_gaussian_kernel_fft(shape, unit, self.sigmas, self.weights, self.boundary, dtype, device), grid

        return self._cached(key, build)

    def forward(self, m: torch.Tensor, spacing: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
        ndim = check_spatial_tensor(m, "m", "MultiGaussianSmoother")
        if ndim != self.spatial_dims:
            raise ValueError(
                f"MultiGaussianSmoother: expected {self.spatial_dims} spatial dims, got input shape {tuple(m.shape)}."
            )
        sp = ensure_spacing(spacing, ndim, "MultiGaussianSmoother")
        if m.dtype in (torch.float16, torch.bfloat16):
            m = m.float()
        with torch.autocast(device_type=m.device.type, enabled=False):
            if self._method_for(m.shape[2:]) == "separable":
                return smooth_separable(m, self.kernel_matrices(m.shape[2:], sp, m.dtype, m.device))
            khat, grid = self.kernel_fft(m.shape[2:], sp, m.dtype, m.device)
            return smooth_fft(m, khat, grid)

    def extra_repr(self) -> str:
        return (
            f"spatial_dims={self.spatial_dims}, sigmas={self.sigmas}, "
            f"weights={tuple(round(w, 4) for w in self.weights)}, "
            f"boundary={self.boundary.value!r}, normalization={self.normalization.value!r}, method={self.method!r}"
        )
