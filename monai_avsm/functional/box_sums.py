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
r"""Box sums: the sums of an image over every valid window of a ones-kernel, in :math:`O(N)` whatever the window
size, and the five window moments of two images that the localized NCC (:mod:`monai_avsm.functional.lncc`) needs.

A window of kernel size :math:`k = (k_1, \dots, k_D)`, stride :math:`s` and dilation :math:`d` (per axis) starting at
voxel :math:`p = s \odot o` covers the :math:`n = \prod_a k_a` voxels :math:`p + d \odot j`, :math:`0 \le j_a < k_a`.
Only *valid* windows are used (no padding): the windows are exactly the output grid of
``F.conv3d(x, ones(k), stride=s, dilation=d, padding=0)``, with :math:`\lfloor (N_a - ((k_a-1) d_a + 1)) / s_a
\rfloor + 1` windows along axis :math:`a` (:func:`valid_window_shape`).

The sums are separable prefix sums (a summed-area table, one axis at a time, along the sub-lattice of step
:math:`d`), and after each axis only the strided window positions are kept, so later axes work on less data. Two
autograd Functions make :func:`box_sums` differentiable to any order (the backward pass of a box sum is its adjoint,
which spreads each window's value over its voxels, and the adjoint's backward pass is the box sum again).
:func:`window_moments` computes the window sums of :math:`I, T, I^2, T^2, IT` for several windows at once, sharing the
prefix sums of the outermost axis between the kernels of equal dilation; each image is first shifted by its global
mean (per sample and channel), which leaves NCC unchanged and limits the cancellation in the variances.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch.autograd.function import once_differentiable

__all__ = ["IntOrTuple", "WindowSpec", "box_sums", "per_axis_ints", "valid_window_shape", "window_moments"]

#: one kernel's size, stride or dilation: an int (the same on every axis) or one int per spatial axis
IntOrTuple = Union[int, Sequence[int]]

#: one window setting: (kernel size, stride, dilation), each with one int per spatial axis
WindowSpec = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def per_axis_ints(value: IntOrTuple, ndim: int, name: str, index: int, caller: str) -> tuple[int, ...]:
    """One kernel's size, stride or dilation as ``ndim`` ints >= 1 (an int is repeated on every axis).

    Args:
        value: an int or ``ndim`` ints.
        ndim: number of spatial axes.
        name, index: the argument's name and the kernel's index, for error messages.
        caller: the function named in error messages.

    Raises:
        ValueError: for a wrong number of values or a value below 1.
        TypeError: for values that are not integers (``bool`` included).
    """
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


def valid_window_shape(
    spatial_shape: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> tuple[int, ...]:
    r"""Number of valid windows per axis, :math:`\lfloor (N - ((k-1)d + 1)) / s \rfloor + 1` (0 if none fits)."""
    return tuple(
        max((int(n) - ((k - 1) * d + 1)) // s + 1, 0)
        for n, k, s, d in zip(spatial_shape, kernel_size, stride, dilation)
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
    k = per_axis_ints(kernel_size, ndim, "kernel_size", 0, "box_sums")
    s = per_axis_ints(stride, ndim, "stride", 0, "box_sums")
    d = per_axis_ints(dilation, ndim, "dilation", 0, "box_sums")
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


def window_moments(
    pred: torch.Tensor, target: torch.Tensor, windows: Sequence[WindowSpec], dtype: torch.dtype, center: bool = True
) -> tuple[torch.Tensor, ...]:
    r"""Window sums of :math:`I, T, I^2, T^2, IT` for several window settings at once.

    .. math:: M_{k,o} = \sum_{j \in o} \big(I_j,\ T_j,\ I_j^2,\ T_j^2,\ I_j T_j\big)

    with :math:`I, T` first shifted by their global means per sample and channel (``center=True``; NCC does not
    change). Computed in ``dtype`` with autocast disabled, in :math:`O(N)` per setting; differentiable once (first
    derivatives only). Memory: three image-sized buffers in the forward pass, about five in the backward pass.

    Args:
        pred: ``(B, C, *S)`` image :math:`I`, floating.
        target: ``(B, C, *S)`` image :math:`T`, same shape.
        windows: ``(kernel_size, stride, dilation)`` per setting, each a tuple of one int per spatial axis (e.g. the
            zipped fields of :class:`~monai_avsm.functional.windows.LNCCSettings`); every dilated kernel must fit in
            ``S``. Not checked here: the callers (:mod:`monai_avsm.functional.lncc`) check them.
        dtype: the statistics dtype (float32, or float64).
        center: ``False`` skips the mean shift (for images already centred and exactly 0 where they must not count).

    Returns:
        one ``(5, B, C, *W_k)`` tensor per setting, ``W_k`` = :func:`valid_window_shape`, in the order
        :math:`\sum I, \sum T, \sum I^2, \sum T^2, \sum IT`.
    """
    return _WindowMoments.apply(pred, target, tuple(windows), dtype, center)
