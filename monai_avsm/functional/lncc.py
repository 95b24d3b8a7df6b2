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
r"""Window sums, localized NCC :math:`\kappa_s` (paper eq. 2) and multi-kernel LNCC (paper eq. 3), method spec §4.

A window of kernel size :math:`k = (k_1, \dots, k_D)`, stride :math:`s` and dilation :math:`d` (per axis) starting at
voxel :math:`p = s \odot o` covers the :math:`n = \prod_a k_a` voxels :math:`p + d \odot j`, :math:`0 \le j_a < k_a`.
Only *valid* windows are used (no padding): the windows are exactly the output grid of
``F.conv3d(x, ones(k), stride=s, dilation=d, padding=0)``, with :math:`\lfloor (N_a - ((k_a-1) d_a + 1)) / s_a
\rfloor + 1` windows along axis :math:`a`. Per window (the authors' easyreg ``LNCCLoss`` / mermaid ``LNCCSimilarity``):

.. math::

    c = \sum IT - \frac{\sum I \sum T}{n}, \quad
    v_I = \sum I^2 - \frac{(\sum I)^2}{n}, \quad
    v_T = \sum T^2 - \frac{(\sum T)^2}{n}, \quad
    \mathrm{ncc}^2 = \frac{c^2 + \epsilon_{nr}}{v_I v_T + \epsilon_{dr}}

and :math:`\text{mk-LNCC} = \sum_k w_k (1 - \overline{\mathrm{ncc}^2_k})`, the mean running over the windows and the
channels. The window sums cost :math:`O(N)` whatever the window size: separable prefix sums (a summed-area table, one
axis at a time, along the sub-lattice of step :math:`d`), and after each axis only the strided window positions are
kept, so later axes work on less data. The five statistics use float32 for float16/bfloat16 inputs (float64 for
float64), autocast is disabled, and each image is first shifted by its global mean (per sample and channel), which
leaves NCC unchanged and limits the cancellation in :math:`v_I`.

Masks (a project extension, not in the paper): :func:`mk_lncc` takes an optional binary fixed-image mask :math:`m`.
As :math:`m` is binary, the masked window moments are the window sums of :math:`x m, y m, (x m)^2, (y m)^2, (x m)(y m)`
(:math:`x, y` centred on the mask) with the constant :math:`n` replaced by the per-window count
:math:`n_o = \sum_{j \in o} m_j`; a window counts when :math:`n_o \ge f \prod_a k_a` (``mask_fraction``
:math:`f`), and each kernel's mean runs over the counting windows only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Union

import torch
from torch.autograd.function import once_differentiable

from monai_avsm.utils.validation import check_binary_mask, check_image_pair

__all__ = [
    "LNCCSettings",
    "box_sums",
    "check_rule_options",
    "default_lncc_settings",
    "global_ncc",
    "lncc_squared",
    "mk_lncc",
    "parse_lncc_settings",
    "resolve_lncc_settings",
    "valid_window_shape",
]

#: one kernel's size, stride or dilation: an int (the same on every axis) or one int per spatial axis
IntOrTuple = Union[int, Sequence[int]]


class LNCCSettings(NamedTuple):
    """Windows of an mk-LNCC, one entry per kernel, each a tuple with one value per spatial axis."""

    kernel_sizes: tuple[tuple[int, ...], ...]
    kernel_weights: tuple[float, ...]
    strides: tuple[tuple[int, ...], ...]
    dilations: tuple[tuple[int, ...], ...]


# ---------------------------------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------------------------------


def default_lncc_settings(spatial_shape: Sequence[int]) -> LNCCSettings:
    r"""The paper's window rule (supplementary A.1; easyreg ``LNCCLoss``, mermaid ``LNCCSimilarity``).

    With :math:`S` the smallest spatial size, cubic kernels :math:`k = \lfloor S \cdot r \rfloor`:

    - :math:`S \ge 128`: :math:`r = 1/16, 1/8, 1/4`, weights 0.1, 0.3, 0.6, dilation 2;
    - :math:`64 \le S < 128`: :math:`r = 1/4, 1/2`, weights 0.3, 0.7, dilation 2 (the paper's
      :math:`(\omega, s) = \{(0.3, S/4), (0.7, S/2)\}`);
    - :math:`S < 64`: :math:`r = 1/2`, weight 1, dilation 1;

    and stride :math:`\max(\lfloor (k+1)/4 \rfloor, 1)` for every kernel. For 80x192x192: k = 20 (stride 5, dilation
    2) and k = 40 (stride 10, dilation 2).

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
        strides.append((max(int((k + 1) / 4), 1),) * ndim)
        dilations.append((d,) * ndim)
    return LNCCSettings(tuple(kernels), weights, tuple(strides), tuple(dilations))


