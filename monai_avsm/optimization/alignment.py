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
r"""Initial (world-space) alignment of two scans from any starting position: centre of mass, a multi-start rotation
search scored by the similarity, then affine-opt on two resolutions; the best-scoring candidate wins.

Both images keep their own voxel grids and voxel -> world (RAS mm) matrices (MONAI's ``MetaTensor.affine``); the
result is a world **pull-back** matrix ``T`` ``(D + 1, D + 1)``: the fixed world point ``p`` is matched to the moving
world point ``q = T p`` (the convention of :func:`~monai_avsm.functional.theta_to_world_affine`, of ITK's and ANTs'
fixed -> moving transforms, and of ``resample_world(moving, moving_affine, T p)``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence

import torch

from monai_avsm.functional.world import (
    apply_affine_points,
    as_world_matrix,
    normalized_to_world,
    resample_world,
    theta_to_world_affine,
    voxel_world_points,
    world_to_normalized,
)
from monai_avsm.losses.global_ncc import GlobalNCCLoss
from monai_avsm.optimization.affine import affine_opt
from monai_avsm.optimization.utils import (
    MIN_SCALE_SIZE,
    Similarity,
    default_similarity,
    downsample_image,
    per_sample_similarity,
    seeded,
)
from monai_avsm.transforms.functional import rotation_matrix
from monai_avsm.utils.options import look_up_option
from monai_avsm.utils.validation import check_finite, check_spatial_tensor

__all__ = ["center_of_mass_alignment", "initial_alignment"]

logger = logging.getLogger("monai_avsm.optimization")

#: ``mode`` values of :func:`initial_alignment`
ALIGNMENT_MODES = ("full", "select", "com")
#: candidate names that :func:`initial_alignment` produces itself (a user candidate may not use them)
RESERVED_NAMES = ("identity", "center_of_mass", "rotation_search", "affine_coarse", "affine_fine")
_QUANTILE_SAMPLES = 1 << 18  # voxels drawn (by a fixed stride) to estimate the intensity percentiles


# ---------------------------------------------------------------------------------------------------------------------
# intensities and centre of mass


def _robust_scale(image: torch.Tensor, percentiles: tuple[float, float]) -> torch.Tensor:
    r"""Per channel, ``clip((I - P_lo) / (P_hi - P_lo), 0, 1)`` (float32, or float64 for float64 input).

    The percentiles are estimated on at most :data:`_QUANTILE_SAMPLES` voxels taken with a fixed stride (no random
    draw). When they coincide (an image that is mostly one value), the minimum and maximum are used instead.
    """
    dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    image = image.to(dtype)
    out = torch.empty_like(image)
    q = torch.tensor([percentiles[0] / 100.0, percentiles[1] / 100.0], dtype=dtype, device=image.device)
    for c in range(image.shape[1]):
        flat = image[:, c].reshape(-1)
        stride = max(1, math.ceil(flat.numel() / _QUANTILE_SAMPLES))
        lo, hi = torch.quantile(flat[::stride], q).tolist()
        if not hi > lo:
            lo, hi = float(flat.min()), float(flat.max())
        out[:, c] = ((image[:, c] - lo) / (hi - lo)).clamp_(0.0, 1.0)
    return out


def _center_world(weights: torch.Tensor, affine: torch.Tensor, name: str, caller: str) -> torch.Tensor:
    r"""Weighted centre of a grid in world coordinates, ``A (\sum_i w_i i / \sum_i w_i)`` ``(D,)`` float64.

    The centroid of the world points equals the world point of the index centroid because ``A`` is affine; the
    index centroid is computed from the ``D`` marginal sums (no coordinate grid is built).
    """
    ndim = weights.ndim
    total = weights.sum(dtype=torch.float64)
    if not float(total) > 0:
        raise ValueError(f"{caller}: '{name}' has no intensity above its lower percentile inside the mask.")
    index = []
    for axis in range(ndim):
        marginal = weights.sum(dim=[a for a in range(ndim) if a != axis], dtype=torch.float64)
        index.append((marginal * torch.arange(weights.shape[axis], dtype=torch.float64, device=weights.device)).sum())
    index = torch.stack(index) / total
    return affine[:ndim, :ndim] @ index + affine[:ndim, ndim]


def _translation(shift: torch.Tensor) -> torch.Tensor:
    """The homogeneous matrix of ``p -> p + shift`` (float64)."""
    ndim = shift.shape[0]
    out = torch.eye(ndim + 1, dtype=torch.float64, device=shift.device)
    out[:ndim, ndim] = shift
    return out


def _about_centres(rotation: torch.Tensor, fixed_centre: torch.Tensor, moving_centre: torch.Tensor) -> torch.Tensor:
    r"""``p -> c_m + R (p - c_f)``: ``R`` about the fixed centre, which is sent to the moving centre."""
    ndim = rotation.shape[0]
    out = torch.eye(ndim + 1, dtype=torch.float64, device=fixed_centre.device)
    out[:ndim, :ndim] = rotation.to(out)
    out[:ndim, ndim] = moving_centre - out[:ndim, :ndim] @ fixed_centre
    return out


def _centres(
    moving01: torch.Tensor,
    fixed01: torch.Tensor,
    moving_affine: torch.Tensor,
    fixed_affine: torch.Tensor,
    mask: torch.Tensor | None,
    moving_mask: torch.Tensor | None,
    caller: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """World centres of mass ``(c_m, c_f)`` of robustly scaled images (channel mean as the weight)."""
    w_fixed = fixed01[0].mean(dim=0)
    w_moving = moving01[0].mean(dim=0)
    if mask is not None:
        w_fixed = w_fixed * mask
    if moving_mask is not None:
        w_moving = w_moving * moving_mask
    return (
        _center_world(w_moving, moving_affine, "moving", caller),
        _center_world(w_fixed, fixed_affine, "fixed", caller),
    )


def center_of_mass_alignment(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    moving_affine,
    fixed_affine,
    mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    intensity_percentiles: Sequence[float] = (1.0, 99.0),
) -> torch.Tensor:
    r"""World translation that sends the fixed image's intensity centre of mass to the moving image's.

    With :math:`w(i) = \mathrm{clip}((I(i) - P_{lo}) / (P_{hi} - P_{lo}), 0, 1)` (robust to the arbitrary scale of MRI
    and to a few bright voxels; channel mean for several channels) and the voxel -> world matrix :math:`A`,

    .. math::

        c = A \begin{pmatrix} \sum_i w(i)\, i / \sum_i w(i) \\ 1 \end{pmatrix}, \qquad
        T = \begin{pmatrix} I & c_m - c_f \\ 0 & 1 \end{pmatrix}, \qquad q = T p = p + c_m - c_f .

    A few passes over each image (about 50 ms for a 128x144x128 + 136x128x130 pair on one shared CPU core): the
    ``--fast`` initialisation.

    Args:
        moving: ``(1, C, *S_m)`` on its own grid, 2D or 3D.
        fixed: ``(1, C, *S_f)``; any shape, spacing and direction.
        moving_affine, fixed_affine: voxel (torch axis order) -> world matrices ``(D + 1, D + 1)``.
        mask: optional fixed-image mask ``(*S_f)``, ``(1, *S_f)`` or ``(1, 1, *S_f)`` (bool or 0/1): only its voxels
            weigh (e.g. the brain, to ignore the neck of a larger field of view).
        moving_mask: the same for the moving image.
        intensity_percentiles: ``(lower, upper)`` percentiles mapped to 0 and 1.

    Returns:
        the world pull-back matrix ``T`` ``(D + 1, D + 1)``, float64, on the images' device.

    Raises:
        ValueError: wrong dims, NaN/Inf, blank (constant) images, singular affines, ill masks or percentiles.
        TypeError: non-tensor or non-floating images.
    """
    caller = "center_of_mass_alignment"
    moving, fixed, a_m, a_f, ndim = _check_images(moving, fixed, moving_affine, fixed_affine, caller)
    pct = _check_percentiles(intensity_percentiles, caller)
    mask = _check_mask(mask, fixed.shape[2:], "mask", caller)
    moving_mask = _check_mask(moving_mask, moving.shape[2:], "moving_mask", caller)
    c_m, c_f = _centres(_robust_scale(moving, pct), _robust_scale(fixed, pct), a_m, a_f, mask, moving_mask, caller)
    return _translation(c_m - c_f)


# ---------------------------------------------------------------------------------------------------------------------
# working grids


def _coarse_grid(image: torch.Tensor, affine: torch.Tensor, spacing: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``image`` ``(1, C, *N)`` on a grid of about ``spacing`` mm spanning the same domain (corner voxel centres
    kept), with its voxel -> world matrix.

    ``n_a = clamp(round((N_a - 1) s_a / spacing) + 1, 4, N_a)`` voxels per axis (``s_a`` the voxel size, the norm of
    column ``a`` of ``A``); coarse voxel ``k`` sits at fine voxel ``k f_a``, ``f_a = (N_a - 1) / (n_a - 1)``, so
    ``A_c = A \mathrm{diag}(f, 1)`` and both grids have the same normalised -> world matrix. The image is sampled by
    :func:`~monai_avsm.optimization.utils.downsample_image` (Gaussian anti-aliasing, then linear interpolation).
    """
    ndim = image.ndim - 2
    full = tuple(image.shape[2:])
    sizes = torch.linalg.norm(affine[:ndim, :ndim], dim=0).tolist()
    shape = tuple(min(n, max(MIN_SCALE_SIZE, int(round((n - 1) * s / spacing)) + 1)) for n, s in zip(full, sizes))
    if shape == full:
        return image, affine
    scale = torch.ones(ndim + 1, dtype=torch.float64, device=affine.device)
    scale[:ndim] = torch.tensor([(n - 1) / (k - 1) for n, k in zip(full, shape)], dtype=torch.float64)
    return downsample_image(image, shape), affine @ torch.diag(scale)


