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
r"""Localized NCC :math:`\kappa_s` (paper eq. 2) and multi-kernel LNCC (paper eq. 3), method spec §4.

Per valid window (:mod:`monai_avsm.functional.box_sums`) with :math:`n` voxels, from the window sums of
:func:`~monai_avsm.functional.box_sums.window_moments` (the authors' easyreg ``LNCCLoss`` / mermaid
``LNCCSimilarity``):

.. math::

    c = \sum IT - \frac{\sum I \sum T}{n}, \quad
    v_I = \sum I^2 - \frac{(\sum I)^2}{n}, \quad
    v_T = \sum T^2 - \frac{(\sum T)^2}{n}, \quad
    \mathrm{ncc}^2 = \frac{c^2 + \epsilon_{nr}}{v_I v_T + \epsilon_{dr}}

and :math:`\text{mk-LNCC} = \sum_k w_k (1 - \overline{\mathrm{ncc}^2_k})`, the mean running over the windows and the
channels; the windows of each kernel are an :class:`~monai_avsm.functional.windows.LNCCSettings` (the paper's rule:
:func:`~monai_avsm.functional.windows.default_lncc_settings`). The five statistics use float32 for float16/bfloat16
inputs (float64 for float64) and autocast is disabled.

Masks (a project extension, not in the paper): :func:`mk_lncc` takes an optional binary fixed-image mask :math:`m`.
As :math:`m` is binary, the masked window moments are the window sums of :math:`x m, y m, (x m)^2, (y m)^2, (x m)(y m)`
(:math:`x, y` centred on the mask) with the constant :math:`n` replaced by the per-window count
:math:`n_o = \sum_{j \in o} m_j`; a window counts when :math:`n_o \ge f \prod_a k_a` (``mask_fraction``
:math:`f`), and each kernel's mean runs over the counting windows only.

The window settings are re-exported here (:class:`LNCCSettings`, :func:`default_lncc_settings`,
:func:`parse_lncc_settings`, :func:`resolve_lncc_settings`, :func:`check_rule_options`); they are defined in
:mod:`monai_avsm.functional.windows`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from monai_avsm.functional.box_sums import IntOrTuple, box_sums, window_moments
from monai_avsm.functional.windows import (
    LNCCSettings,
    check_rule_options,
    default_lncc_settings,
    parse_lncc_settings,
    resolve_lncc_settings,
)
from monai_avsm.utils.validation import check_binary_mask, check_image_pair

__all__ = [
    "LNCCSettings",
    "check_mask_fraction",
    "check_rule_options",
    "default_lncc_settings",
    "lncc_squared",
    "mk_lncc",
    "parse_lncc_settings",
    "resolve_lncc_settings",
]


def _stats_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype of the window statistics: float64 if an input is float64, else float32 (for half precision too)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


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


def check_mask_fraction(mask_fraction: float, caller: str) -> float:
    """``mask_fraction`` (the smallest fraction :math:`f` of a window's voxels in the mask for the window to count, see
    :func:`mk_lncc`) as a float in ``(0, 1]``.

    Raises:
        TypeError: if it is not a number (``bool`` included).
        ValueError: if it is outside ``(0, 1]`` or NaN.
    """
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
        moments = window_moments(pred, target, specs, dtype)
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
    :func:`~monai_avsm.functional.box_sums.window_moments` (``center=False``) are the sums over the masked voxels of
    each window; the window counts :math:`n_o` are the box sums of the mask, exact integers (float64).
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
        moments = window_moments(centred[0], centred[1], specs, dtype, False)
        del centred
        mask64 = mask.to(torch.float64)
        out = []
        for (k, s, d), m in zip(specs, moments):
            size = math.prod(k)
            counts = box_sums(mask64, k, s, d).round_()  # voxels of the mask in each window, (B|1, 1, *W)
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
        ``(B, C, *W)``, ``W`` = :func:`~monai_avsm.functional.box_sums.valid_window_shape`, in the statistics dtype.
    """
    check_image_pair(pred, target, "lncc_squared")
    settings = resolve_lncc_settings(
        pred.shape[2:], (kernel_size,), (1.0,), (stride,), (dilation,), caller="lncc_squared"
    )
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
    *,
    settings: LNCCSettings | None = None,
    caller: str = "mk_lncc",
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
        kernel_sizes: ``None``: the paper's rule (:func:`~monai_avsm.functional.windows.default_lncc_settings`) for
            ``S``, and then ``kernel_weights``, ``strides`` and ``dilations`` must be ``None`` too. Otherwise see
            :func:`~monai_avsm.functional.windows.parse_lncc_settings` (explicit kernels default to stride 1,
            dilation 1 and equal weights).
        kernel_weights, strides, dilations: see :func:`~monai_avsm.functional.windows.parse_lncc_settings`.
        smooth_nr: added to the squared cross term of each window.
        smooth_dr: added to the product of the window variances (as sums), 1e-5 as in the authors' code.
        mask: ``None`` (every voxel) or a binary mask on the grid of ``target`` (the fixed image), shape
            ``(B, 1, *S)`` or ``(1, 1, *S)`` (broadcast over the batch), broadcast over the channels; bool, integer or
            floating with values 0 and 1 only. Not differentiated.
        mask_fraction: :math:`f \in (0, 1]`, the smallest fraction of a window's voxels that must be in the mask for
            the window to count (default 0.5). Ignored without a mask.
        settings: the windows as an :class:`~monai_avsm.functional.windows.LNCCSettings` (e.g. from
            :func:`~monai_avsm.functional.windows.default_lncc_settings` or
            :func:`~monai_avsm.functional.windows.parse_lncc_settings`), instead of ``kernel_sizes``,
            ``kernel_weights``, ``strides`` and ``dilations`` (which must then be ``None``). Checked as explicit
            windows are.
        caller: the name in error messages (a wrapper such as :class:`~monai_avsm.losses.MKLNCCLoss` passes its own).

    Returns:
        ``(B,)`` in the statistics dtype (float32, or float64 for float64 inputs).

    Raises:
        ValueError: for shapes that differ, invalid settings, or a dilated kernel larger than the image; ``settings``
            together with ``kernel_sizes``, ``kernel_weights``, ``strides`` or ``dilations``; a mask of the wrong
            shape, not binary, containing NaN, or selecting no voxel of a sample; a kernel with no counting window for
            a sample; ``mask_fraction`` outside ``(0, 1]``.
        TypeError: for non-floating images, ``settings`` that is not an ``LNCCSettings``, a mask that is not a tensor,
            a non-numeric ``mask_fraction``.
    """
    check_image_pair(pred, target, caller)
    if settings is not None:
        if not isinstance(settings, LNCCSettings):
            raise TypeError(f"{caller}: 'settings' must be an LNCCSettings or None, got {type(settings).__name__}.")
        options = {
            "kernel_sizes": kernel_sizes,
            "kernel_weights": kernel_weights,
            "strides": strides,
            "dilations": dilations,
        }
        given = [name for name, value in options.items() if value is not None]
        if given:
            raise ValueError(
                f"{caller}: 'settings' sets the windows, but {', '.join(repr(g) for g in given)} was given as well; "
                f"pass one or the other."
            )
        kernel_sizes, kernel_weights, strides, dilations = settings
    settings = resolve_lncc_settings(pred.shape[2:], kernel_sizes, kernel_weights, strides, dilations, caller=caller)
    fraction = check_mask_fraction(mask_fraction, caller)
    loss = None
    if mask is None:
        maps = _windows_ncc_squared(pred, target, settings, smooth_nr, smooth_dr)
        for w, ncc2 in zip(settings.kernel_weights, maps):
            term = w * (1.0 - ncc2.flatten(1).mean(dim=1))  # mean over channels and windows
            loss = term if loss is None else loss + term
        return loss
    m = check_binary_mask(mask, target, "mask", caller)
    channels = pred.shape[1]
    maps = _masked_windows_ncc_squared(pred, target, m, settings, smooth_nr, smooth_dr, fraction, caller)
    for w, (ncc2, counting) in zip(settings.kernel_weights, maps):
        mean = (ncc2 * counting).flatten(1).sum(dim=1) / (channels * counting.flatten(1).sum(dim=1))
        term = w * (1.0 - mean)  # mean over channels and counting windows
        loss = term if loss is None else loss + term
    return loss