def _per_axis(value, ndim: int, name: str, index: int, caller: str) -> tuple[int, ...]:
    """One kernel's size, stride or dilation as ``ndim`` ints >= 1 (an int is repeated on every axis)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != ndim:
            raise ValueError(
                f"{caller}: '{name}' entry {index} must be an int or have {ndim} values (one per spatial axis), "
                f"got {values}."
            )
    else:
        values = (value,) * ndim
    if any(isinstance(v, bool) or not hasattr(v, "__index__") for v in values):
        raise TypeError(f"{caller}: '{name}' entry {index} must be an int or a sequence of ints, got {value!r}.")
    values = tuple(int(v) for v in values)
    if any(v < 1 for v in values):
        raise ValueError(f"{caller}: '{name}' entry {index} must be >= 1 on every axis, got {values}.")
    return values


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
    sizes = tuple(_per_axis(k, spatial_dims, "kernel_sizes", i, caller) for i, k in enumerate(kernel_sizes))
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
        tuple(_per_axis(s, spatial_dims, "strides", i, caller) for i, s in enumerate(stride_list)),
        tuple(_per_axis(d, spatial_dims, "dilations", i, caller) for i, d in enumerate(dilation_list)),
    )


def valid_window_shape(
    spatial_shape: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[int, ...]:
    r"""Number of valid windows per axis, :math:`\lfloor (N - ((k-1)d + 1)) / s \rfloor + 1` (0 if none fits)."""
    return tuple(
        max((int(n) - ((k - 1) * d + 1)) // s + 1, 0)
        for n, k, s, d in zip(spatial_shape, kernel_size, stride, dilation)
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


# ---------------------------------------------------------------------------------------------------------------------
# window sums along one axis (no autograd; in place where noted)
# ---------------------------------------------------------------------------------------------------------------------


def _axis_slice(ndim: int, dim: int, start: int, count: int, step: int) -> tuple:
    idx = [slice(None)] * ndim
    idx[dim] = slice(start, start + step * (count - 1) + 1, step)
    return tuple(idx)


def _prefix_sum_(x: torch.Tensor, dim: int, dilation: int) -> torch.Tensor:
    r"""In place: :math:`x_i \leftarrow \sum_{j \le i,\ j \equiv i \ (\mathrm{mod}\ d)} x_j` along ``dim``."""
    dim = dim % x.ndim
    length = x.shape[dim]
    if dilation >= length:
        return x
    if dim == x.ndim - 1 or x.device.type != "cpu":
        # contiguous axis (or a GPU): the library's scan, on each residue class of the dilated lattice
        if dilation == 1:
            x.cumsum_(dim)
        else:
            for r in range(dilation):
                x[_axis_slice(x.ndim, dim, r, (length - 1 - r) // dilation + 1, dilation)].cumsum_(dim)
        return x
    # outer axis on CPU: torch's strided scan is slow there; add whole slabs instead (each a vectorised op)
    for i in range(dilation, length, dilation):
        m = min(dilation, length - i)
        x.narrow(dim, i, m).add_(x.narrow(dim, i - dilation, m))
    return x


def _select_windows(c: torch.Tensor, dim: int, k: int, s: int, d: int, out: torch.Tensor | None = None) -> torch.Tensor:
    r"""Window sums from prefix sums ``c`` (of :func:`_prefix_sum_`):
    :math:`W_o = C_{p+(k-1)d} - C_{p-d}`, ``p = s o``."""
    dim = dim % c.ndim
    n = (c.shape[dim] - (k - 1) * d - 1) // s + 1
    hi = c[_axis_slice(c.ndim, dim, (k - 1) * d, n, s)]
    if out is None:
        shape = list(c.shape)
        shape[dim] = n
        out = torch.empty(shape, dtype=c.dtype, device=c.device)
    first = min(-(-d // s), n)  # windows with p - d < 0 have nothing to subtract
    if first > 0:
        out.narrow(dim, 0, first).copy_(hi.narrow(dim, 0, first))
    if n > first:
        lo = c[_axis_slice(c.ndim, dim, s * first - d, n - first, s)]
        torch.sub(hi.narrow(dim, first, n - first), lo, out=out.narrow(dim, first, n - first))
    return out


def _scatter_windows_(z: torch.Tensor, g: torch.Tensor, dim: int, k: int, s: int, d: int) -> torch.Tensor:
    """First half of the adjoint of a window sum: ``+g`` at each window start, ``-g`` one dilated kernel later."""
    dim = dim % z.ndim
    n, length = g.shape[dim], z.shape[dim]
    z[_axis_slice(z.ndim, dim, 0, n, s)] += g
    m = min(max(-(-(length - k * d) // s), 0), n)  # windows whose end marker k*d lies inside the axis
    if m > 0:
        z[_axis_slice(z.ndim, dim, k * d, m, s)] -= g.narrow(dim, 0, m)
    return z


def _expand_windows(g: torch.Tensor, dim: int, length: int, k: int, s: int, d: int) -> torch.Tensor:
    """Adjoint of a window sum along ``dim``: spread each window's value over its ``k`` voxels (new tensor)."""
    shape = list(g.shape)
    shape[dim] = length
    z = torch.zeros(shape, dtype=g.dtype, device=g.device)
    return _prefix_sum_(_scatter_windows_(z, g, dim, k, s, d), dim, d)


