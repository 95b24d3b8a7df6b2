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

from monai_avsm.utils.lazy import exported_names

from .advection import advect_map as advect_map
from .advection import advection_rhs as advection_rhs
from .advection import clamp_velocity as clamp_velocity
from .affine import affine_from_theta as affine_from_theta
from .affine import affine_to_map as affine_to_map
from .affine import check_affine as check_affine
from .affine import compose_affines as compose_affines
from .affine import identity_affine as identity_affine
from .affine import invert_affine as invert_affine
from .affine import theta_from_affine as theta_from_affine
from .affine import update_affine as update_affine
from .box_sums import box_sums as box_sums
from .finite_differences import central_difference as central_difference
from .intensity import percentile_scale as percentile_scale
from .inverse import compose_with_affine as compose_with_affine
from .inverse import inverse_map as inverse_map
from .inverse import invert_velocities as invert_velocities
from .jacobian import crop_margin as crop_margin
from .jacobian import fold_mask as fold_mask
from .jacobian import fold_statistics as fold_statistics
from .jacobian import jacobian_determinant as jacobian_determinant
from .jacobian import jacobian_determinant_ddf as jacobian_determinant_ddf
from .jacobian import jacobian_diagonal_product as jacobian_diagonal_product
from .jacobian import jacobian_matrix as jacobian_matrix
from .jacobian import matrix_cofactors as matrix_cofactors
from .jacobian import matrix_determinant as matrix_determinant
from .lncc import LNCCSettings as LNCCSettings
from .lncc import default_lncc_settings as default_lncc_settings
from .lncc import lncc_squared as lncc_squared
from .lncc import mk_lncc as mk_lncc
from .maps import compose_maps as compose_maps
from .maps import ddf_to_map as ddf_to_map
from .maps import identity_map as identity_map
from .maps import map_to_ddf as map_to_ddf
from .maps import map_to_grid as map_to_grid
from .maps import resample_map as resample_map
from .maps import warp_image as warp_image
from .maps import warp_label as warp_label
from .ncc import global_ncc as global_ncc
from .sampling import grid_sample as grid_sample
from .smoothing import PAPER_SIGMAS as PAPER_SIGMAS
from .smoothing import PAPER_WEIGHTS as PAPER_WEIGHTS
from .smoothing import fft_grid_shape as fft_grid_shape
from .smoothing import fft_size as fft_size
from .smoothing import gaussian_1d as gaussian_1d
from .smoothing import kernel_unit_spacing as kernel_unit_spacing
from .smoothing import multi_gaussian_kernel as multi_gaussian_kernel
from .smoothing import multi_gaussian_kernel_fft as multi_gaussian_kernel_fft
from .smoothing import multi_gaussian_kernel_matrices as multi_gaussian_kernel_matrices
from .smoothing import multi_gaussian_smooth as multi_gaussian_smooth
from .smoothing import smooth_fft as smooth_fft
from .smoothing import smooth_separable as smooth_separable
from .smoothing import smoothing_method as smoothing_method
from .world import apply_affine_points as apply_affine_points
from .world import as_world_matrix as as_world_matrix
from .world import map_to_world_points as map_to_world_points
from .world import normalized_to_world as normalized_to_world
from .world import ras_to_lps_affine as ras_to_lps_affine
from .world import ras_to_lps_vectors as ras_to_lps_vectors
from .world import resample_world as resample_world
from .world import theta_to_world_affine as theta_to_world_affine
from .world import voxel_world_points as voxel_world_points
from .world import world_displacement as world_displacement
from .world import world_jacobian_determinant as world_jacobian_determinant
from .world import world_to_normalized as world_to_normalized

__all__ = exported_names(__name__)
