"""Shared test data: real anatomy that ships with installed packages (nothing is downloaded)."""

from __future__ import annotations

import functools

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
