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
r"""Window settings of the multi-kernel LNCC (paper eq. 3): the kernels, their weights, strides and dilations, the
paper's window rule (:func:`default_lncc_settings`, the one place that states it) and the checks of explicit windows.

Pure Python (no tensors): a setting is an :class:`LNCCSettings` with one tuple of per-axis ints per kernel. The sums
over the windows are in :mod:`monai_avsm.functional.box_sums`, the losses in :mod:`monai_avsm.functional.lncc`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from monai_avsm.functional.box_sums import IntOrTuple, per_axis_ints

__all__ = [
    "LNCCSettings",
    "check_rule_options",
    "default_lncc_settings",
    "paper_lncc_stride",
    "parse_lncc_settings",
    "resolve_lncc_settings",
]


class LNCCSettings(NamedTuple):
    """Windows of an mk-LNCC, one entry per kernel, each a tuple with one value per spatial axis."""

    kernel_sizes: tuple[tuple[int, ...], ...]
    kernel_weights: tuple[float, ...]
    strides: tuple[tuple[int, ...], ...]
    dilations: tuple[tuple[int, ...], ...]


def paper_lncc_stride(kernel_size: int) -> int:
    r"""The stride of the paper's window rule for a cubic kernel of ``kernel_size`` voxels per axis,
    :math:`\max(\lfloor (k+1)/4 \rfloor, 1)` (the authors' easyreg ``LNCCLoss`` / mermaid ``LNCCSimilarity``; used by
    :func:`default_lncc_settings`)."""
    return max(int((int(kernel_size) + 1) / 4), 1)


def default_lncc_settings(spatial_shape: Sequence[int]) -> LNCCSettings:
    r"""The paper's window rule (supplementary A.1; easyreg ``LNCCLoss``, mermaid ``LNCCSimilarity``).

    This function is the one statement of the rule in monai_avsm; the losses and optimisers refer to it.

    With :math:`S` the smallest spatial size, cubic kernels :math:`k = \lfloor S \cdot r \rfloor`:

    - :math:`S \ge 128`: :math:`r = 1/16, 1/8, 1/4`, weights 0.1, 0.3, 0.6, dilation 2;
    - :math:`64 \le S < 128`: :math:`r = 1/4, 1/2`, weights 0.3, 0.7, dilation 2 (the paper's
      :math:`(\omega, s) = \{(0.3, S/4), (0.7, S/2)\}`);
    - :math:`S < 64`: :math:`r = 1/2`, weight 1, dilation 1;

    and stride :math:`\max(\lfloor (k+1)/4 \rfloor, 1)` for every kernel (:func:`paper_lncc_stride`). For
    80x192x192: k = 20 (stride 5, dilation 2) and k = 40 (stride 10, dilation 2).

    The dilated extent :math:`(k-1)d + 1` always fits: :math:`2\lfloor S/4 \rfloor - 1 < S` and
    :math:`2\lfloor S/2 \rfloor - 1 < S`. The guard below, which lowers a dilation to the largest that fits, therefore
    never changes the rule's values; it is kept so that the function can never return a window larger than the image.
    The thresholds follow the paper and mermaid (:math:`S \ge 128`, :math:`64 \le S < 128`); easyreg's affine-net copy
    uses :math:`S > 128` and :math:`64 < S \le 128`, which differs only at :math:`S = 64` and :math:`S = 128`.

    Args:
        spatial_shape: the spatial sizes ``S`` of the images (any number of axes).

    Returns:
        :class:`LNCCSettings` with per-axis tuples.

    Raises:
        ValueError: if the smallest size is below 4 (a kernel of 1 voxel carries no correlation).
    """
    shape = tuple(int(n) for n in spatial_shape)
    if len(shape) == 0 or min(shape) < 4:
        raise ValueError(
            f"default_lncc_settings: the smallest spatial size must be >= 4 for the paper's window rule, got "
            f"'spatial_shape' {shape}; pass explicit 'kernel_sizes'."
        )
    size = min(shape)
    if size >= 128:
        ratios, weights, dilation = (1 / 16, 1 / 8, 1 / 4), (0.1, 0.3, 0.6), 2
    elif size >= 64:
        ratios, weights, dilation = (1 / 4, 1 / 2), (0.3, 0.7), 2
    else:
        ratios, weights, dilation = (1 / 2,), (1.0,), 1
    ndim = len(shape)
    kernels, strides, dilations = [], [], []
    for r in ratios:
        k = int(size * r)
        d = dilation if (k - 1) * dilation + 1 <= size else max((size - 1) // max(k - 1, 1), 1)
        kernels.append((k,) * ndim)
        strides.append((paper_lncc_stride(k),) * ndim)
        dilations.append((d,) * ndim)
    return LNCCSettings(tuple(kernels), weights, tuple(strides), tuple(dilations))


def _per_kernel(value, num: int, name: str, caller: str) -> list:
    """``None`` -> 1 for every kernel; an int -> that int for every kernel; else one entry per kernel."""
    if value is None:
        return [1] * num
    if isinstance(value, int) and not isinstance(value, bool):
        return [value] * num
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != num:
        raise ValueError(
            f"{caller}: '{name}' must be None, an int, or have one entry per kernel ({num} kernels), got {value!r}."
        )
    return list(value)


def parse_lncc_settings(
    spatial_dims: int,
    kernel_sizes: IntOrTuple | Sequence[IntOrTuple],
    kernel_weights: Sequence[float] | None = None,
    strides: IntOrTuple | Sequence[IntOrTuple] | None = None,
    dilations: IntOrTuple | Sequence[IntOrTuple] | None = None,
    caller: str = "parse_lncc_settings",
) -> LNCCSettings:
    """Validate explicit mk-LNCC windows and return them with one tuple per kernel and axis.

    Args:
        spatial_dims: number of spatial axes ``D``.
        kernel_sizes: an int (one cubic kernel) or a sequence with one entry per kernel, each an int (cubic) or ``D``
            ints. Even sizes are allowed. Note that ``(9, 21, 41)`` means three cubic kernels; one anisotropic kernel
            is ``((9, 21, 41),)``.
        kernel_weights: one weight per kernel, ``>= 0``, summing to 1 within 1e-6; ``None``: equal weights.
        strides: ``None`` (1: every window position), an int for all kernels, or one entry per kernel (int or ``D``
            ints).
        dilations: as ``strides``; ``None`` means 1.
        caller: name used in error messages.

    Raises:
        ValueError: for an empty kernel list, sizes, strides or dilations below 1, a wrong number of per-axis values,
            a kernel of a single voxel, or weights that are negative, not finite, of the wrong length or not summing
            to 1.
        TypeError: for non-integer sizes, strides or dilations.
    """
    if spatial_dims < 1:
        raise ValueError(f"{caller}: 'spatial_dims' must be >= 1, got {spatial_dims}.")
    if isinstance(kernel_sizes, int) and not isinstance(kernel_sizes, bool):
        kernel_sizes = (kernel_sizes,)
    if not isinstance(kernel_sizes, Sequence) or isinstance(kernel_sizes, str) or len(kernel_sizes) == 0:
        raise ValueError(f"{caller}: 'kernel_sizes' must be an int or a non-empty sequence, got {kernel_sizes!r}.")
    num = len(kernel_sizes)
    sizes = tuple(per_axis_ints(k, spatial_dims, "kernel_sizes", i, caller) for i, k in enumerate(kernel_sizes))
    for i, k in enumerate(sizes):
        if math.prod(k) < 2:
            raise ValueError(f"{caller}: 'kernel_sizes' entry {i} must cover at least 2 voxels, got {k}.")
    if kernel_weights is None:
        weights = tuple(1.0 / num for _ in range(num))
    else:
        try:
            weights = tuple(float(w) for w in kernel_weights)
        except TypeError as e:
            raise ValueError(
                f"{caller}: 'kernel_weights' must be a sequence of numbers, got {kernel_weights!r}."
            ) from e
        total = sum(weights)
        if len(weights) != num:
            raise ValueError(
                f"{caller}: 'kernel_weights' must have one weight per kernel ({num} kernels), got {weights}."
            )
        if any(not math.isfinite(w) or w < 0 for w in weights) or abs(total - 1.0) > 1e-6:
            raise ValueError(f"{caller}: 'kernel_weights' must be >= 0 and sum to 1, got {weights} (sum {total:g}).")
    stride_list = _per_kernel(strides, num, "strides", caller)
    dilation_list = _per_kernel(dilations, num, "dilations", caller)
    return LNCCSettings(
        sizes,
        weights,
        tuple(per_axis_ints(s, spatial_dims, "strides", i, caller) for i, s in enumerate(stride_list)),
        tuple(per_axis_ints(d, spatial_dims, "dilations", i, caller) for i, d in enumerate(dilation_list)),
    )


def _check_fit(settings: LNCCSettings, spatial_shape: Sequence[int], caller: str) -> None:
    shape = tuple(int(n) for n in spatial_shape)
    for i, (k, d) in enumerate(zip(settings.kernel_sizes, settings.dilations)):
        if len(k) != len(shape):
            raise ValueError(
                f"{caller}: 'kernel_sizes' entry {i} has {len(k)} axes, the image has {len(shape)} spatial dims "
                f"(shape {shape})."
            )
        extent = tuple((ka - 1) * da + 1 for ka, da in zip(k, d))
        if any(e > n for e, n in zip(extent, shape)):
            raise ValueError(
                f"{caller}: 'kernel_sizes' entry {i} (kernel {k}, dilation {d}) has dilated extent {extent}, larger "
                f"than the image shape {shape}; use smaller kernels or dilations."
            )


def check_rule_options(
    kernel_weights: Sequence[float] | None,
    strides: IntOrTuple | Sequence[IntOrTuple] | None,
    dilations: IntOrTuple | Sequence[IntOrTuple] | None,
    caller: str,
) -> None:
    """With ``kernel_sizes=None`` the paper's rule sets weights, strides and dilations: refuse them explicitly."""
    options = (("kernel_weights", kernel_weights), ("strides", strides), ("dilations", dilations))
    given = [name for name, value in options if value is not None]
    if given:
        raise ValueError(
            f"{caller}: 'kernel_sizes' is None (the paper's rule, which also sets the weights, strides and "
            f"dilations) but {', '.join(repr(g) for g in given)} was given; pass 'kernel_sizes' as well."
        )


def resolve_lncc_settings(
    spatial_shape: Sequence[int],
    kernel_sizes: IntOrTuple | Sequence[IntOrTuple] | None,
    kernel_weights: Sequence[float] | None,
    strides: IntOrTuple | Sequence[IntOrTuple] | None,
    dilations: IntOrTuple | Sequence[IntOrTuple] | None,
    caller: str,
) -> LNCCSettings:
    """:func:`default_lncc_settings` if ``kernel_sizes`` is ``None``, else :func:`parse_lncc_settings`; then check
    that every window fits in ``spatial_shape``."""
    shape = tuple(int(n) for n in spatial_shape)
    if kernel_sizes is None:
        check_rule_options(kernel_weights, strides, dilations, caller)
        settings = default_lncc_settings(shape)
    else:
        settings = parse_lncc_settings(len(shape), kernel_sizes, kernel_weights, strides, dilations, caller=caller)
    _check_fit(settings, shape, caller)
    return settings