class _Level:
    """One working resolution: the fixed image on its coarse grid (with its world points) and the moving image on its
    own coarse grid, sampled through a world matrix on demand."""

    def __init__(self, moving01, moving_affine, fixed01, fixed_affine, spacing: float, caller: str) -> None:
        self.fixed, self.fixed_affine = _coarse_grid(fixed01, fixed_affine, spacing)
        self.moving, self.moving_affine = _coarse_grid(moving01, moving_affine, spacing)
        self.shape = tuple(self.fixed.shape[2:])
        self.points = voxel_world_points(self.fixed_affine, self.shape)  # (D, *shape) float64
        self.caller = caller

    def coarser(self, spacing: float) -> _Level:
        """The level at ``spacing`` (>= this one's) built from this level's images."""
        return _Level(self.moving, self.moving_affine, self.fixed, self.fixed_affine, spacing, self.caller)

    def warp(self, matrix: torch.Tensor) -> torch.Tensor:
        """The moving image at ``T p`` for every voxel ``p`` of the fixed grid, ``(1, C, *shape)``."""
        return resample_world(self.moving, self.moving_affine, apply_affine_points(matrix, self.points))

    def score(self, matrix: torch.Tensor, similarity: Similarity) -> float:
        with torch.no_grad():
            return float(per_sample_similarity(similarity, self.warp(matrix), self.fixed, self.caller)[0])

    def refine(self, matrix: torch.Tensor, similarity: Similarity, iterations: int, lr: float, progress, seed):
        r"""affine-opt from ``T``, composed back into a world matrix.

        affine-opt needs two tensors of one shape. The moving image is resampled onto a *box grid* of the fixed
        grid's shape, axis-aligned with the moving grid (no rotation, so no interpolation texture tied to ``T``):
        the bounding box, in the moving grid's normalised coordinates, of the fixed domain's corners mapped by
        ``T``, clipped to ``[-1, 1]``. With ``W_b`` and ``W_f`` the normalised -> world matrices of the box and the
        fixed grid, affine-opt starts at :math:`\Theta_0 = W_b^{-1} T W_f` and its result is
        :math:`T' = W_b \Theta W_f^{-1}` (:func:`~monai_avsm.functional.theta_to_world_affine`). (Resampling the
        moving image through ``T`` itself and starting at the identity would bias the result towards ``T``: the
        identity is the one warp that adds no second interpolation blur.)
        """
        ndim = len(self.shape)
        box_affine = self._box_affine(matrix)
        with torch.no_grad():
            moving = resample_world(self.moving, self.moving_affine, voxel_world_points(box_affine, self.shape))
        w_f = normalized_to_world(self.fixed_affine, self.shape)
        theta0 = (world_to_normalized(box_affine, self.shape) @ matrix.to(w_f) @ w_f)[:ndim]
        out = affine_opt(
            moving, self.fixed, scales=(1.0,), iterations=(iterations,), lr=lr, initial_theta=theta0[None].float(),
            similarity=similarity, progress=progress, seed=seed,
        )  # fmt: skip
        result = theta_to_world_affine(out["affine"], self.fixed_affine, self.shape, box_affine, self.shape)
        return result.to(matrix), out["iterations"][0]

    def _box_affine(self, matrix: torch.Tensor) -> torch.Tensor:
        """Voxel -> world matrix of the box grid (shape ``self.shape``) of :meth:`refine`."""
        ndim = len(self.shape)
        w_m = normalized_to_world(self.moving_affine, self.moving.shape[2:])
        to_moving = torch.linalg.inv(w_m) @ matrix.to(w_m) @ normalized_to_world(self.fixed_affine, self.shape)
        corners = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=ndim)), dtype=torch.float64).T
        v = apply_affine_points(to_moving, corners.to(w_m.device))  # (D, 2^D)
        lo, hi = v.min(dim=1).values.clamp(-1.0, 1.0), v.max(dim=1).values.clamp(-1.0, 1.0)
        small = (hi - lo) < 0.1  # the fixed domain maps (almost) outside the moving one: keep that axis whole
        lo, hi = torch.where(small, -torch.ones_like(lo), lo), torch.where(small, torch.ones_like(hi), hi)
        box = torch.eye(ndim + 1, dtype=torch.float64, device=w_m.device)  # box normalised -> moving normalised
        box[:ndim, :ndim] = torch.diag((hi - lo) / 2)
        box[:ndim, ndim] = (hi + lo) / 2
        n2i = normalized_to_world(torch.eye(ndim + 1, dtype=torch.float64, device=w_m.device), self.shape)
        return w_m @ box @ torch.linalg.inv(n2i)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block, the previous count restored after (``None``: no change)."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _rotations(angles_deg: Sequence[float], ndim: int, device) -> list[tuple[str, torch.Tensor]]:
    """Every rotation of the grid ``angles^k`` (``k = 1`` in 2D, Euler angles about axes 0, 1, 2 in 3D) but the
    identity, named after its angles in degrees."""
    out = []
    for combo in itertools.product(sorted(set(float(a) for a in angles_deg)), repeat=1 if ndim == 2 else 3):
        if all(a == 0 for a in combo):
            continue
        rot = rotation_matrix([math.radians(a) for a in combo]).to(device)
        out.append((f"rotation({','.join(f'{a:g}' for a in combo)})", rot))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# the alignment