def _box_sums_raw(x, k, s, d, inplace: bool = False) -> torch.Tensor:
    ndim = len(k)
    y = x if inplace else x.clone()
    for a in range(ndim):  # outermost axis first: contiguous slabs, and every later axis sees fewer windows
        dim = a - ndim
        y = _select_windows(_prefix_sum_(y, dim, d[a]), dim, k[a], s[a], d[a])
    return y


def _box_sums_adjoint_raw(g, spatial_shape, k, s, d) -> torch.Tensor:
    ndim = len(k)
    for a in reversed(range(ndim)):
        g = _expand_windows(g, a - ndim, spatial_shape[a], k[a], s[a], d[a])
    return g


class _BoxSums(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, d):
        ctx.spatial_shape, ctx.k, ctx.s, ctx.d = tuple(x.shape[-len(k) :]), k, s, d
        return _box_sums_raw(x, k, s, d)

    @staticmethod
    def backward(ctx, g):
        return _BoxSumsAdjoint.apply(g, ctx.spatial_shape, ctx.k, ctx.s, ctx.d), None, None, None


class _BoxSumsAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, spatial_shape, k, s, d):
        ctx.k, ctx.s, ctx.d = k, s, d
        return _box_sums_adjoint_raw(g.contiguous(), spatial_shape, k, s, d)

    @staticmethod
    def backward(ctx, gg):
        return _BoxSums.apply(gg, ctx.k, ctx.s, ctx.d), None, None, None, None


