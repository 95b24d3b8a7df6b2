"""Shared test data: real anatomy that ships with installed packages (nothing is downloaded)."""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F
from monai.transforms import LoadImage, ScaleIntensityRangePercentiles

from monai_avsm.demo import sample_image_path


@functools.lru_cache(maxsize=None)
def real_volume() -> torch.Tensor:
    """nibabel's real T1 (33x41x25, 2 mm), intensities 0.1/99.9 percentiles -> [0, 1], ``(1, 1, 33, 41, 25)``."""
    img = LoadImage(image_only=True, ensure_channel_first=True)(sample_image_path())
    img = ScaleIntensityRangePercentiles(lower=0.1, upper=99.9, b_min=0.0, b_max=1.0, clip=True)(img)
    return torch.as_tensor(img).float().unsqueeze(0)


def real_slice(size: tuple[int, int] = (64, 80), index: int = 12) -> torch.Tensor:
    """An axial slice of :func:`real_volume`, resized to ``size``: ``(1, 1, *size)``."""
    sl = real_volume()[..., index]
    return F.interpolate(sl, size=size, mode="bilinear", align_corners=True)


def tissue_labels(image: torch.Tensor, quantiles=(0.4, 0.75)) -> torch.Tensor:
    """Three intensity classes (background, darker, brighter tissue) of a real image, as integer labels."""
    q = torch.quantile(image.flatten(), torch.tensor(quantiles, dtype=image.dtype))
    return (image > q[0]).long() + (image > q[1]).long()


@functools.lru_cache(maxsize=None)
def sample_dataset(spacing: float = 4.0) -> str:
    """The sample data set (real brain templates, ``monai_avsm.apps.build_sample_dataset``) at ``spacing`` mm, built
    once per test session into a temporary folder (removed at exit); ``None`` without the demo packages."""
    import atexit
    import os
    import shutil
    import tempfile

    from monai_avsm.apps.sample import build_sample_dataset
    from monai_avsm.data.templates import missing_packages

    if missing_packages():
        return None
    tmp = tempfile.mkdtemp(prefix="avsm_sample_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    out = os.path.join(tmp, "sample")
    build_sample_dataset(out, spacing=spacing)
    return out


def correlated_pair(shape, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Two seeded random images ``p``, ``t = 0.7 p + noise`` (positive, partly correlated) for loss tests."""
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(shape, dtype=dtype, generator=g) * 3.0 + 2.0
    t = 0.7 * p + torch.rand(shape, dtype=dtype, generator=g)
    return p, t


def random_mask(shape, seed: int = 0, p: float = 0.7) -> torch.Tensor:
    """A blobby binary mask ``shape`` (smoothed noise thresholded), float 0/1."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(shape, dtype=torch.float64, generator=g)
    for a in range(2, len(shape)):
        noise = (noise + noise.roll(1, a) + noise.roll(-1, a)) / 3.0
    return (noise < torch.quantile(noise.flatten(), p)).double()


def per_axis(v, n: int) -> tuple:
    """An int repeated on ``n`` axes, or the given per-axis values as a tuple."""
    return (v,) * n if isinstance(v, int) else tuple(v)


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def conv_box_sums(x: torch.Tensor, k, s, d) -> torch.Tensor:
    """Window sums with a ones-kernel convolution (the authors' way); ``k``, ``s``, ``d`` one int per spatial axis."""
    b, c = x.shape[:2]
    ndim = x.ndim - 2
    y = CONV[ndim](x.reshape(b * c, 1, *x.shape[2:]), torch.ones((1, 1, *k), dtype=x.dtype), stride=s, dilation=d)
    return y.reshape(b, c, *y.shape[2:])


def brute_force_ncc_squared(p, t, kernel_size, stride, dilation, nr=0.0, dr=1e-5, mask=None):
    r"""The one brute-force reference of LNCC (paper eq. 2, squared): explicit Python loops over every valid window,
    in float64.

    Each window's :math:`\mathrm{ncc}^2 = (c^2 + nr) / (v_I v_T + dr)` from its voxels centred on their own mean;
    with a binary ``mask`` ``(B or 1, 1, *S)`` only the window's masked voxels enter. ``kernel_size``, ``stride`` and
    ``dilation`` are ints or one int per axis.

    Returns:
        ``(ncc2, counts)``: ``(B, C, *W)`` (0 for a window without masked voxels) and the number of (masked) voxels of
        each window ``(B, 1, *W)``.
    """
    p, t = p.double(), t.double()
    b, c, *shape = p.shape
    n = len(shape)
    k, s, d = per_axis(kernel_size, n), per_axis(stride, n), per_axis(dilation, n)
    windows = [(shape[a] - (k[a] - 1) * d[a] - 1) // s[a] + 1 for a in range(n)]
    ncc2 = torch.zeros(b, c, *windows, dtype=torch.float64)
    counts = torch.full((b, 1, *windows), float(math.prod(k)), dtype=torch.float64)
    m = None if mask is None else mask.double().expand(b, 1, *shape)
    for o in itertools.product(*[range(q) for q in windows]):
        idx = tuple(slice(o[a] * s[a], o[a] * s[a] + (k[a] - 1) * d[a] + 1, d[a]) for a in range(n))
        i, j = p[(Ellipsis,) + idx].reshape(b, c, -1), t[(Ellipsis,) + idx].reshape(b, c, -1)
        if m is None:
            i, j = i - i.mean(-1, keepdim=True), j - j.mean(-1, keepdim=True)
            cross = (i * j).sum(-1)
            ncc2[(Ellipsis,) + o] = (cross * cross + nr) / ((i * i).sum(-1) * (j * j).sum(-1) + dr)
            continue
        for bi in range(b):
            sel = m[bi, 0][idx].reshape(-1) > 0
            counts[(bi, 0) + o] = float(sel.sum())
            if not bool(sel.any()):
                continue
            ib, jb = i[bi][:, sel], j[bi][:, sel]
            ib, jb = ib - ib.mean(-1, keepdim=True), jb - jb.mean(-1, keepdim=True)
            cross = (ib * jb).sum(-1)
            ncc2[(bi, slice(None)) + o] = (cross * cross + nr) / ((ib * ib).sum(-1) * (jb * jb).sum(-1) + dr)
    return ncc2, counts


def brute_force_mk_lncc(p, t, kernels, weights, strides, dilations, nr=0.0, dr=1e-5, mask=None, mask_fraction=0.5):
    """mk-LNCC per sample (paper eq. 3) from :func:`brute_force_ncc_squared`: ``sum_k w_k (1 - mean ncc2_k)``, the
    mean over the channels and the windows, or with a ``mask`` over the windows with at least ``mask_fraction`` of
    their voxels in it (float64)."""
    c = p.shape[1]
    loss = torch.zeros(p.shape[0], dtype=torch.float64)
    for k, w, s, d in zip(kernels, weights, strides, dilations):
        ncc2, counts = brute_force_ncc_squared(p, t, k, s, d, nr, dr, mask)
        size = math.prod(per_axis(k, p.ndim - 2))
        counting = (counts >= (mask_fraction * size - 1e-9) if mask is not None else counts > 0).double()
        loss += w * (1.0 - (ncc2 * counting).flatten(1).sum(1) / (c * counting.flatten(1).sum(1)))
    return loss