def initial_alignment(
    moving: torch.Tensor,
    fixed: torch.Tensor,
    moving_affine,
    fixed_affine,
    *,
    mode: str = "full",
    candidates: Mapping[str, torch.Tensor] | None = None,
    similarity: Similarity | None = None,
    rotation_angles: Sequence[float] = (-40.0, -20.0, 0.0, 20.0, 40.0),
    rotation_starts: int = 3,
    affine_iterations: Sequence[int] = (40, 25),
    affine_lr: Sequence[float] = (1e-2, 3e-3),
    working_spacing: Sequence[float] = (6.0, 3.0),
    intensity_percentiles: Sequence[float] = (1.0, 99.0),
    mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    max_seconds: float | None = None,
    progress: bool = False,
    seed: int | None = None,
    num_threads: int | None = None,
) -> dict:
    r"""Initial world alignment of a moving scan to a fixed scan from any starting position.

    Both images keep their own grids; the result is a world pull-back matrix ``T`` (fixed world point ``p`` -> moving
    world point ``q = T p``). Steps (``mode="full"``):

    1. **Centre of mass** (:func:`center_of_mass_alignment`): :math:`T_{com} = [I \mid c_m - c_f]` on robustly
       scaled intensities (percentiles ``intensity_percentiles`` -> [0, 1]).
    2. **Rotation search** on the *search grid* (the fixed domain at ``working_spacing[0]`` mm, both images
       anti-aliased): every rotation of the Euler-angle grid ``rotation_angles^3`` (``rotation_angles`` in 2D) about
       the centres, :math:`T_R(p) = c_m + R (p - c_f)`, together with the identity, :math:`T_{com}` and the given
       ``candidates``, is scored by the search similarity

       .. math:: s(T) = \mathrm{Sim}\big(M(T p_j),\ F(p_j)\big)_{j \in \text{search grid}},

       the moving image sampled at the world points :math:`T p_j` (:func:`~monai_avsm.functional.resample_world`).
       A rotation grid (multi-start) is used instead of principal axes: brains are close to symmetric ellipsoids, so
       their principal axes are ill-defined and the sign choices would need scoring anyway.
    3. **Coarse affine** on the search grid: from each of the ``rotation_starts`` best-scoring starts ``T``, the
       moving image is resampled onto a grid of the fixed grid's shape, axis-aligned with the moving grid and covering
       ``T`` (fixed domain) (normalised -> world matrix :math:`W_b`), and :func:`~monai_avsm.optimization.affine_opt`
       optimises the normalised :math:`\Theta` of that pair from :math:`\Theta_0 = W_b^{-1} T W_f`; it is composed
       back into the world as :math:`T' = W_b \Theta W_f^{-1}` (:func:`~monai_avsm.functional.theta_to_world_affine`,
       :math:`W_f` the fixed grid's normalised -> world matrix). The best-scoring result is kept.
    4. **Fine affine**: the same on the *refinement grid* (``working_spacing[1]`` mm) with the final similarity.
    5. **Selection**: the identity, :math:`T_{com}`, every given candidate, the search winner and both affine results
       are scored by the final similarity on the refinement grid; the lowest score wins. The result is therefore
       never worse (by that score) than the identity, the header alignment, or any candidate such as the network's
       affine.

    ``mode="select"`` runs steps 1 and 5 only (the identity, the centre of mass and the given candidates, scored;
    about 0.2 s for a 128x144x128 pair); ``mode="com"`` returns step 1 (about 50 ms, no scoring: the ``--fast``
    path). ``mode="full"`` takes about 1.5 s for that pair (1.0 s CPU, one thread; ``benchmarks/bench_alignment.py``).

    Similarities (lower is better; ``(pred, target) -> scalar or (B,)``): ``similarity=None`` uses global NCC
    (:class:`~monai_avsm.losses.GlobalNCCLoss`) for steps 2-3, whose wide basin suits the coarse level, and
    affine-opt's full-scale mk-LNCC (:func:`~monai_avsm.optimization.utils.default_similarity` for the refinement
    grid) for steps 4-5. A given ``similarity`` is used for every step, e.g.
    ``monai.losses.GlobalMutualInformationLoss()`` for other contrasts (the images it sees are in [0, 1]).

    Args:
        moving: ``(1, C, *S_m)`` floating image on its own grid, 2D or 3D.
        fixed: ``(1, C, *S_f)``; shape, spacing and direction may differ from ``moving``.
        moving_affine, fixed_affine: voxel (torch axis order) -> world (RAS mm) matrices ``(D + 1, D + 1)``
            (tensor or array; MONAI's ``MetaTensor.affine``).
        mode: ``"full"``, ``"select"`` or ``"com"`` (above).
        candidates: more starts, ``name -> (D + 1, D + 1)`` world pull-back matrices (e.g. ``{"network":
            theta_to_world_affine(net_theta, ...)}``); names must not be one of :data:`RESERVED_NAMES`.
        similarity: see above.
        rotation_angles: angles in degrees per axis of the rotation grid (``()`` or ``(0,)``: no rotations; the
            identity, the centre of mass and the candidates are still scored and refined);
            the default 5^3 - 1 = 124 rotations up to 40 degrees per axis leave every rotation of up to 45 degrees
            within 16 degrees of one of them (60 degrees: within 22), which the coarse affine step corrects.
        rotation_starts: how many of the best search candidates step 3 refines (>= 1).
        affine_iterations: Adam iterations of steps 3 and 4 (0 skips a step).
        affine_lr: Adam learning rates of steps 3 and 4 (normalised parameters).
        working_spacing: ``(search, refinement)`` grid spacings in mm (never finer than the fixed grid).
        intensity_percentiles: ``(lower, upper)`` percentiles mapped to 0 and 1 (per image and channel).
        mask, moving_mask: optional masks for the centres of mass (see :func:`center_of_mass_alignment`).
        max_seconds: wall-time budget: once spent, the remaining search and optimisation steps are skipped (the
            selection always runs); ``None``: no limit.
        progress: progress bars / log lines of affine-opt and one log line per step.
        seed: seed of torch's generators during the call (the caller's state is restored); the algorithm itself
            draws no random numbers.
        num_threads: torch's intra-op threads during the call (``torch.set_num_threads``, restored afterwards;
            process-wide, so not for concurrent calls); ``None`` keeps the caller's setting. The work is many small
            ops (10^4-10^5 voxels): on a CPU shared with other jobs, 2 threads ran 10-50 times slower than 1
            (OpenMP threads waiting for each other); idle cores were not available to measure.

    Returns:
        dict with ``"matrix"`` (the chosen ``T``, ``(D + 1, D + 1)`` float64, images' device), ``"chosen"`` (its
        name), ``"score"`` (its final score; ``None`` in ``"com"`` mode), ``"candidates"`` (``name -> {"score",
        "matrix"}``, scores on the refinement grid), ``"search"`` (``{"scores": name -> search score, "starts":
        names refined by step 3, "best": the search winner}``), ``"iterations"`` (``{"coarse": [per start],
        "fine": n}``), ``"seconds"`` (per step and ``"total"``), ``"grids"`` (search and refinement shapes) and
        ``"truncated"`` (whether ``max_seconds`` cut steps).

    Raises:
        ValueError: wrong dims, a batch other than 1, channels that differ, NaN/Inf, blank (constant) images,
            singular or non-finite affines, ill candidates, masks or options.
        TypeError: non-tensor or non-floating images, a similarity that is not callable.

    Example::

        from monai_avsm.functional import apply_affine_points, resample_world, theta_to_world_affine
        from monai_avsm.functional import voxel_world_points
        from monai_avsm.optimization import initial_alignment

        # moving (1, 1, *S_m), fixed (1, 1, *S_f) as read from their files, with their voxel -> RAS matrices
        net = theta_to_world_affine(theta, fixed_work_affine, fixed_work_shape, moving_work_affine, moving_work_shape)
        out = initial_alignment(moving, fixed, moving_affine, fixed_affine, candidates={"network": net})
        q = apply_affine_points(out["matrix"], voxel_world_points(fixed_affine, fixed.shape[2:]))
        warped = resample_world(moving, moving_affine, q)  # (1, 1, *S_f): the moving image on the fixed grid
    """
    caller = "initial_alignment"
    start = time.perf_counter()
    mode = look_up_option(mode, ALIGNMENT_MODES)
    moving, fixed, a_m, a_f, ndim = _check_images(moving, fixed, moving_affine, fixed_affine, caller)
    pct = _check_percentiles(intensity_percentiles, caller)
    mask = _check_mask(mask, fixed.shape[2:], "mask", caller)
    moving_mask = _check_mask(moving_mask, moving.shape[2:], "moving_mask", caller)
    user = _check_candidates(candidates, ndim, a_f.device, caller)
    if similarity is not None and not callable(similarity):
        raise TypeError(f"{caller}: 'similarity' must be callable (pred, target) -> loss, got {type(similarity)}.")
    angles = _check_angles(rotation_angles, caller)
    if isinstance(rotation_starts, bool) or int(rotation_starts) != rotation_starts or rotation_starts < 1:
        raise ValueError(f"{caller}: 'rotation_starts' must be an integer >= 1, got {rotation_starts!r}.")
    iters = _check_pair_of(affine_iterations, "affine_iterations", caller, integer=True)
    lrs = _check_pair_of(affine_lr, "affine_lr", caller, positive=True)
    spacing = _check_pair_of(working_spacing, "working_spacing", caller, positive=True)
    if max_seconds is not None and not (float(max_seconds) > 0 and math.isfinite(float(max_seconds))):
        raise ValueError(f"{caller}: 'max_seconds' must be a positive number or None, got {max_seconds!r}.")
    bad_threads = isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
    if num_threads is not None and bad_threads:
        raise ValueError(f"{caller}: 'num_threads' must be an integer >= 1 or None, got {num_threads!r}.")
    if mode == "com" and user:
        raise ValueError(
            f"{caller}: 'candidates' need scoring, which mode='com' does not do; use mode='select' (centre of mass "
            f"and the candidates, scored) or mode='full'."
        )

    seconds: dict[str, float] = {}
    iterations: dict[str, object] = {"coarse": [], "fine": 0}
    truncated = False

    def out_of_time() -> bool:
        return max_seconds is not None and time.perf_counter() - start > float(max_seconds)

    def log(step: str, message: str) -> None:
        if progress:
            logger.info("%s %s: %s (%.2f s)", caller, step, message, seconds.get(step, 0.0))

    with seeded(seed, fixed.device), _torch_threads(num_threads):
        t = time.perf_counter()
        moving01, fixed01 = _robust_scale(moving, pct), _robust_scale(fixed, pct)
        c_m, c_f = _centres(moving01, fixed01, a_m, a_f, mask, moving_mask, caller)
        t_com = _translation(c_m - c_f)
        seconds["center_of_mass"] = time.perf_counter() - t
        log("center_of_mass", f"shift {[round(v, 2) for v in (c_m - c_f).tolist()]} mm")
        if mode == "com":
            seconds["total"] = time.perf_counter() - start
            return {
                "matrix": t_com, "chosen": "center_of_mass", "score": None,
                "candidates": {"center_of_mass": {"score": None, "matrix": t_com}},
                "search": {"scores": {}, "starts": [], "best": None}, "iterations": iterations,
                "seconds": seconds, "grids": {}, "truncated": False,
            }  # fmt: skip

        t = time.perf_counter()
        # the finer level first, the other one from it (one pass over the full-resolution voxels per image)
        first, second = (1, 0) if spacing[1] <= spacing[0] else (0, 1)
        levels = {first: _Level(moving01, a_m, fixed01, a_f, spacing[first], caller)}
        levels[second] = levels[first].coarser(spacing[second])
        search, fine = levels[0], levels[1]
        search_sim = similarity if similarity is not None else GlobalNCCLoss(reduction="none")
        final_sim = similarity if similarity is not None else default_similarity(ndim, fine.shape, True)
        seconds["prepare"] = time.perf_counter() - t

        eye = torch.eye(ndim + 1, dtype=torch.float64, device=a_f.device)
        pool: dict[str, torch.Tensor] = {"identity": eye, "center_of_mass": t_com, **user}
        final: dict[str, torch.Tensor] = dict(pool)
        search_scores: dict[str, float] = {}
        starts: list[str] = []
        best_search = None
        if mode == "full":
            t = time.perf_counter()
            pool.update({name: _about_centres(rot, c_f, c_m) for name, rot in _rotations(angles, ndim, a_f.device)})
            for name, matrix in pool.items():
                if out_of_time() and name not in final:
                    truncated = True
                    break
                search_scores[name] = search.score(matrix, search_sim)
            ranked = sorted(search_scores, key=lambda k: (not math.isfinite(search_scores[k]), search_scores[k]))
            best_search = ranked[0]
            final["rotation_search"] = pool[best_search]
            seconds["search"] = time.perf_counter() - t
            log("search", f"{len(search_scores)} candidates, best {best_search} ({search_scores[best_search]:.4g})")

            t = time.perf_counter()
            if iters[0] > 0 and not out_of_time():
                best_value, best_matrix = math.inf, None
                for name in ranked[: int(rotation_starts)]:
                    if out_of_time():
                        truncated = True
                        break
                    matrix, n = search.refine(pool[name], search_sim, iters[0], lrs[0], progress, seed)
                    starts.append(name)
                    iterations["coarse"].append(n)
                    value = search.score(matrix, search_sim)
                    if value < best_value or best_matrix is None:
                        best_value, best_matrix = value, matrix
                if best_matrix is not None:
                    final["affine_coarse"] = best_matrix
            elif iters[0] > 0:
                truncated = True
            seconds["coarse"] = time.perf_counter() - t
            log("coarse", f"refined {starts}")

            t = time.perf_counter()
            if iters[1] > 0 and not out_of_time():
                begin = final.get("affine_coarse", final["rotation_search"])
                final["affine_fine"], iterations["fine"] = fine.refine(
                    begin, final_sim, iters[1], lrs[1], progress, seed
                )
            elif iters[1] > 0:
                truncated = True
            seconds["fine"] = time.perf_counter() - t
            log("fine", f"{iterations['fine']} iterations")

        t = time.perf_counter()
        scored = {name: {"score": fine.score(matrix, final_sim), "matrix": matrix} for name, matrix in final.items()}
        finite = [k for k in scored if math.isfinite(scored[k]["score"])] or list(scored)
        chosen = min(finite, key=lambda k: scored[k]["score"])
        seconds["select"] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - start
        log("select", f"{chosen} ({scored[chosen]['score']:.4g})")
    return {
        "matrix": scored[chosen]["matrix"],
        "chosen": chosen,
        "score": scored[chosen]["score"],
        "candidates": scored,
        "search": {"scores": search_scores, "starts": starts, "best": best_search},
        "iterations": iterations,
        "seconds": seconds,
        "grids": {"search": search.shape, "refinement": fine.shape},
        "truncated": truncated,
    }