def box_sums(
    x: torch.Tensor, kernel_size: IntOrTuple, stride: IntOrTuple = 1, dilation: IntOrTuple = 1
) -> torch.Tensor:
    r"""Sums over the valid windows of a ones-kernel: the output of ``F.conv{D}d(x, ones(k), stride, dilation)``.

    .. math:: W_o = \sum_{0 \le j < k} x_{s \odot o + d \odot j}

    computed channel by channel with separable prefix sums, at a cost independent of the kernel size. Differentiable
    (to any order: the backward pass is the adjoint, which spreads each window's gradient over its voxels). Computed in
    the dtype of ``x``.

    Args:
        x: ``(B, C, *S)`` with ``D = x.ndim - 2`` spatial axes (any ``D >= 1``).
        kernel_size: an int or ``D`` ints.
        stride: an int or ``D`` ints (default 1).
        dilation: an int or ``D`` ints (default 1).

    Returns:
        ``(B, C, *W)`` with ``W`` = :func:`valid_window_shape`.

    Raises:
        ValueError: if ``x`` has fewer than 3 dims or the dilated kernel does not fit in ``S``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        raise ValueError(
            f"box_sums: 'x' must be a (B, C, *S) tensor, got {tuple(x.shape) if isinstance(x, torch.Tensor) else x!r}."
        )
    ndim = x.ndim - 2
    k = _per_axis(kernel_size, ndim, "kernel_size", 0, "box_sums")
    s = _per_axis(stride, ndim, "stride", 0, "box_sums")
    d = _per_axis(dilation, ndim, "dilation", 0, "box_sums")
    extent = tuple((ka - 1) * da + 1 for ka, da in zip(k, d))
    if any(e > n for e, n in zip(extent, x.shape[2:])):
        raise ValueError(
            f"box_sums: 'kernel_size' {k} with dilation {d} has extent {extent}, larger than the spatial shape "
            f"{tuple(x.shape[2:])}."
        )
    return _BoxSums.apply(x, k, s, d)


# ---------------------------------------------------------------------------------------------------------------------
# local moments of two images for several windows at once
# ---------------------------------------------------------------------------------------------------------------------


def _stats_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


class _WindowMoments(torch.autograd.Function):
    """Window sums of ``I, T, I², T², IT`` (``I``, ``T`` shifted by their global means) for several windows.

    ``center=False`` skips the shift (the masked path passes images already centred on the mask and exactly 0 outside
    it, which must stay 0). Returns one ``(5, B, C, *W_k)`` tensor per window setting. The first (outermost) spatial
    axis is summed one quantity at a time in a reused image-sized buffer, the remaining axes on the five stacked,
    already reduced sums. Memory: three image-sized buffers in the forward pass (nothing image-sized is kept for the
    backward pass but references to the inputs), about five in the backward pass. First derivatives only.
    """

    @staticmethod
    def forward(ctx, pred, target, specs, dtype, center=True):
        ndim = pred.ndim - 2
        sdims = tuple(range(2, 2 + ndim))
        first = -ndim  # the outermost spatial axis
        ctx.specs, ctx.dtype, ctx.spatial_shape, ctx.center = specs, dtype, tuple(pred.shape[2:]), center
        ctx.set_materialize_grads(False)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            if center:
                mean_p = pred.mean(dim=sdims, keepdim=True, dtype=dtype)
                mean_t = target.mean(dim=sdims, keepdim=True, dtype=dtype)
            else:
                mean_p = pred.new_zeros(tuple(pred.shape[:2]) + (1,) * ndim, dtype=dtype)
                mean_t = target.new_zeros(tuple(target.shape[:2]) + (1,) * ndim, dtype=dtype)
            xc = torch.sub(pred, mean_p).to(dtype)  # sub promotes half precision to `dtype` already
            yc = torch.sub(target, mean_t).to(dtype)
            ctx.save_for_backward(pred, target, mean_p, mean_t)
            outs = []
            for k, s, d in specs:
                n_first = (ctx.spatial_shape[0] - (k[0] - 1) * d[0] - 1) // s[0] + 1
                outs.append(xc.new_empty((5,) + tuple(xc.shape[:2]) + (n_first,) + tuple(xc.shape[3:])))
            groups: dict[int, list[int]] = {}  # kernels that share the first axis' dilation share its prefix sums
            for i, (_, _, d) in enumerate(specs):
                groups.setdefault(d[0], []).append(i)
            work = torch.empty_like(xc)
            # quantities in the order I², T², IT, I, T: the last two may then be scanned in xc / yc in place
            for q in (2, 3, 4, 0, 1):
                for g, (dil, members) in enumerate(groups.items()):
                    if q < 2 and g == len(groups) - 1:
                        buf = xc if q == 0 else yc
                    else:
                        buf = work
                        if q < 2:
                            buf.copy_(xc if q == 0 else yc)
                        else:
                            torch.mul(xc if q != 3 else yc, yc if q != 2 else xc, out=buf)
                    _prefix_sum_(buf, first, dil)
                    for i in members:
                        k, s, d = specs[i]
                        _select_windows(buf, first, k[0], s[0], d[0], out=outs[i][q])
            del work, xc, yc
            for i, (k, s, d) in enumerate(specs):
                y = outs[i]
                for a in range(1, ndim):
                    dim = a - ndim
                    y = _select_windows(_prefix_sum_(y, dim, d[a]), dim, k[a], s[a], d[a])
                outs[i] = y
        return tuple(outs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        pred, target, mean_p, mean_t = ctx.saved_tensors
        need_p, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        specs, shape = ctx.specs, ctx.spatial_shape
        ndim = len(shape)
        sdims = tuple(range(2, 2 + ndim))
        first = -ndim
        if not (need_p or need_t) or all(g is None for g in grads):
            return None, None, None, None, None
        with torch.autocast(device_type=pred.device.type, enabled=False):
            # inner axes first (small tensors), then the first axis, shared by the kernels of equal dilation
            expanded: dict[int, list] = {}
            for i, g in enumerate(grads):
                if g is None:
                    continue
                k, s, d = specs[i]
                g = g.contiguous()
                for a in reversed(range(1, ndim)):
                    g = _expand_windows(g, a - ndim, shape[a], k[a], s[a], d[a])
                expanded.setdefault(d[0], []).append((g, k[0], s[0]))
            xc = torch.sub(pred, mean_p).to(ctx.dtype)
            yc = torch.sub(target, mean_t).to(ctx.dtype)

            def adjoint(q: int) -> torch.Tensor:
                total = None
                for dil, members in expanded.items():
                    z = torch.zeros_like(xc)
                    for g, k, s in members:
                        _scatter_windows_(z, g[q], first, k, s, dil)
                    _prefix_sum_(z, first, dil)
                    total = z if total is None else total.add_(z)
                return total

            grad_p = grad_t = None
            if need_p:
                grad_p = adjoint(0)
                grad_p.addcmul_(xc, adjoint(2), value=2.0)
            if need_t:
                grad_t = adjoint(1)
                grad_t.addcmul_(yc, adjoint(3), value=2.0)
            a4 = adjoint(4)
            # the global-mean shift: project out the mean (zero up to rounding, as NCC is shift invariant)
            if need_p:
                grad_p.addcmul_(yc, a4)
                if ctx.center:
                    grad_p.sub_(grad_p.mean(dim=sdims, keepdim=True))
                grad_p = grad_p.to(pred.dtype)
            if need_t:
                grad_t.addcmul_(xc, a4)
                if ctx.center:
                    grad_t.sub_(grad_t.mean(dim=sdims, keepdim=True))
                grad_t = grad_t.to(target.dtype)
        return grad_p, grad_t, None, None, None


def _ncc_squared_from_moments(
    m: torch.Tensor, n: int | torch.Tensor, smooth_nr: float, smooth_dr: float
) -> torch.Tensor:
    """Squared NCC per window from the window sums ``m`` ``(5, B, C, *W)`` and the number of voxels per window: the
    constant ``prod(k)``, or a per-window count tensor broadcastable to ``(B, C, *W)`` (the masked path, counts >= 1).
    """
    s_i, s_t, s_ii, s_tt, s_it = m.unbind(0)
    cross = s_it - s_i * s_t / n
    var_i = (s_ii - s_i * s_i / n).clamp_min(0.0)
    var_t = (s_tt - s_t * s_t / n).clamp_min(0.0)
    return (cross * cross + smooth_nr) / (var_i * var_t + smooth_dr)


def _check_mask_fraction(mask_fraction: float, caller: str) -> float:
    """``mask_fraction`` as a float in ``(0, 1]``."""
    if isinstance(mask_fraction, bool) or not isinstance(mask_fraction, (int, float)):
        raise TypeError(f"{caller}: 'mask_fraction' must be a number in (0, 1], got {mask_fraction!r}.")
    value = float(mask_fraction)
    if not (0.0 < value <= 1.0):  # also refuses NaN
        raise ValueError(f"{caller}: 'mask_fraction' must be in (0, 1], got {mask_fraction!r}.")
    return value


def _windows_ncc_squared(pred, target, settings: LNCCSettings, smooth_nr: float, smooth_dr: float) -> list:
    dtype = _stats_dtype(pred, target)
    specs = tuple(zip(settings.kernel_sizes, settings.strides, settings.dilations))
    with torch.autocast(device_type=pred.device.type, enabled=False):
        moments = _WindowMoments.apply(pred, target, specs, dtype)
        return [
            _ncc_squared_from_moments(m, math.prod(k), float(smooth_nr), float(smooth_dr))
            for m, k in zip(moments, settings.kernel_sizes)
        ]


def _masked_windows_ncc_squared(
    pred, target, mask: torch.Tensor, settings: LNCCSettings, smooth_nr, smooth_dr, mask_fraction: float, caller: str
) -> list:
    r"""Per kernel ``(ncc2, counting)``: the squared NCC over the masked voxels of every window ``(B, C, *W)`` and the
    counting windows :math:`n_o \ge f \prod k` as a 0/1 weight ``(B or 1, 1, *W)``. ``mask`` is the bool output of
    :func:`~monai_avsm.utils.validation.check_binary_mask`.

    The images are centred on the mask (per sample and channel) and set to exactly 0 outside it, so the window sums of
    :class:`_WindowMoments` (without its own shift) are the sums over the masked voxels of each window; the window
    counts :math:`n_o` are the box sums of the mask, exact integers (float64).
    """
    dtype = _stats_dtype(pred, target)
    ndim = pred.ndim - 2
    sdims = tuple(range(2, 2 + ndim))
    specs = tuple(zip(settings.kernel_sizes, settings.strides, settings.dilations))
    with torch.autocast(device_type=pred.device.type, enabled=False):
        zero = torch.zeros((), dtype=dtype, device=pred.device)
        total = mask.sum(dim=sdims, keepdim=True, dtype=dtype)  # (B|1, 1, 1...), >= 1
        centred = []
        for image in (pred, target):
            x = image.to(dtype)
            mean = torch.where(mask, x, zero).sum(dim=sdims, keepdim=True) / total
            centred.append(torch.where(mask, x - mean, zero))  # values outside the mask never enter (even NaN)
        moments = _WindowMoments.apply(centred[0], centred[1], specs, dtype, False)
        del centred
        mask64 = mask.to(torch.float64)
        out = []
        for (k, s, d), m in zip(specs, moments):
            size = math.prod(k)
            counts = _box_sums_raw(mask64, k, s, d).round_()  # voxels of the mask in each window, (B|1, 1, *W)
            need = max(math.ceil(mask_fraction * size - 1e-9), 1)
            counting = counts >= need
            per_sample = counting.flatten(1).sum(dim=1)
            if not bool((per_sample > 0).all()):
                b = int(torch.nonzero(per_sample == 0).flatten()[0])
                voxels = int(mask[b].sum())
                raise ValueError(
                    f"{caller}: kernel {k} (stride {s}, dilation {d}) has no window with at least {need} of its {size} "
                    f"voxels in the 'mask' ('mask_fraction' {mask_fraction:g}) for sample {b}, whose mask has {voxels} "
                    f"voxels; lower 'mask_fraction' or use smaller 'kernel_sizes'."
                )
            ncc2 = _ncc_squared_from_moments(m, counts.clamp_min(1.0).to(dtype), float(smooth_nr), float(smooth_dr))
            out.append((ncc2, counting.to(dtype)))
        return out


def lncc_squared(
    pred: torch.Tensor,
    target: torch.Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
    smooth_nr: float = 0.0,
    smooth_dr: float = 1e-5,
) -> torch.Tensor:
    r"""Squared NCC in every valid window (the summand of paper eq. 2, squared as in the authors' code).

    .. math:: \mathrm{ncc}^2_o = \frac{c_o^2 + \epsilon_{nr}}{v_{I,o}\, v_{T,o} + \epsilon_{dr}}

    with the centred window sums :math:`c, v_I, v_T` of the module docstring (negative variances from rounding are
    clamped to 0). Statistics in float32 (float64 for float64 inputs).

    Args:
        pred: ``(B, C, *S)`` image :math:`I` (e.g. the warped source).
        target: ``(B, C, *S)`` image :math:`T`.
        kernel_size, stride, dilation: an int or one int per spatial axis; the kernel may be even.
        smooth_nr: added to the squared cross term.
        smooth_dr: added to the product of the window sums of squares (1e-5, as the authors' code).

    Returns:
        ``(B, C, *W)``, ``W`` = :func:`valid_window_shape`, in the statistics dtype.
    """
    check_image_pair(pred, target, "lncc_squared")
    ndim = pred.ndim - 2
    settings = parse_lncc_settings(ndim, (kernel_size,), (1.0,), (stride,), (dilation,), caller="lncc_squared")
    _check_fit(settings, pred.shape[2:], "lncc_squared")
    return _windows_ncc_squared(pred, target, settings, smooth_nr, smooth_dr)[0]


def mk_lncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    kernel_sizes: IntOrTuple | Sequence[IntOrTuple] | None = None,
    kernel_weights: Sequence[float] | None = None,
    strides: IntOrTuple | Sequence[IntOrTuple] | None = None,
    dilations: IntOrTuple | Sequence[IntOrTuple] | None = None,
    smooth_nr: float = 0.0,
    smooth_dr: float = 1e-5,
    mask: torch.Tensor | None = None,
    mask_fraction: float = 0.5,
) -> torch.Tensor:
    r"""Multi-kernel LNCC loss per sample (paper eq. 2-3, squared NCC as in the authors' code).

    .. math:: L = \sum_k w_k \Big(1 - \frac{1}{C N_k} \sum_{c} \sum_{o} \mathrm{ncc}^2_{k,c,o}\Big)

    over the :math:`N_k` valid windows of kernel :math:`k` and the :math:`C` channels. 0 for identical images (up to
    :math:`\epsilon_{dr}`), at most 1 for ``smooth_nr = 0``.

    **Mask** (a project extension, not in the paper). With a binary fixed-image mask :math:`m`, every window statistic
    is taken over the masked voxels of the window only: the sums :math:`\sum I, \sum T, \sum I^2, \sum T^2,
    \sum IT` run over :math:`\{j : m_j = 1\}` and the constant :math:`n = \prod_a k_a` becomes the window's count
    :math:`n_o = \sum_{j \in o} m_j`. Only the windows with enough masked voxels count:

    .. math::
        O_k(m) = \{o : n_o \ge f \textstyle\prod_a k_a\}, \qquad
        L = \sum_k w_k \Big(1 - \frac{1}{C |O_k(m)|} \sum_{c} \sum_{o \in O_k(m)} \mathrm{ncc}^2_{k,c,o}\Big)

    with :math:`f` = ``mask_fraction``. Values of ``pred`` and ``target`` outside the mask never enter any statistic
    (nor receive a gradient). With :math:`f = 1` exactly the windows lying entirely inside the mask count; for a box
    mask whose corner is a multiple of every stride, :math:`L` is then the loss of the images cropped to the box (same
    explicit windows). An all-ones mask gives the unmasked loss.

    Args:
        pred: ``(B, C, *S)`` image :math:`I`.
        target: ``(B, C, *S)`` image :math:`T`.
        kernel_sizes: ``None``: the paper's rule (:func:`default_lncc_settings`) for ``S``, and then
            ``kernel_weights``, ``strides`` and ``dilations`` must be ``None`` too. Otherwise see
            :func:`parse_lncc_settings` (explicit kernels default to stride 1, dilation 1 and equal weights).
        kernel_weights, strides, dilations: see :func:`parse_lncc_settings`.
        smooth_nr: added to the squared cross term of each window.
        smooth_dr: added to the product of the window variances (as sums), 1e-5 as in the authors' code.
        mask: ``None`` (every voxel) or a binary mask on the grid of ``target`` (the fixed image), shape
            ``(B, 1, *S)`` or ``(1, 1, *S)`` (broadcast over the batch), broadcast over the channels; bool, integer or
            floating with values 0 and 1 only. Not differentiated.
        mask_fraction: :math:`f \in (0, 1]`, the smallest fraction of a window's voxels that must be in the mask for
            the window to count (default 0.5). Ignored without a mask.

    Returns:
        ``(B,)`` in the statistics dtype (float32, or float64 for float64 inputs).

    Raises:
        ValueError: for shapes that differ, invalid settings, or a dilated kernel larger than the image; a mask of the
            wrong shape, not binary, containing NaN, or selecting no voxel of a sample; a kernel with no counting
            window for a sample; ``mask_fraction`` outside ``(0, 1]``.
        TypeError: for non-floating images, a mask that is not a tensor, a non-numeric ``mask_fraction``.
    """
    check_image_pair(pred, target, "mk_lncc")
    settings = resolve_lncc_settings(pred.shape[2:], kernel_sizes, kernel_weights, strides, dilations, caller="mk_lncc")
    fraction = _check_mask_fraction(mask_fraction, "mk_lncc")
    if mask is None:
        return _mk_lncc(pred, target, settings, smooth_nr, smooth_dr)
    m = check_binary_mask(mask, target, "mask", "mk_lncc")
    return _mk_lncc(pred, target, settings, smooth_nr, smooth_dr, m, fraction, caller="mk_lncc")


def check_rule_options(kernel_weights, strides, dilations, caller: str) -> None:
    """With ``kernel_sizes=None`` the paper's rule sets weights, strides and dilations: refuse them explicitly."""
    options = (("kernel_weights", kernel_weights), ("strides", strides), ("dilations", dilations))
    given = [name for name, value in options if value is not None]
    if given:
        raise ValueError(
            f"{caller}: 'kernel_sizes' is None (the paper's rule, which also sets the weights, strides and "
            f"dilations) but {', '.join(repr(g) for g in given)} was given; pass 'kernel_sizes' as well."
        )


def resolve_lncc_settings(spatial_shape, kernel_sizes, kernel_weights, strides, dilations, caller: str):
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


def _mk_lncc(
    pred,
    target,
    settings: LNCCSettings,
    smooth_nr: float,
    smooth_dr: float,
    mask: torch.Tensor | None = None,
    mask_fraction: float = 0.5,
    caller: str = "mk_lncc",
) -> torch.Tensor:
    """mk-LNCC per sample for checked inputs and settings; ``mask``: ``None`` or the bool output of
    :func:`~monai_avsm.utils.validation.check_binary_mask` (``mask_fraction`` checked by the caller)."""
    loss = None
    if mask is None:
        maps = _windows_ncc_squared(pred, target, settings, smooth_nr, smooth_dr)
        for w, ncc2 in zip(settings.kernel_weights, maps):
            term = w * (1.0 - ncc2.flatten(1).mean(dim=1))  # mean over channels and windows
            loss = term if loss is None else loss + term
        return loss
    channels = pred.shape[1]
    maps = _masked_windows_ncc_squared(pred, target, mask, settings, smooth_nr, smooth_dr, mask_fraction, caller)
    for w, (ncc2, counting) in zip(settings.kernel_weights, maps):
        mean = (ncc2 * counting).flatten(1).sum(dim=1) / (channels * counting.flatten(1).sum(dim=1))
        term = w * (1.0 - mean)  # mean over channels and counting windows
        loss = term if loss is None else loss + term
    return loss


def global_ncc(
    pred: torch.Tensor,
    target: torch.Tensor,
    smooth_nr: float = 0.0,
    smooth_dr: float = 1e-5,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Global (not squared) NCC per sample and channel.

    .. math:: \mathrm{NCC} = \frac{\overline{(I - \bar I)(T - \bar T)} + \epsilon_{nr}}
        {\sqrt{\overline{(I-\bar I)^2}\; \overline{(T-\bar T)^2}} + \epsilon_{dr}}

    with means over the spatial axes; the authors' ``NCCLoss`` (affine warm-up) has the same form with
    :math:`\epsilon_{dr} = 10^{-7}`. Statistics in float32 (float64 for float64 inputs); the product under the square
    root is clamped at the smallest normal number, so constant images give finite values and gradients.

    Args:
        pred: ``(B, C, *S)``.
        target: ``(B, C, *S)``.
        mask: ``None`` or a binary mask on the grid of ``target``, ``(B, 1, *S)`` or ``(1, 1, *S)``: every mean runs
            over the masked voxels only (a project extension; values outside the mask never enter).

    Returns:
        ``(B, C)``.
    """
    check_image_pair(pred, target, "global_ncc")
    dtype = _stats_dtype(pred, target)
    m = None if mask is None else check_binary_mask(mask, target, "mask", "global_ncc").flatten(2)
    with torch.autocast(device_type=pred.device.type, enabled=False):
        x = pred.to(dtype).flatten(2)
        y = target.to(dtype).flatten(2)
        if m is None:
            x = x - x.mean(dim=2, keepdim=True)
            y = y - y.mean(dim=2, keepdim=True)
            cov = (x * y).mean(dim=2)
            var = (x * x).mean(dim=2) * (y * y).mean(dim=2)
        else:
            zero = torch.zeros((), dtype=dtype, device=pred.device)
            count = m.sum(dim=2, dtype=dtype)  # (B|1, 1), >= 1
            x = torch.where(m, x, zero)
            y = torch.where(m, y, zero)
            x = torch.where(m, x - (x.sum(dim=2) / count).unsqueeze(2), zero)
            y = torch.where(m, y - (y.sum(dim=2) / count).unsqueeze(2), zero)
            cov = (x * y).sum(dim=2) / count
            var = ((x * x).sum(dim=2) / count) * ((y * y).sum(dim=2) / count)
        return (cov + smooth_nr) / (var.clamp_min(torch.finfo(dtype).tiny).sqrt() + smooth_dr)
