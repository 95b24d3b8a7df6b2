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
r"""Multi-Gaussian smoothing of the vector momentum by FFT: :math:`v_0 = (L^\dagger L)^{-1} m_0 = K \star m_0`
(method spec §3, paper eq. 8).

.. math:: K = \sum_i w_i\, G_{\sigma_i}, \qquad G_\sigma(x) \propto \exp(-\|x\|^2 / (2\sigma^2))

with the paper's :math:`\sigma = (0.05, 0.10, 0.15, 0.20, 0.25)` and :math:`w = (0.067, 0.133, 0.2, 0.267, 0.333)`, in
units where the image domain has length 1 (:class:`~monai_avsm.utils.enums.KernelNormalization`). Each Gaussian is
separable and normalised to unit sum per axis on the grid it is evaluated on; every channel is smoothed the same way.

Boundaries (:class:`~monai_avsm.utils.enums.BoundaryMode`):

- ``"zero"`` (project default): the momentum is zero outside the image; the FFT is taken on a grid padded to at least
  ``2 N - 1`` per axis, so the result is the exact linear convolution with the kernel sampled at offsets
  ``-(N-1) .. N-1`` (no wrap-around).
- ``"periodic"``: circular convolution on the ``N`` grid, as in the authors' code (mermaid
  ``MultiGaussianFourierSmoother``).

Two equivalent evaluations of the same linear (zero) or circular (periodic) convolution:

- :func:`smooth_fft`: ``rfftn`` of the field on the FFT grid, times the kernel's (real) spectrum, ``irfftn``;
- :func:`smooth_separable`: each Gaussian is separable, so the convolution is a sum over the Gaussians of one
  dense Toeplitz (zero) or circulant (periodic) ``N x N`` matrix per axis:
  :math:`K \star m = \sum_i w_i\, (T^{(0)}_i \otimes T^{(1)}_i \otimes T^{(2)}_i)\, m`, evaluated as three batched
  matrix products (the weights and the sum over the Gaussians fold into the last one). At the momentum's sizes
  (up to a few hundred voxels per axis) these matrix products are about 3x faster than the FFTs on the padded
  grid (8x the voxels in 3D), forward and backward (``docs/benchmarks.md``); the results agree to round-off.

MONAI's ``GaussianFilter`` is a single, spatially truncated Gaussian; the wide (a quarter of the image) multi-Gaussian
kernel is not truncated here, so this is new code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_avsm.utils.enums import BoundaryMode, KernelNormalization
from monai_avsm.utils.options import look_up_option

__all__ = [
    "PAPER_SIGMAS",
    "PAPER_WEIGHTS",
    "SMOOTHING_METHODS",
    "check_sigmas_weights",
    "smoothing_method",
    "multi_gaussian_smooth",
    "kernel_unit_spacing",
    "fft_size",
    "fft_grid_shape",
    "gaussian_1d",
    "multi_gaussian_kernel",
    "multi_gaussian_kernel_fft",
    "smooth_fft",
    "multi_gaussian_kernel_matrices",
    "smooth_separable",
]

#: standard deviations of the paper's multi-Gaussian kernel, in units of the image domain (supplementary A.1)
PAPER_SIGMAS: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.25)
#: weights of the paper's multi-Gaussian kernel (sigma / sum of sigmas)
PAPER_WEIGHTS: tuple[float, ...] = (0.067, 0.133, 0.2, 0.267, 0.333)
#: the evaluations of the convolution (:func:`smoothing_method`)
SMOOTHING_METHODS = ("auto", "separable", "fft")
#: ``"auto"`` uses the separable matrix products up to this many voxels along the longest axis, FFTs above
_SEPARABLE_MAX_SIZE = 256


def kernel_unit_spacing(
    spatial_shape: Sequence[int],
    spacing: Sequence[float] | None = None,
    normalization: KernelNormalization | str = KernelNormalization.ISOTROPIC,
) -> tuple[float, ...]:
    """Distance between neighbouring voxels along each axis, in the units the sigmas are given in.

    - ``"isotropic"``: ``spacing_d / max_e((N_e - 1) spacing_e)`` (longest physical side = 1);
    - ``"per_axis"``: ``1 / (N_d - 1)`` (every axis = 1, the authors' code).
    """
    normalization = look_up_option(normalization, KernelNormalization)
    shape = [int(n) for n in spatial_shape]
    if min(shape) < 2:
        raise ValueError(f"kernel_unit_spacing: every size must be >= 2, got {tuple(shape)}.")
    if normalization == KernelNormalization.PER_AXIS:
        return tuple(1.0 / (n - 1) for n in shape)
    sp = [1.0] * len(shape) if spacing is None else [float(s) for s in spacing]
    extent = max((n - 1) * s for n, s in zip(shape, sp))
    return tuple(s / extent for s in sp)


def fft_size(n: int) -> int:
    """Smallest size ``>= n`` whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = max(int(n), 1)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def fft_grid_shape(spatial_shape: Sequence[int], boundary: BoundaryMode | str) -> tuple[int, ...]:
    """FFT grid for smoothing a field on ``spatial_shape``: itself (periodic) or ``fft_size(2 N - 1)`` (zero)."""
    boundary = look_up_option(boundary, BoundaryMode)
    if boundary == BoundaryMode.PERIODIC:
        return tuple(int(n) for n in spatial_shape)
    return tuple(fft_size(2 * int(n) - 1) for n in spatial_shape)


def gaussian_1d(
    n: int, h: float, sigma: float, boundary: BoundaryMode | str, dtype=torch.float64, device=None
) -> torch.Tensor:
    """One axis of a Gaussian laid out for FFT convolution (offset 0 at index 0, negative offsets at the end).

    - ``"periodic"``: length ``n``, offsets are circular distances ``min(j, n - j)``;
    - ``"zero"``: length ``fft_size(2 n - 1)``, offsets ``-(n-1) .. n-1``, zeros in between.

    Normalised to unit sum.
    """
    boundary = look_up_option(boundary, BoundaryMode)
    if boundary == BoundaryMode.PERIODIC:
        j = torch.arange(n, dtype=torch.float64)
        offsets = torch.minimum(j, n - j)
        g = torch.exp(-0.5 * (offsets * h / sigma) ** 2)
    else:
        size = fft_size(2 * n - 1)
        g = torch.zeros(size, dtype=torch.float64)
        j = torch.arange(n, dtype=torch.float64)
        vals = torch.exp(-0.5 * (j * h / sigma) ** 2)
        g[:n] = vals
        g[size - n + 1 :] = vals[1:].flip(0)
    return (g / g.sum()).to(dtype=dtype, device=device)


def check_sigmas_weights(sigmas: Sequence[float], weights: Sequence[float], caller: str):
    """The sigmas (each > 0) and the weights (each >= 0, normalised to sum 1) as tuples of floats."""
    sigmas = tuple(float(s) for s in sigmas)
    weights = tuple(float(w) for w in weights)
    if len(sigmas) == 0 or len(sigmas) != len(weights):
        raise ValueError(
            f"{caller}: 'sigmas' and 'weights' must be non-empty and of equal length, got {sigmas} and {weights}."
        )
    if any(not s > 0 for s in sigmas):
        raise ValueError(f"{caller}: 'sigmas' must be > 0, got {sigmas}.")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{caller}: 'weights' must be >= 0 with a positive sum, got {weights}.")
    total = sum(weights)
    return sigmas, tuple(w / total for w in weights)


def multi_gaussian_kernel(
    spatial_shape: Sequence[int],
    unit_spacing: Sequence[float],
    sigmas: Sequence[float] = PAPER_SIGMAS,
    weights: Sequence[float] = PAPER_WEIGHTS,
    boundary: BoundaryMode | str = BoundaryMode.ZERO,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The multi-Gaussian kernel in the spatial domain, laid out for FFT convolution (see :func:`gaussian_1d`).

    ``weights`` are normalised to sum 1, so the kernel sums to 1.
    """
    sigmas, weights = check_sigmas_weights(sigmas, weights, "multi_gaussian_kernel")
    kernel = None
    for sigma, w in zip(sigmas, weights):
        g = None
        for axis, (n, h) in enumerate(zip(spatial_shape, unit_spacing)):
            g1 = gaussian_1d(int(n), float(h), sigma, boundary)
            g1 = g1.reshape(*([1] * axis), -1, *([1] * (len(spatial_shape) - axis - 1)))
            g = g1 if g is None else g * g1
        kernel = w * g if kernel is None else kernel + w * g
    return kernel.to(dtype=dtype, device=device)


def multi_gaussian_kernel_fft(
    spatial_shape: Sequence[int],
    unit_spacing: Sequence[float],
    sigmas: Sequence[float] = PAPER_SIGMAS,
    weights: Sequence[float] = PAPER_WEIGHTS,
    boundary: BoundaryMode | str = BoundaryMode.ZERO,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``rfftn`` of :func:`multi_gaussian_kernel` (real: the kernel is symmetric), in ``dtype`` on ``device``."""
    kernel = multi_gaussian_kernel(spatial_shape, unit_spacing, sigmas, weights, boundary)
    khat = torch.fft.rfftn(kernel, dim=tuple(range(kernel.ndim))).real
    return khat.to(dtype=dtype, device=device)


def smooth_fft(m: torch.Tensor, kernel_hat: torch.Tensor, fft_shape: Sequence[int]) -> torch.Tensor:
    """Convolve every channel of ``m`` ``(B, C, *S)`` with a kernel given by its ``rfftn`` (``kernel_hat``).

    Args:
        m: field to smooth, ``(B, C, *S)``.
        kernel_hat: ``rfftn`` of the kernel on a grid of ``fft_shape`` (from :func:`multi_gaussian_kernel_fft`).
        fft_shape: the FFT grid: ``S`` for periodic boundaries, the padded sizes for zero boundaries.

    Returns:
        the smoothed field ``(B, C, *S)`` (the FFT grid cropped to ``S``), dtype of ``m``.
    """
    ndim = m.ndim - 2
    dims = tuple(range(2, ndim + 2))
    spatial = tuple(m.shape[2:])
    fft_shape = tuple(int(s) for s in fft_shape)
    spectrum = torch.fft.rfftn(m, s=fft_shape, dim=dims)
    out = torch.fft.irfftn(spectrum * kernel_hat, s=fft_shape, dim=dims)
    if fft_shape != spatial:
        out = out[(slice(None), slice(None)) + tuple(slice(0, n) for n in spatial)]
    return out


def multi_gaussian_kernel_matrices(
    spatial_shape: Sequence[int],
    unit_spacing: Sequence[float],
    sigmas: Sequence[float] = PAPER_SIGMAS,
    weights: Sequence[float] = PAPER_WEIGHTS,
    boundary: BoundaryMode | str = BoundaryMode.ZERO,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, ...]:
    """Per-axis convolution matrices of the multi-Gaussian kernel for :func:`smooth_separable`.

    Axis ``d`` gets the ``(K, N_d, N_d)`` stack ``T[i, j, k] = g_i(j - k)`` of the ``K`` Gaussians of
    :func:`gaussian_1d` (Toeplitz for ``"zero"``: offsets ``-(N-1) .. N-1``; circulant for ``"periodic"``), each
    normalised as there. The first axis's stack is returned flattened to ``(N_0, K N_0)`` with the normalised weights
    folded in (``[w_1 T_1 | ... | w_K T_K]``), so that its product also sums over the Gaussians.
    """
    sigmas, weights = check_sigmas_weights(sigmas, weights, "multi_gaussian_kernel_matrices")
    boundary = look_up_option(boundary, BoundaryMode)
    mats = []
    for n, h in zip(spatial_shape, unit_spacing):
        n = int(n)
        idx = torch.arange(n)
        stack = []
        for sigma in sigmas:
            g = gaussian_1d(n, float(h), sigma, boundary)  # length L >= 2n - 1 (zero) or n (periodic)
            stack.append(g[(idx[:, None] - idx[None, :]) % g.shape[0]])
        mats.append(torch.stack(stack))
    w = torch.tensor(weights, dtype=torch.float64).reshape(-1, 1, 1)
    first = (mats[0] * w).permute(1, 0, 2).reshape(mats[0].shape[1], -1)
    return tuple(m.to(dtype=dtype, device=device) for m in [first, *mats[1:]])


def smooth_separable(m: torch.Tensor, matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Convolve every channel of ``m`` ``(B, C, *S)`` with the kernel given by :func:`multi_gaussian_kernel_matrices`.

    Same result as :func:`smooth_fft` (to round-off) by ``len(S)`` batched matrix products: the last axis, then the
    middle one (3D), for every Gaussian (``(B C, K, *S)`` intermediate), then the first axis and the weighted sum
    over the Gaussians in one product. Differentiable by autograd (the matrices are constants).
    """
    ndim = m.ndim - 2
    if len(matrices) != ndim:
        raise ValueError(f"smooth_separable: expected {ndim} matrices for input {tuple(m.shape)}, got {len(matrices)}.")
    b, c, *spatial = m.shape
    first, rest = matrices[0], matrices[1:]
    k = rest[-1].shape[0]
    x = m.reshape(b * c, 1, *spatial)
    # last axis: (BC, 1, ..., N_last) @ (K, 1, N_last, N_last)^T -> (BC, K, *S)
    x = torch.matmul(x, rest[-1].transpose(-1, -2).reshape(k, *([1] * (ndim - 2)), *rest[-1].shape[1:]))
    if ndim == 3:  # middle axis: (K, 1, N_1, N_1) @ (BC, K, N_0, N_1, N_2)
        x = torch.matmul(rest[0].unsqueeze(1), x)
    # first axis and the weighted sum over the Gaussians: (N_0, K N_0) @ (BC, K N_0, prod(S[1:]))
    out = torch.matmul(first, x.reshape(b * c, k * spatial[0], -1))
    return out.reshape(b, c, *spatial)


def smoothing_method(spatial_shape: Sequence[int], method: str = "auto") -> str:
    """``"separable"`` or ``"fft"`` for fields on ``spatial_shape``: ``method`` itself, or for ``"auto"`` the separable
    matrix products up to 256 voxels along the longest axis (faster there), FFTs above."""
    method = look_up_option(method, SMOOTHING_METHODS)
    if method == "auto":
        return "separable" if max(int(n) for n in spatial_shape) <= _SEPARABLE_MAX_SIZE else "fft"
    return method


def multi_gaussian_smooth(
    m: torch.Tensor,
    spacing: Sequence[float] | None = None,
    sigmas: Sequence[float] = PAPER_SIGMAS,
    weights: Sequence[float] = PAPER_WEIGHTS,
    boundary: BoundaryMode | str = BoundaryMode.ZERO,
    normalization: KernelNormalization | str = KernelNormalization.ISOTROPIC,
    method: str = "auto",
) -> torch.Tensor:
    r""":math:`\sum_i w_i\, G_{\sigma_i} \star m` for every channel of ``m`` ``(B, C, *S)`` (paper eq. 8), in ``m``'s
    dtype, the kernel built for this call (:class:`~monai_avsm.networks.blocks.MultiGaussianSmoother` is the module
    that keeps its kernels between calls).

    Args:
        m: the field to smooth.
        spacing: voxel spacing of ``m``'s grid (only its ratios matter, and only for ``"isotropic"``); default 1.
        sigmas, weights, boundary, normalization, method: as :class:`~monai_avsm.networks.blocks.MultiGaussianSmoother`.
    """
    shape = tuple(int(n) for n in m.shape[2:])
    unit = kernel_unit_spacing(shape, spacing, normalization)
    if smoothing_method(shape, method) == "separable":
        matrices = multi_gaussian_kernel_matrices(shape, unit, sigmas, weights, boundary, m.dtype, m.device)
        return smooth_separable(m, matrices)
    khat = multi_gaussian_kernel_fft(shape, unit, sigmas, weights, boundary, m.dtype, m.device)
    return smooth_fft(m, khat, fft_grid_shape(shape, boundary))
