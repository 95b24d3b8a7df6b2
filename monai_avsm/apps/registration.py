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
r"""One pair, one call: :func:`register` registers a moving image to a fixed image of any size, spacing and
orientation with the shipped AVSM model and writes the transforms, warped images and a JSON record into a new folder;
:func:`register_pairs` does it for many pairs with the model loaded once.

The path of one pair, each input read once (:class:`~monai_avsm.data.image_io.NativeImage`):

1. every argument and file is checked before any heavy work (paths, headers, dimensions, NaNs, blank images,
   label values, the output folder);
2. the images are brought to the model's working grid (:func:`~monai_avsm.data.working_grid.to_working_grid`:
   MONAI's preprocessing without importing MONAI; with ``spacing`` MONAI's own transforms);
3. the network runs (:func:`~monai_avsm.apps.bundle.load_inference_network`: a cached trace when one fits) and,
   optionally, the refinement;
4. :func:`~monai_avsm.engines.write_pair_outputs` writes the results on the native grids, from the images already in
   memory, into a hidden ``.partial`` folder that is renamed to the output folder only when everything is written,
   so a failed or interrupted run never leaves a folder that looks complete.

The console script ``monai-avsm`` (:mod:`monai_avsm.apps.cli`) calls these; the bundle's inference writes its files
with the same :func:`~monai_avsm.engines.write_pair_outputs`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from monai_avsm.apps.bundle import InferenceNetwork, load_bundle_network, load_inference_network, resolve_device
from monai_avsm.data.files import IMAGE_SUFFIXES
from monai_avsm.data.image_io import NativeImage, check_image_file, check_intensities, read_image
from monai_avsm.data.working_grid import to_working_grid
from monai_avsm.engines.accurate import accurate_registration, aligned_image, working_mask
from monai_avsm.engines.native import Grid, NativeResampler, PairGeometry
from monai_avsm.engines.results import write_pair_outputs
from monai_avsm.utils.jsonable import to_jsonable
from monai_avsm.utils.progress import Progress

__all__ = ["register", "register_pairs", "read_pairs_csv", "OUTPUTS", "MODES", "SIMILARITIES"]

#: ``mode`` of :func:`register`: ``"accurate"`` (initial alignment + optimisation at the fixed image's resolution)
#: or ``"fast"`` (the network in one pass after the centre-of-mass translation, as the paper)
MODES = ("accurate", "fast")
#: ``similarity`` of the accurate mode: mk-LNCC, or global mutual information for other contrasts
SIMILARITIES = ("lncc", "mi")

_LOGGER = logging.getLogger(__name__)
_INPUTS = ("moving", "fixed", "moving_label", "fixed_label")

#: optional outputs and their defaults (ANTs' antsRegistration writes the forward and inverse warps and the affine;
#: the rest is extra): name -> (default, what it adds on a 128x144x128 pair on 2 CPU cores)
OUTPUTS: dict[str, tuple[bool, str]] = {
    "inverse": (True, "the inverse field and affine, ~0.2 s"),
    "inverse_images": (False, "the fixed image/label warped onto the moving grid (with inverse), ~0.3 s"),
    "separable": (False, "the deformable parts alone (ANTs SyN's -t warp -t affine.mat form), ~0.3 s"),
    "jacobian": (False, "the det J image (its statistics are always in registration.json), ~0.1 s"),
    "preview": (False, "preview.png of the native-grid result, ~1 s (matplotlib)"),
    "compress": (False, "gzip the displacement fields (.nii.gz, ~10 % smaller, ~0.9 s per field)"),
}


def _check_output(output_dir: str | os.PathLike, overwrite: bool) -> str:
    out = os.path.abspath(os.fspath(output_dir))
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise FileExistsError(f"register: the output {out!r} exists and is a file; give a new folder name.")
        if any(os.scandir(out)) and not overwrite:
            raise FileExistsError(
                f"register: the output folder {out!r} exists and is not empty; give a new folder, or overwrite=True "
                "(--overwrite) to replace the files in it."
            )
    return out


def _finish_output(partial: str, out: str) -> None:
    """Move the finished files from the ``.partial`` folder to ``out`` (replacing same-named files), then remove it."""
    if not os.path.exists(out):
        os.replace(partial, out)
        return
    for name in os.listdir(partial):
        os.replace(os.path.join(partial, name), os.path.join(out, name))
    os.rmdir(partial)


def _same_grid(a: NativeImage, b: NativeImage) -> bool:
    return a.spatial_shape == b.spatial_shape and bool(torch.allclose(a.affine, b.affine, atol=1e-3, rtol=1e-5))


def _read_inputs(files: Mapping[str, str], mask_file: str | None) -> tuple[dict[str, NativeImage], NativeImage | None]:
    """Read each input once and check it (values, labels on their image's grid, blank images)."""
    images: dict[str, NativeImage] = {}
    for key, path in files.items():
        images[key] = read_image(path, label=key.endswith("label"), name=key, caller="register")
    dims = {k: len(v.spatial_shape) for k, v in images.items()}
    if len(set(dims.values())) != 1:
        raise ValueError(f"register: the inputs must all be 2D or all 3D, got {dims} spatial dims.")
    for key in ("moving_label", "fixed_label"):
        if key in images and not _same_grid(images[key], images[key[: -len("_label")]]):
            image = key[: -len("_label")]
            raise ValueError(
                f"register: the {key} file {files[key]!r} (shape {images[key].spatial_shape}) does not lie on the grid "
                f"of the {image} image {files[image]!r} (shape {images[image].spatial_shape}, or another affine); a "
                "label must be on its image's grid."
            )
    mask = None
    if mask_file is not None:
        mask = read_image(mask_file, name="mask", caller="register")
        values = torch.unique(mask.data)
        if not bool(((values == 0) | (values == 1)).all()):
            raise ValueError(
                f"register: the mask {mask_file!r} must hold only 0 and 1, got values {values[:10].tolist()}"
                f"{' ...' if values.numel() > 10 else ''}."
            )
        if not bool(values.any()):
            raise ValueError(f"register: the mask {mask_file!r} selects no voxel (it is all zero).")
    check_intensities(images["moving"], "moving", "register")
    fixed_mask = None
    if mask is not None and _same_grid(mask, images["fixed"]):
        fixed_mask = mask.data[0] > 0
    check_intensities(images["fixed"], "fixed", "register", mask=fixed_mask)
    return images, mask


def _working_grid(fixed: NativeImage, shape, spacing) -> Grid:
    """The network's working grid: ``shape`` voxels of ``spacing`` mm along the world's R, A, S axes, centred on the
    fixed image's field of view (as the training data's 192 x 224 x 192 mm fields of view)."""
    ndim = len(shape)
    sp = torch.as_tensor([float(v) for v in spacing], dtype=torch.float64)
    centre = fixed.affine[:ndim, :ndim] @ ((torch.tensor(fixed.spatial_shape, dtype=torch.float64) - 1) / 2)
    centre = centre + fixed.affine[:ndim, ndim]
    affine = torch.eye(ndim + 1, dtype=torch.float64)
    affine[:ndim, :ndim] = torch.diag(sp)
    affine[:ndim, ndim] = centre - sp * (torch.tensor([int(n) for n in shape], dtype=torch.float64) - 1) / 2
    return Grid(tuple(int(n) for n in shape), affine)


def _working_pair(
    images: Mapping[str, NativeImage], settings: dict, spacing, com: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``(moving, fixed)`` ``(1, 1, *S)`` on the working grid and the voxel -> world matrices of their grids.

    The working grid has the model's shape (``spatial_size``) and voxel size (``spacing``, default the bundle's
    ``working_spacing``, 2 mm for the shipped model: what it was trained at), along the world axes in RAS order and
    centred on the fixed image's field of view: every image is seen at the model's scale, whatever its own field of
    view, and the network always gets the same spacing (one cached trace for every grid). The fixed image is sampled
    on it; the moving image on it moved by the centre-of-mass translation ``com`` (the moving working grid is
    ``com @ working affine``). Both percentile-scaled on their native voxels, one interpolation each. A bundle
    without ``working_spacing`` resizes the fixed field of view to ``spatial_size`` (MONAI's ``Resize``) instead.
    """
    size = settings["spatial_size"]
    ndim = settings["spatial_dims"]
    vs = spacing if spacing is not None else settings.get("working_spacing")
    if vs is None:
        fix, f_aff = to_working_grid(images["fixed"], size)
        grid = Grid(tuple(fix.shape[1:]), f_aff)
        fix = fix[None]
    else:
        vs = (float(vs),) * ndim if isinstance(vs, (int, float)) else tuple(float(v) for v in vs)
        if len(vs) != ndim or min(vs) <= 0:
            raise ValueError(f"register: 'spacing' must have {ndim} positive values, got {spacing}.")
        grid = _working_grid(images["fixed"], size, vs)
        fix = aligned_image(images["fixed"], torch.eye(ndim + 1, dtype=torch.float64), grid)
    m_aff = com.to(torch.float64) @ grid.affine
    return aligned_image(images["moving"], com, grid), fix, m_aff, grid.affine


#: the relative mk-LNCC improvement over its pre-aligned input that the network's one pass must reach to be kept by
#: ``register --fast`` (:func:`keep_better_than_input`); chosen on the seed-0 and seed-1 scanner-space sets, checked
#: on a seed-2 set (``docs/benchmarks.md``, "A margin for the --fast guard")
FAST_MIN_IMPROVEMENT = 0.02


def _resolve_use_network(use_network: bool | None, mode: str, caller: str) -> bool:
    """``use_network`` of :func:`register` resolved: ``None`` means the network in the fast mode (which is the
    network) and none in the accurate mode; ``False`` with ``mode="fast"`` is refused."""
    if use_network is None:
        return mode == "fast"
    if not use_network and mode == "fast":
        raise ValueError(f"{caller}: use_network=False applies to mode='accurate' (the fast mode is the network).")
    return bool(use_network)


def keep_better_than_input(
    pred: dict,
    moving: torch.Tensor,
    fixed: torch.Tensor,
    mask: torch.Tensor | None = None,
    min_improvement: float = 0.0,
) -> tuple[dict, dict[str, Any]]:
    r"""The fast mode's guard: the network's (or refined) result, or its input unless the result scores better by
    a relative margin.

    ``moving`` is the moving image on the working grid after the pre-alignment, so the input is the identity there.
    Both are scored by mk-LNCC (:class:`~monai_avsm.losses.MKLNCCLoss`, windows 5 and 9 voxels at stride 2, the
    ``"brain"`` preset's, inside ``mask`` when given) against ``fixed``:

    .. math:: s_{net} = \mathrm{Sim}(I_0 \circ \Phi_{net}, I_1), \qquad s_{in} = \mathrm{Sim}(I_0, I_1)

    and the result is kept only when :math:`s_{net} < s_{in} - \delta |s_{in}|` (:math:`\delta` =
    ``min_improvement``); otherwise the input (identity map and affine, no velocities) replaces it. On known
    deformations of one anatomy the shipped model's pass loses some of the initial alignment's accuracy while still
    lowering the loss a little (by 0.2-1.5 %, against 2.5-6 % where it helps across subjects: ``docs/benchmarks.md``);
    ``register --fast`` uses :data:`FAST_MIN_IMPROVEMENT` for the network's pass and 0 after ``--refine`` (whose result
    minimises this kind of loss itself).

    Args:
        min_improvement: :math:`\delta \ge 0`, the relative margin (0: the better score wins, the input on a tie).

    Returns:
        ``(pred, record)``, ``record = {"kept": "network" or "prealignment", "scores": {...}, "improvement":
        (s_in - s_net) / |s_in|, "min_improvement": delta, "similarity": ...}``.
    """
    if not (isinstance(min_improvement, (int, float)) and not isinstance(min_improvement, bool)) or not (
        0.0 <= float(min_improvement) < 1.0
    ):
        raise ValueError(f"keep_better_than_input: 'min_improvement' must be in [0, 1), got {min_improvement!r}.")
    from monai_avsm.functional.affine import identity_affine, theta_from_affine
    from monai_avsm.functional.maps import identity_map, warp_image
    from monai_avsm.losses.mk_lncc import MKLNCCLoss
    from monai_avsm.optimization.deformable import PRESETS

    ndim = moving.ndim - 2
    brain = PRESETS["brain"]  # the finest level's windows of the accurate path
    windows = [min(int(w), min(moving.shape[2:])) for w in brain.lncc_windows[-1]]
    sim = MKLNCCLoss(ndim, kernel_sizes=windows, kernel_weights=list(brain.lncc_weights[-1]),
                     strides=int(brain.lncc_strides[-1]), reduction="mean")  # fmt: skip
    phi = pred["map"].detach()
    with torch.no_grad():
        kwargs = {} if mask is None else {"mask": mask}
        warped = pred.get("warped")  # the network's (or refine's) moving image warped by its map, as refine reads it
        if isinstance(warped, torch.Tensor) and warped.shape == moving.shape:
            warped = warped.detach().to(moving.dtype)
        else:
            warped = warp_image(moving, phi.to(moving.dtype))
        s_net = float(sim(warped, fixed, **kwargs))
        s_in = float(sim(moving, fixed, **kwargs))
    name = f"mk-LNCC {', '.join(map(str, windows))} (stride {int(brain.lncc_strides[-1])})"
    improvement = (s_in - s_net) / abs(s_in) if s_in != 0 else (0.0 if s_net == 0 else -math.inf)
    record = {"scores": {"network": s_net, "prealignment": s_in}, "similarity": name,
              "improvement": improvement, "min_improvement": float(min_improvement)}  # fmt: skip
    if s_net < s_in - float(min_improvement) * abs(s_in):
        record["kept"] = "network"
        return pred, record
    record["kept"] = "prealignment"
    theta = theta_from_affine(*identity_affine(phi.shape[0], ndim, dtype=phi.dtype, device=phi.device))
    identity = identity_map(tuple(phi.shape[2:]), dtype=phi.dtype, device=phi.device).expand_as(phi).contiguous()
    return {"map": identity, "affine": theta, "warped": moving, "velocities": []}, record


def _dice_rows(r: NativeResampler, pred: dict) -> dict[str, Any]:
    from monai_avsm.engines.evaluation import stage_labels  # imported only when labels are given
    from monai_avsm.metrics.dice import stage_dice

    fixed_label = r.image("fixed_label").as_tensor()
    moving_label = r.image("moving_label").as_tensor()
    num_classes = int(max(int(fixed_label.max()), int(moving_label.max()))) + 1
    out: dict[str, Any] = {"labels": list(range(1, num_classes))}
    for stage, d in stage_dice(stage_labels(r, pred, 0), fixed_label, num_classes).items():
        out[f"dice_{stage}"] = float(torch.tensor(d).nanmean())
        out[f"dice_{stage}_per_label"] = d
    return out


def _versions() -> dict[str, str]:
    import sys

    from monai_avsm._version import __version__

    out = {"monai_avsm": __version__, "torch": torch.__version__, "python": platform.python_version()}
    if "monai" in sys.modules:  # not imported on the fast path: its version from the package metadata
        out["monai"] = sys.modules["monai"].__version__
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out["monai"] = version("monai")
        except PackageNotFoundError:  # pragma: no cover - monai is a dependency
            pass
    return out


def _outputs(options: Mapping[str, bool] | None) -> dict[str, bool]:
    chosen = {k: v[0] for k, v in OUTPUTS.items()}
    for k, v in (options or {}).items():
        if k not in OUTPUTS:
            raise ValueError(f"register: unknown output option {k!r}; choose from {sorted(OUTPUTS)}.")
        chosen[k] = bool(v)
    return chosen


def register(
    moving: str | os.PathLike,
    fixed: str | os.PathLike,
    output_dir: str | os.PathLike,
    moving_label: str | os.PathLike | None = None,
    fixed_label: str | os.PathLike | None = None,
    mask: str | os.PathLike | None = None,
    refine: int | None = None,
    spacing: float | Sequence[float] | None = None,
    device: str | torch.device | None = None,
    bundle_dir: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    network: InferenceNetwork | tuple[torch.nn.Module, dict] | None = None,
    outputs: Mapping[str, bool] | None = None,
    cache: bool = True,
    mode: str = "accurate",
    max_seconds: float | None = None,
    similarity: str = "lncc",
    prealignment: str | None = None,
    use_network: bool | None = None,
) -> dict[str, Any]:
    r"""Register one pair and write the results into ``output_dir``.

    Both images are read once (NIfTI with nibabel; NRRD, MHA, DICOM with ITK). Two modes:

    - ``"accurate"`` (default): the initial alignment (:func:`~monai_avsm.optimization.initial_alignment`: centre
      of mass, a rotation search, affine-opt on two resolutions; the best-scoring candidate wins, so never worse than
      the identity) brings the moving image onto the fixed image's own grid, and
      :func:`~monai_avsm.optimization.deformable_opt` optimises a vSVF deformation there, coarse to fine up to the
      fixed grid's resolution (capped at 1 mm); with ``use_network=True`` the network's pass below adds one candidate
      affine and a start for the optimisation;
    - ``"fast"``: the paper's one pass on the model's working grid (``spatial_size`` voxels of ``working_spacing``
      mm of the bundle's ``inference.json``: 96x112x96 at 2 mm, along the world's RAS axes, centred on the fixed
      image's field of view), the moving image sampled on it after the model's pre-alignment (``prealignment``:
      the bundle's, ``initial_alignment`` for the shipped model, or the centre-of-mass translation), the network,
      optionally ``refine``.

    The result is brought back to world space, so the warped moving image and label lie on the fixed image's native
    grid, the inverse results on the moving image's. The files (:func:`~monai_avsm.engines.write_pair_outputs`):
    ``warped.nii.gz`` (and ``warped_label.nii.gz``), ``displacement_field.nii`` (forward, world mm, ITK/ANTs),
    ``affine.mat``/``.tfm``, the inverse direction, ``registration.json``; and, by ``outputs``, the rest
    (:data:`OUTPUTS`).

    Args:
        moving, fixed: image files.
        output_dir: a new (or empty) folder; written only when every file is ready (see the module docstring).
        moving_label, fixed_label: optional label maps (integer values) on the images' grids; the moving label is
            warped (nearest neighbour); with both, Dice per label before registration, after the affine part and
            after AVSM goes into the metrics.
        mask: optional binary mask of the fixed image (any grid in the fixed image's world space): the optimisation's
            (or, in the fast mode, the refinement's) similarity counts only the windows inside it
            (:class:`~monai_avsm.losses.MKLNCCLoss` ``mask``).
        refine: fast mode: L-BFGS refinement iterations after the network (:func:`~monai_avsm.optimization.refine`;
            never worse). Default: 0, or 20 when a mask is given (the mask acts through the refinement).
        spacing: fast mode: the working grid's voxel size in mm (default ``None``: the bundle's ``working_spacing``,
            2 mm for the shipped model, the voxel size it was trained at).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``None``/``"auto"`` (CUDA when available).
        bundle_dir: the bundle (default: the shipped one, :func:`~monai_avsm.apps.bundle.default_bundle_dir`).
        model_path: other weights (e.g. fine-tuned, ``avsm_runs/finetune/checkpoints/model.pt``).
        overwrite: write into a non-empty ``output_dir``, replacing files of the same names.
        progress: a progress bar (tqdm) over the steps and the refinement's iterations.
        network: a loaded network, to register many pairs without reloading: an ``(network, settings)`` pair from
            :func:`~monai_avsm.apps.bundle.load_bundle_network` (what :func:`register_pairs` passes).
        outputs: switch optional outputs on or off by name (:data:`OUTPUTS`), e.g. ``{"preview": True}``.
        cache: use (and fill) the trace cache of :func:`~monai_avsm.apps.bundle.load_inference_network`.
        mode: ``"accurate"`` or ``"fast"`` (above); ``refine`` and ``spacing`` belong to ``"fast"``.
        max_seconds: wall-time budget of the accurate mode's optimisation (later levels are skipped once it is
            spent); ``None``: no limit.
        similarity: the accurate mode's similarity: ``"lncc"`` (mk-LNCC, same contrast) or ``"mi"`` (global mutual
            information: other contrasts or modalities, e.g. T1 to T2; slower).
        prealignment: how the pair is aligned before the network: ``"center_of_mass"`` (milliseconds, the paper's
            one pass), ``"initial_alignment"`` (the rotation search and affine optimisation of the accurate mode,
            about 1.5 s: ``--fast`` is then never far off in pose, e.g. scanner-space brains 0.48 -> 0.71 Dice), or
            ``None``: the bundle's ``prealignment`` setting (``initial_alignment`` for the shipped model).
        use_network: run the network (the model is loaded). ``None`` (default): in the fast mode, which is the network;
            not in the accurate mode, which is then the initial alignment and the optimisation alone. ``True`` in the
            accurate mode adds the network's pass after the initial alignment: its affine is one more candidate and
            its map the optimisation's start when it scores better than the identity. With the shipped model this
            was measured to cost accuracy and time on three scanner-space sets (the network's affine never won, and
            the optimisation ended worse from its map: end-point error 0.46 -> 0.52 mm on one set;
            ``docs/benchmarks.md``, "The network's start in the accurate path"), so it is for a model trained or
            fine-tuned on images like yours. ``False`` with ``mode="fast"`` is refused.

    Returns:
        ``{"output_dir", "files" (name -> path), "metrics", "timings", "device", "settings", "record"}``; ``record``
        is what ``registration.json`` holds.

    Raises:
        FileNotFoundError: an input file, the bundle or its model is missing (named).
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False.
        ValueError: unreadable, corrupt, blank or non-finite images, non-integer labels, images of the wrong
            dimension, labels off their image's grid, a mask that is not binary or empty (each names the file).

    Example::

        import monai_avsm

        out = monai_avsm.register("moving.nii.gz", "fixed.nii.gz", "result", moving_label="moving_seg.nii.gz")
        print(out["files"]["warped"], out["metrics"]["jacobian"]["folds"])
    """
    t_start = time.perf_counter()
    given = {"moving": moving, "fixed": fixed, "moving_label": moving_label, "fixed_label": fixed_label}
    files = {
        k: check_image_file(v, k, "register") for k, v in given.items() if v is not None or k in ("moving", "fixed")
    }
    mask_file = check_image_file(mask, "mask", "register") if mask is not None else None
    if mode not in MODES:
        raise ValueError(f"register: 'mode' must be one of {MODES}, got {mode!r}.")
    if similarity not in SIMILARITIES:
        raise ValueError(f"register: 'similarity' must be one of {SIMILARITIES}, got {similarity!r}.")
    if similarity != "lncc" and mode == "fast":
        raise ValueError("register: 'similarity' applies to mode='accurate' (the network was trained with mk-LNCC).")
    use_network = _resolve_use_network(use_network, mode, "register")
    if not use_network and prealignment is not None:
        raise ValueError(
            "register: 'prealignment' is the network's pre-alignment; the accurate mode runs no network unless "
            "use_network=True (--network)."
        )
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"register: 'max_seconds' must be > 0 or None, got {max_seconds}.")
    if mode == "accurate" and spacing is not None:
        raise ValueError("register: 'spacing' (a working voxel size for the network) applies to mode='fast' only.")
    if mode == "accurate" and refine:
        raise ValueError(
            "register: 'refine' applies to mode='fast' (the accurate mode optimises at the image's own resolution)."
        )
    fast_mask_refine = 20 if (mask_file is not None and mode == "fast") else 0
    iterations = fast_mask_refine if refine is None else int(refine)
    if iterations < 0:
        raise ValueError(f"register: 'refine' must be >= 0 iterations, got {refine}.")
    chosen = _outputs(outputs)
    out_dir = _check_output(output_dir, overwrite)
    dev = resolve_device(device) if network is None else None
    bar = Progress(
        (5 if use_network else 4) if mode == "accurate" else 3,
        "monai-avsm register",
        progress,
        _LOGGER,
        unit="step",
        leave=True,
        step_prefix="register",
    )
    timings: dict[str, float] = {}
    partial = None
    try:
        bar.step("reading the images")
        t0 = time.perf_counter()
        images, mask_image = _read_inputs(files, mask_file)
        timings["read_seconds"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if isinstance(network, InferenceNetwork):
            settings = network.settings
        elif network is not None:
            settings = network[1]
        else:
            from monai_avsm.apps.bundle import bundle_settings

            settings = bundle_settings(bundle_dir, model_path)
        if len(images["fixed"].spatial_shape) != settings["spatial_dims"]:
            raise ValueError(
                f"register: the images are {len(images['fixed'].spatial_shape)}D, the model is "
                f"{settings['spatial_dims']}D."
            )
        fixed_native = Grid.of(images["fixed"], files["fixed"])
        moving_native = Grid.of(images["moving"], files["moving"])
        report: dict[str, Any] = {"mode": mode}
        timings["setup_seconds"] = time.perf_counter() - t0
        bar.done()

        net = None
        if use_network:
            # the network's pass: the --fast result, and the network's affine as a candidate of the accurate path
            bar.step("network")
            t0 = time.perf_counter()
            from monai_avsm.optimization.alignment import center_of_mass_alignment

            com = center_of_mass_alignment(
                images["moving"].data[None], images["fixed"].data[None], moving_native.affine, fixed_native.affine
            )
            report["center_of_mass_shift_mm"] = com[:-1, -1].tolist()
            prealigned = None
            pre = com
            if prealignment is not None:
                from monai_avsm.apps.bundle import PREALIGNMENTS

                if prealignment not in PREALIGNMENTS:
                    raise ValueError(
                        f"register: 'prealignment' must be one of {PREALIGNMENTS} or None, got {prealignment!r}."
                    )
                settings = {**settings, "prealignment": prealignment}
            if settings.get("prealignment") == "initial_alignment":
                # a model trained on pairs after the initial alignment sees its inputs the same way (rotation search and
                # affine optimisation, about 2 s on 2 cores), in both modes
                from monai_avsm.optimization.alignment import initial_alignment

                t1 = time.perf_counter()
                prealigned = initial_alignment(
                    images["moving"].data[None],
                    images["fixed"].data[None],
                    moving_native.affine,
                    fixed_native.affine,
                    mode="full",
                    mask=None
                    if mask_image is None
                    else (working_mask(mask_image, fixed_native, torch.device("cpu"))[0, 0] > 0).to(torch.float32),
                )
                pre = prealigned["matrix"].to(torch.float64).cpu()
                timings["prealignment_seconds"] = time.perf_counter() - t1
                report["prealignment"] = {
                    "method": "initial_alignment",
                    "chosen": prealigned["chosen"],
                    "seconds": round(timings["prealignment_seconds"], 3),
                }
            mov, fix, m_aff, f_aff = _working_pair(images, settings, spacing, pre)
            fixed_grid = Grid(tuple(fix.shape[2:]), f_aff, files["fixed"])
            geometry = PairGeometry(
                fixed=fixed_grid,
                moving=Grid(tuple(mov.shape[2:]), m_aff, files["moving"]),
                fixed_native=fixed_native,
                moving_native=moving_native,
                files={k: files.get(k) for k in _INPUTS},
            )
            voxel_spacing = fixed_grid.spacing
            if isinstance(network, InferenceNetwork):
                net = network
            elif network is not None or iterations > 0:  # the refinement needs the eager network's vSVF warp
                pair = network if network is not None else load_bundle_network(bundle_dir, dev, model_path)
                net = load_inference_network(spacing=voxel_spacing, network=pair)
            else:
                net = load_inference_network(bundle_dir, dev, model_path, spacing=voxel_spacing, cache=cache)
            dev = net.device
            timings["model_seconds"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            pred = net(mov.to(dev), fix.to(dev))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            timings["network_seconds"] = time.perf_counter() - t0
            integrator = net.integrator
            refine_info: dict[str, Any] = {"iterations": iterations}
            working_grid_mask = None if mask_image is None else working_mask(mask_image, fixed_grid, dev)
            if iterations > 0:
                bar.step(f"refinement ({iterations} iterations)")
                t0 = time.perf_counter()
                from monai_avsm.optimization import refine as refine_fn

                options: dict[str, Any] = {"iterations": iterations, "progress": progress}
                vsvf = getattr(net.eager, "vsvf_net", None)
                if vsvf is not None:
                    options["warp"] = vsvf.warp
                options["spacing"] = torch.tensor([voxel_spacing], dtype=torch.float64, device=dev)
                if working_grid_mask is not None:
                    options["mask"] = working_grid_mask
                with torch.enable_grad():
                    pred = refine_fn(pred, **options)
                refine_info.update(
                    initial_loss=float(pred["initial_loss"][0]),
                    loss=float(pred["loss"][0]),
                    improved=bool(pred["improved"][0]),
                )
                timings["refine_seconds"] = time.perf_counter() - t0
            if mode == "fast":
                t0 = time.perf_counter()
                pred, report["fast_selection"] = keep_better_than_input(
                    pred,
                    mov.to(dev),
                    fix.to(dev),
                    working_grid_mask,
                    min_improvement=FAST_MIN_IMPROVEMENT if iterations == 0 else 0.0,
                )
                timings["selection_seconds"] = time.perf_counter() - t0
            bar.done()

        else:  # the accurate path alone: no model is loaded
            dev = resolve_device(device) if dev is None else dev
            refine_info = {"iterations": 0}
            prealigned = None

        if mode == "accurate":
            network_affine = None
            network_points = None
            if net is not None:
                network_affine = NativeResampler(geometry).world_affine(pred["affine"][0].detach().cpu())
                network_points = NativeResampler(geometry).points(pred["map"][0].detach())
            started: list[str] = []

            def step(name: str) -> None:
                if started:
                    bar.done()
                started.append(name)
                bar.step(name)

            pred, geometry, integrator, accurate_report = accurate_registration(
                images,
                mask_image,
                files,
                network_affine,
                dev,
                max_seconds,
                step,
                timings,
                similarity,
                prealignment=prealigned,
                initial_points=network_points,
            )
            report.update(accurate_report)
            bar.done()

        bar.step("writing")
        t0 = time.perf_counter()
        parent = os.path.dirname(out_dir)
        os.makedirs(parent, exist_ok=True)
        partial = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.", suffix=".partial", dir=parent)
        resampler = NativeResampler(geometry, images=images)
        record = write_pair_outputs(
            partial,
            geometry,
            pred,
            0,
            integrator=integrator,
            preview=chosen["preview"],
            inverse=chosen["inverse"],
            inverse_images=chosen["inverse_images"],
            jacobian=chosen["jacobian"],
            separable=chosen["separable"],
            compress_fields=chosen["compress"],
            resampler=resampler,
        )
        timings["write_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics: dict[str, Any] = {
            "inverse_consistency": record.get("inverse_consistency"),
            "jacobian": record.get("jacobian"),
        }
        if "moving_label" in files and "fixed_label" in files:
            metrics.update(_dice_rows(resampler, pred))
            timings["dice_seconds"] = time.perf_counter() - t0
        metrics["refinement"] = refine_info
        timings["total_seconds"] = time.perf_counter() - t_start
        timings = {k: round(v, 3) for k, v in timings.items()}
        used = {
            **settings,
            **{k: (os.path.abspath(files[k]) if k in files else None) for k in _INPUTS},
            "mask": os.path.abspath(mask_file) if mask_file else None,
            "refine_iterations": iterations,
            "working_spacing": settings.get("working_spacing")
            if spacing is None
            else (float(spacing) if isinstance(spacing, (int, float)) else list(spacing)),
            "outputs": chosen,
            "mode": mode,
            "max_seconds": max_seconds,
            "similarity": similarity,
            "network": net.source if net is not None else None,
            "overwrite": bool(overwrite),
        }
        full = to_jsonable(
            {
                **record,
                "geometry": geometry.to_dict(),
                "registration": report,
                "metrics": metrics,
                "timings": timings,
                "device": str(dev),
                "threads": torch.get_num_threads(),
                "versions": _versions(),
                "settings": used,
            }
        )
        with open(os.path.join(partial, "registration.json"), "x") as f:
            json.dump(full, f, indent=2)
        _finish_output(partial, out_dir)
        partial = None
        bar.done()
    finally:
        bar.close()
        if partial is not None:  # a failure while writing: nothing half-written is left
            shutil.rmtree(partial, ignore_errors=True)
    files_out = {k: os.path.join(out_dir, v) for k, v in record["files"].items()}
    files_out["registration_json"] = os.path.join(out_dir, "registration.json")
    _LOGGER.info(f"register: wrote {out_dir} in {timings['total_seconds']:.1f} s")
    return {
        "output_dir": out_dir,
        "files": files_out,
        "metrics": metrics,
        "timings": timings,
        "device": str(dev),
        "settings": used,
        "record": full,
    }


_CSV_COLUMNS = ("moving", "fixed", "moving_label", "fixed_label", "mask", "name")


def read_pairs_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The pairs of a CSV file with a header row: ``moving``, ``fixed`` (required), ``moving_label``,
    ``fixed_label``, ``mask``, ``name`` (optional; empty cells are absent). Relative paths are taken relative to the
    CSV file's folder.

    Raises:
        FileNotFoundError: no such file; ValueError: no header, missing ``moving``/``fixed`` columns or cells,
        unknown columns, no rows.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"read_pairs_csv: the pairs file {p!r} does not exist.")
    base = os.path.dirname(os.path.abspath(p))
    with open(p, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "moving" not in header or "fixed" not in header:
            raise ValueError(
                f"read_pairs_csv: {p!r} needs a header row with 'moving' and 'fixed' columns, got {header}."
            )
        unknown = sorted(set(header) - set(_CSV_COLUMNS))
        if unknown:
            raise ValueError(f"read_pairs_csv: {p!r} has unknown columns {unknown}; allowed: {list(_CSV_COLUMNS)}.")
        pairs = []
        for n, row in enumerate(reader, start=2):
            item = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            item = {k: v for k, v in item.items() if v}
            if not item:
                continue
            for key in ("moving", "fixed"):
                if key not in item:
                    raise ValueError(f"read_pairs_csv: {p!r} line {n} has no {key!r} file.")
            for key in _CSV_COLUMNS[:5]:
                if key in item and not os.path.isabs(os.path.expanduser(item[key])):
                    item[key] = os.path.join(base, item[key])
            pairs.append(item)
    if not pairs:
        raise ValueError(f"read_pairs_csv: {p!r} lists no pair.")
    return pairs


def _stem(path: str) -> str:
    base = os.path.basename(path.rstrip("/"))
    for ext in IMAGE_SUFFIXES:
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def register_pairs(
    pairs: str | os.PathLike | Iterable[Mapping[str, str]],
    output_dir: str | os.PathLike,
    refine: int | None = None,
    spacing: float | Sequence[float] | None = None,
    device: str | torch.device | None = None,
    bundle_dir: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    outputs: Mapping[str, bool] | None = None,
    mode: str = "accurate",
    max_seconds: float | None = None,
    similarity: str = "lncc",
    prealignment: str | None = None,
    use_network: bool | None = None,
) -> dict[str, Any]:
    """Register many pairs with the model loaded once: one sub-folder per pair in ``output_dir``, ``summary.csv`` and
    ``summary.json`` with one row per pair (status, Dice when labels are given, folds, inverse consistency, time).

    A pair that fails (a missing or corrupt file, a blank image, ...) is reported in the summary with its error and
    skipped; the others go on, and a failed pair leaves no folder.

    Args:
        pairs: a CSV file (:func:`read_pairs_csv`) or a list of dicts with ``moving``, ``fixed`` and optionally
            ``moving_label``, ``fixed_label``, ``mask``, ``name`` (the sub-folder; default
            ``<index>_<moving stem>_to_<fixed stem>``).
        output_dir: a new (or empty) folder.
        refine, spacing, device, bundle_dir, model_path, outputs, mode, max_seconds, similarity, prealignment,
            use_network: as
            :func:`register`, for every pair.
        overwrite: write into a non-empty ``output_dir``.
        progress: a progress bar over the pairs.

    Returns:
        ``{"output_dir", "pairs": [rows], "failed": count, "summary_csv", "summary_json"}``.
    """
    items = read_pairs_csv(pairs) if isinstance(pairs, (str, os.PathLike)) else [dict(p) for p in pairs]
    if not items:
        raise ValueError("register_pairs: no pair given.")
    for n, item in enumerate(items):
        for key in ("moving", "fixed"):
            if not item.get(key):
                raise ValueError(f"register_pairs: pair {n} has no {key!r} file.")
    out = _check_output(output_dir, overwrite)
    names = [
        item.get("name") or f"{n:03d}_{_stem(item['moving'])}_to_{_stem(item['fixed'])}" for n, item in enumerate(items)
    ]
    if len(set(names)) != len(names):
        raise ValueError("register_pairs: two pairs have the same 'name'; each pair needs its own sub-folder.")
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    dev = resolve_device(device, "register_pairs")
    use_network = _resolve_use_network(use_network, mode, "register_pairs")
    loaded = load_bundle_network(bundle_dir, dev, model_path) if use_network else None
    load_seconds = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    bar = Progress(len(items), "monai-avsm register --pairs", progress, _LOGGER, unit="pair", leave=True)
    try:
        for item, name in zip(items, names):
            t1 = time.perf_counter()
            row: dict[str, Any] = {"name": name, "moving": item["moving"], "fixed": item["fixed"]}
            try:
                result = register(
                    item["moving"],
                    item["fixed"],
                    os.path.join(out, name),
                    moving_label=item.get("moving_label"),
                    fixed_label=item.get("fixed_label"),
                    mask=item.get("mask"),
                    refine=refine,
                    spacing=spacing,
                    overwrite=overwrite,
                    progress=False,
                    network=loaded,
                    outputs=outputs,
                    mode=mode,
                    max_seconds=max_seconds,
                    similarity=similarity,
                    prealignment=prealignment,
                    use_network=use_network,
                    bundle_dir=bundle_dir,
                    model_path=model_path,
                    device=dev,
                )
                m = result["metrics"]
                row.update(status="ok", error="", folder=result["output_dir"])
                for key in ("dice_identity", "dice_affine", "dice_avsm"):
                    if key in m:
                        row[key] = round(m[key], 4)
                row["folds"] = m["jacobian"]["folds"]
                if m.get("inverse_consistency"):
                    row["inverse_consistency_mean_mm"] = round(m["inverse_consistency"]["forward_inverse_mean_mm"], 4)
            except Exception as e:  # one broken pair must not stop the others
                row.update(status="failed", error=f"{type(e).__name__}: {e}", folder="")
                _LOGGER.warning(f"register_pairs: pair {name!r} failed: {e}")
            row["seconds"] = round(time.perf_counter() - t1, 3)
            rows.append(row)
            bar.done(f"{sum(r['status'] == 'failed' for r in rows)} failed")
    finally:
        bar.close()
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    csv_path = os.path.join(out, "summary.csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    failed = sum(r["status"] == "failed" for r in rows)
    summary = {
        "output_dir": out,
        "pairs": rows,
        "failed": failed,
        "model_load_seconds": round(load_seconds, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
    }
    json_path = os.path.join(out, "summary.json")
    with open(json_path, "w") as f:
        json.dump(summary, f, indent=2)
    return {**summary, "summary_csv": csv_path, "summary_json": json_path}