# ---------------------------------------------------------------------------------------------------------------------
# input checks


def _check_image(x: torch.Tensor, name: str, caller: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and hasattr(x, "as_tensor"):
        x = x.as_tensor()
    check_spatial_tensor(x, name, caller)
    if x.shape[0] != 1:
        raise ValueError(
            f"{caller}: '{name}' must hold one image, (1, C, *S), got shape {tuple(x.shape)}; "
            f"align the pairs one at a time (each has its own affines)."
        )
    if min(x.shape[2:]) < MIN_SCALE_SIZE:
        raise ValueError(f"{caller}: every spatial size of '{name}' must be >= {MIN_SCALE_SIZE}, got {tuple(x.shape)}.")
    check_finite(x, name, caller)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        raise ValueError(f"{caller}: '{name}' is blank (every voxel is {hi:g}); nothing to align.")
    return x


def _check_images(moving, fixed, moving_affine, fixed_affine, caller: str):
    """Both images as ``(1, C, *S)`` plain tensors, their affines as float64 ``(D + 1, D + 1)`` (finite, invertible)
    on the images' device, and ``D``."""
    moving = _check_image(moving, "moving", caller)
    fixed = _check_image(fixed, "fixed", caller)
    ndim = moving.ndim - 2
    if fixed.ndim - 2 != ndim:
        raise ValueError(
            f"{caller}: 'moving' {tuple(moving.shape)} and 'fixed' {tuple(fixed.shape)} must have the same number of "
            f"spatial dims."
        )
    if fixed.device != moving.device:
        raise ValueError(f"{caller}: 'moving' and 'fixed' must be on one device, got {moving.device}, {fixed.device}.")
    if fixed.shape[1] != moving.shape[1]:
        raise ValueError(
            f"{caller}: 'moving' and 'fixed' must have the same channels, got {moving.shape[1]} and {fixed.shape[1]}."
        )
    affines = []
    for value, name in ((moving_affine, "moving_affine"), (fixed_affine, "fixed_affine")):
        a = as_world_matrix(value, ndim, name, caller, fixed.device)
        _check_invertible(a, name, caller)
        affines.append(a)
    return moving, fixed, affines[0], affines[1], ndim


def _check_invertible(a: torch.Tensor, name: str, caller: str) -> None:
    ndim = a.shape[0] - 1
    lin = a[:ndim, :ndim]
    scale = float(torch.linalg.norm(lin, dim=0).prod())
    if not scale > 0 or abs(float(torch.linalg.det(lin))) <= 1e-9 * scale or bool((a[ndim, :ndim] != 0).any()):
        raise ValueError(
            f"{caller}: '{name}' must be an invertible affine matrix (last row 0 ... 0 1), got {a.tolist()}."
        )


def _check_mask(mask, shape, name: str, caller: str) -> torch.Tensor | None:
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{caller}: '{name}' must be a torch.Tensor or None, got {type(mask).__name__}.")
    m = mask.as_tensor() if hasattr(mask, "as_tensor") else mask
    while m.ndim > len(shape) and m.shape[0] == 1:
        m = m[0]
    if tuple(m.shape) != tuple(shape):
        raise ValueError(
            f"{caller}: '{name}' must have the image's spatial shape {tuple(shape)}, got {tuple(mask.shape)}."
        )
    m = m.to(torch.float32)
    if not bool(((m == 0) | (m == 1)).all()):
        raise ValueError(f"{caller}: '{name}' must be binary (bool or values 0 and 1).")
    if not bool(m.any()):
        raise ValueError(f"{caller}: '{name}' selects no voxel.")
    return m


def _check_candidates(candidates, ndim: int, device, caller: str) -> dict[str, torch.Tensor]:
    if candidates is None:
        return {}
    if not isinstance(candidates, Mapping):
        raise TypeError(f"{caller}: 'candidates' must be a dict name -> world matrix, got {type(candidates).__name__}.")
    out = {}
    for name, matrix in candidates.items():
        if not isinstance(name, str) or name in RESERVED_NAMES:
            raise ValueError(f"{caller}: 'candidates' names must be strings other than {RESERVED_NAMES}, got {name!r}.")
        a = as_world_matrix(matrix, ndim, f"candidates[{name!r}]", caller, device)
        _check_invertible(a, f"candidates[{name!r}]", caller)
        out[name] = a
    return out


def _check_percentiles(values, caller: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{caller}: 'intensity_percentiles' must be two numbers, got {values!r}.") from err
    if not 0 <= lo < hi <= 100:
        raise ValueError(f"{caller}: 'intensity_percentiles' must satisfy 0 <= lower < upper <= 100, got {values!r}.")
    return lo, hi


def _check_angles(values, caller: str) -> tuple[float, ...]:
    try:
        angles = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{caller}: 'rotation_angles' must be a sequence of angles in degrees, got {values!r}."
        ) from err
    if any(not math.isfinite(a) for a in angles):
        raise ValueError(f"{caller}: 'rotation_angles' must be finite, got {angles}.")
    return angles


def _check_pair_of(values, name: str, caller: str, integer: bool = False, positive: bool = False) -> tuple:
    try:
        pair = tuple(values)
    except TypeError as err:
        raise ValueError(f"{caller}: '{name}' must be two numbers (coarse, fine), got {values!r}.") from err
    if len(pair) != 2:
        raise ValueError(f"{caller}: '{name}' must be two numbers (coarse, fine), got {values!r}.")
    if integer:
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or v < 0 for v in pair):
            raise ValueError(f"{caller}: '{name}' must be two integers >= 0, got {values!r}.")
        return tuple(int(v) for v in pair)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0) for v in pair):
        raise ValueError(f"{caller}: '{name}' must be two positive numbers, got {values!r}.")
    return tuple(float(v) for v in pair)
