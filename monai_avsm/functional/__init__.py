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
"""Stateless tensor mathematics of AVSM: maps, affines, smoothing, advection, Jacobians, box sums, (mk-)LNCC, NCC.

No ``nn.Module`` and no ignite here; the blocks, losses and metrics are thin wrappers of these functions.
Import idiom: ``import monai_avsm.functional as AF``.
"""

from __future__ import annotations

from .advection import advect_map, advection_rhs, clamp_velocity
from .affine import (
    affine_from_theta,
    affine_to_map,
    check_affine,
    compose_affines,
    identity_affine,
    invert_affine,
    theta_from_affine,
    update_affine,
)
from .box_sums import box_sums
from .finite_differences import central_difference
from .intensity import percentile_scale
from .inverse import compose_with_affine, inverse_map, invert_velocities
from .jacobian import (
    crop_margin,
    fold_mask,
    fold_statistics,
    jacobian_determinant,
    jacobian_determinant_ddf,
    jacobian_diagonal_product,
    jacobian_matrix,
    matrix_determinant,
)
from .lncc import LNCCSettings, default_lncc_settings, lncc_squared, mk_lncc
from .maps import compose_maps, ddf_to_map, identity_map, map_to_ddf, map_to_grid, resample_map, warp_image, warp_label
from .ncc import global_ncc
from .smoothing import (
    PAPER_SIGMAS,
    PAPER_WEIGHTS,
    fft_grid_shape,
    fft_size,
    gaussian_1d,
    kernel_unit_spacing,
    multi_gaussian_kernel,
    multi_gaussian_kernel_fft,
    multi_gaussian_kernel_matrices,
    multi_gaussian_smooth,
    smooth_fft,
    smooth_separable,
    smoothing_method,
)
from .world import (
    apply_affine_points,
    as_world_matrix,
    map_to_world_points,
    normalized_to_world,
    ras_to_lps_affine,
    ras_to_lps_vectors,
    resample_world,
    theta_to_world_affine,
    voxel_world_points,
    world_displacement,
    world_jacobian_determinant,
    world_to_normalized,
)

__all__ = [
    "LNCCSettings",
    "PAPER_SIGMAS",
    "PAPER_WEIGHTS",
    "advect_map",
    "box_sums",
    "percentile_scale",
    "advection_rhs",
    "affine_from_theta",
    "affine_to_map",
    "central_difference",
    "check_affine",
    "clamp_velocity",
    "compose_affines",
    "compose_maps",
    "crop_margin",
    "ddf_to_map",
    "default_lncc_settings",
    "fft_grid_shape",
    "fft_size",
    "fold_mask",
    "fold_statistics",
    "gaussian_1d",
    "global_ncc",
    "identity_affine",
    "identity_map",
    "invert_affine",
    "invert_velocities",
    "compose_with_affine",
    "inverse_map",
    "jacobian_determinant",
    "jacobian_determinant_ddf",
    "jacobian_diagonal_product",
    "jacobian_matrix",
    "matrix_determinant",
    "kernel_unit_spacing",
    "lncc_squared",
    "map_to_ddf",
    "map_to_grid",
    "mk_lncc",
    "multi_gaussian_kernel",
    "multi_gaussian_kernel_fft",
    "multi_gaussian_kernel_matrices",
    "multi_gaussian_smooth",
    "smoothing_method",
    "resample_map",
    "smooth_fft",
    "smooth_separable",
    "theta_from_affine",
    "update_affine",
    "warp_image",
    "warp_label",
    "map_to_world_points",
    "normalized_to_world",
    "ras_to_lps_affine",
    "ras_to_lps_vectors",
    "resample_world",
    "theta_to_world_affine",
    "voxel_world_points",
    "world_displacement",
    "world_jacobian_determinant",
    "apply_affine_points",
    "as_world_matrix",
    "world_to_normalized",
]
