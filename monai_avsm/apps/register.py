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
r"""One pair, one call: :func:`register` loads the shipped bundle's network, registers a moving image to a fixed image
of any size, spacing and orientation (brought to the model's working grid and back), optionally refines the result
(with a fixed-image mask), and writes the forward and inverse transforms, warped images and labels, a Jacobian
determinant image, a preview and a JSON record into a new folder. :func:`apply_transforms` applies written transforms
to another image; :func:`jacobian_summary` measures a written displacement field.

The console script ``monai-avsm`` (:mod:`monai_avsm.apps.cli`) calls these; the bundle's inference writes its files
with the same :func:`~monai_avsm.engines.write_pair_outputs`. MONAI has no one-call registration API; its I/O
(``LoadImage``), transforms, ``ConfigParser`` and ``DataLoader`` collation are used here.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser
from monai.data import list_data_collate

from monai_avsm.data.export import read_affine_transform, read_displacement_field, write_image
from monai_avsm.data.loading import pair_loading_transforms
from monai_avsm.engines.native import NativeResampler, load_native, pair_geometry, sample_at_points
from monai_avsm.engines.results import determinant_summary, write_pair_outputs
from monai_avsm.engines.utils import batch_spacing
from monai_avsm.functional.world import (
    apply_affine_points,
    resample_world,
    voxel_world_points,
    world_jacobian_determinant,
)
from monai_avsm.handlers.registration import stage_dice

__all__ = ["register", "apply_transforms", "jacobian_summary", "load_bundle_network", "default_bundle_dir"]

_LOGGER = logging.getLogger(__name__)
_TRANSFORM_SUFFIXES = (".tfm", ".txt", ".mat")
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def default_bundle_dir() -> str:
    """The shipped bundle: ``$MONAI_AVSM_BUNDLE`` if set, else the ``bundle/`` folder next to the package (a source
    checkout or editable install, as the README installs it).

    Raises:
        FileNotFoundError: neither holds ``configs/inference.json``.
    """
    candidates = []
    if os.environ.get("MONAI_AVSM_BUNDLE"):
        candidates.append(Path(os.environ["MONAI_AVSM_BUNDLE"]))
    candidates.append(Path(__file__).resolve().parents[2] / "bundle")
    for c in candidates:
        if (c / "configs" / "inference.json").is_file():
            return str(c)
    raise FileNotFoundError(
        f"default_bundle_dir: no bundle found (looked in {[str(c) for c in candidates]}); pass the bundle folder "
        "(bundle_dir=... or --bundle DIR, the repository's bundle/ folder) or set MONAI_AVSM_BUNDLE."
    )


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"register: device {str(device)!r} was asked for but CUDA is not available here; use 'cpu'.")
    return dev


def load_bundle_network(
    bundle_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    model_path: str | os.PathLike | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The bundle's inference network with its trained weights, in eval mode, and its settings.

    Args:
        bundle_dir: the bundle folder (default :func:`default_bundle_dir`).
        device: ``"cpu"``, ``"cuda"`` (default: CUDA when available).
        model_path: weights to load (default: the bundle's ``models/model.pt``).

    Returns:
        ``(network, settings)`` with ``settings`` holding ``bundle_dir``, ``model_path``, ``spatial_size``,
        ``spatial_dims``, ``affine_test_steps``, ``vsvf_steps``, ``time_steps``.
    """
    bundle = str(bundle_dir) if bundle_dir is not None else default_bundle_dir()
    config = os.path.join(bundle, "configs", "inference.json")
    if not os.path.isfile(config):
        raise FileNotFoundError(f"load_bundle_network: {config!r} does not exist; is {bundle!r} an AVSM bundle folder?")
    parser = ConfigParser()
    parser.read_config(config)
    parser["bundle_root"] = bundle
    dev = _device(device)
    model = str(model_path) if model_path is not None else parser.get_parsed_content("model_path")
    if not os.path.isfile(model):
        raise FileNotFoundError(
            f"load_bundle_network: the trained model {model!r} does not exist. Train one with: python -m monai.bundle "
            "run training --config_file bundle/configs/train.json, or pass model_path."
        )
    network = parser.get_parsed_content("network_def")
    state = torch.load(model, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        network.load_state_dict(state)
    except RuntimeError as e:
        raise RuntimeError(f"load_bundle_network: {model!r} does not fit the bundle's network: {e}") from e
    network.to(dev).eval()
    settings = {
        "bundle_dir": os.path.abspath(bundle),
        "model_path": os.path.abspath(model),
        "spatial_size": list(parser.get_parsed_content("spatial_size")),
        "spatial_dims": int(parser.get_parsed_content("spatial_dims")),
        "affine_test_steps": int(parser.get_parsed_content("affine_test_steps")),
        "vsvf_steps": int(parser.get_parsed_content("vsvf_steps")),
        "time_steps": int(parser.get_parsed_content("time_steps")),
    }
    return network, settings


def _versions() -> dict[str, str]:
    import monai

    import monai_avsm

    out = {"monai_avsm": monai_avsm.__version__, "monai": monai.__version__, "torch": torch.__version__}
    out["python"] = platform.python_version()
    try:
        import itk

        out["itk"] = itk.Version.GetITKVersion()
    except Exception:  # pragma: no cover - itk is a dependency
        pass
    return out


def _check_file(path: Any, name: str) -> str:
    if path is None:
        raise ValueError(f"register: '{name}' is required.")
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"register: the {name} file {p!r} does not exist.")
    if os.path.isfile(p) and os.path.getsize(p) == 0:
        raise ValueError(f"register: the {name} file {p!r} is empty.")
    return p


def _prepare_output(output_dir: str | os.PathLike, overwrite: bool) -> str:
    out = os.fspath(output_dir)
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise FileExistsError(f"register: the output {out!r} exists and is a file; give a new folder name.")
        if any(os.scandir(out)) and not overwrite:
            raise FileExistsError(
                f"register: the output folder {out!r} exists and is not empty; give a new folder, or overwrite=True "
                "(--overwrite) to replace the files in it."
            )
    os.makedirs(out, exist_ok=True)
    return out


def _working_mask(mask_file: str, geometry: dict, device: torch.device) -> torch.Tensor:
    """The fixed-image mask on the fixed working grid ``(1, 1, *S)`` float (nearest neighbour by world position)."""
    try:
        m = load_native(mask_file, label=False)
    except Exception as e:
        raise ValueError(f"register: cannot read the mask {mask_file!r}: {e}") from e
    data = m.as_tensor()
    if not torch.isfinite(data.float()).all():
        raise ValueError(f"register: the mask {mask_file!r} has NaN or infinite values.")
    values = torch.unique(data)
    if not bool(((values == 0) | (values == 1)).all()):
        raise ValueError(
            f"register: the mask {mask_file!r} must hold only 0 and 1, got values {values[:10].tolist()}"
            f"{' ...' if values.numel() > 10 else ''}."
        )
    points = voxel_world_points(geometry["fixed_affine"], geometry["fixed_shape"])
    w = resample_world(data.to(torch.float32), torch.as_tensor(m.affine, dtype=torch.float64), points, "nearest")
    if float(w.sum()) == 0:
        raise ValueError(
            f"register: the mask {mask_file!r} selects no voxel of the fixed image's working grid (is it the fixed "
            "image's mask, in the same world space?)."
        )
    return w.unsqueeze(0).to(device)


def _dice_rows(r: NativeResampler, pred: dict) -> dict[str, Any]:
    fixed_label = r.fixed_label().as_tensor()
    moving_label = r.moving(label=True).as_tensor()
    num_classes = int(max(int(fixed_label.max()), int(moving_label.max()))) + 1
    out: dict[str, Any] = {"labels": list(range(1, num_classes))}
    for stage, d in stage_dice(r, pred, 0, fixed_label, num_classes).items():
        out[f"dice_{stage}"] = float(torch.tensor(d).nanmean())
        out[f"dice_{stage}_per_label"] = d
    return out


def _jsonable(x: Any) -> Any:
    """Tensors and numpy values in a record -> lists and numbers (json)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if hasattr(x, "tolist") and not isinstance(x, str):
        return x.tolist()
    return x


def _load_pair(transforms, files_in: dict[str, str]) -> dict:
    """Run the loading transforms; a failure names the file and the cause (MONAI wraps it in
    ``RuntimeError("applying transform ...")``)."""
    try:
        return transforms(dict(files_in))
    except Exception as e:
        cause = e
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (ValueError, FileNotFoundError)) and any(p in str(cause) for p in files_in.values()):
            raise cause from e  # CheckPaird's messages name the key and the file
        for key, path in files_in.items():
            try:
                load_native(path)
            except Exception as read_error:
                raise ValueError(
                    f"register: cannot read the {key} file {path!r} (corrupt or not an image?): {read_error}"
                ) from e
        raise ValueError(f"register: loading the pair {files_in} failed: {cause}") from e


class _Progress:
    def __init__(self, enabled: bool, steps: Sequence[str]) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=len(steps), desc="monai-avsm register", unit="step")
            except ImportError:  # pragma: no cover - tqdm is a dependency
                self.bar = None

    def step(self, name: str) -> None:
        _LOGGER.info(f"register: {name}")
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
    network: tuple[torch.nn.Module, dict] | None = None,
) -> dict[str, Any]:
    r"""Register one pair with the shipped AVSM model and write every output (see
    :func:`~monai_avsm.engines.write_pair_outputs`) into ``output_dir``.

    Both images are read with MONAI (NIfTI, NRRD, MHA, ...), reoriented to RAS and resized to the model's working grid
    (``spatial_size`` of the bundle's ``inference.json``); the result is brought back to world space, so the warped
    moving image and label lie on the fixed image's native grid, the inverse results on the moving image's.

    Args:
        moving, fixed: image files.
        output_dir: a new (or empty) folder.
        moving_label, fixed_label: optional label maps (integer values) on the images' grids; the moving label is
            warped (nearest neighbour); with both, Dice per label before registration, after the affine part and
            after AVSM goes into the metrics.
        mask: optional binary mask of the fixed image (any grid in the fixed image's world space): the refinement's
            similarity counts only the windows inside it (:class:`~monai_avsm.losses.MKLNCCLoss` ``mask``).
        refine: L-BFGS refinement iterations after the network (:func:`~monai_avsm.optimization.refine`; never
            worse). Default: 0, or 20 when a mask is given (the mask acts through the refinement).
        spacing: working voxel size in mm (e.g. ``4.0``, the shipped model's): both images are resampled to it and
            padded or cropped about their centres to the model's grid, keeping their physical proportions, for
            images whose field of view differs from the training data's (about 192 x 224 x 192 mm). Default
            ``None``: each image's field of view is resized to the model's grid (as in training).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``None``/``"auto"`` (CUDA when available).
        bundle_dir: the bundle (default: the shipped one, :func:`default_bundle_dir`).
        model_path: other weights (e.g. fine-tuned, ``avsm_runs/finetune/checkpoints/model.pt``).
        overwrite: write into a non-empty ``output_dir``, replacing files of the same names.
        progress: a progress bar (tqdm) over the steps and the refinement's iterations.
        network: a ``(network, settings)`` pair from :func:`load_bundle_network`, to register many pairs without
            reloading.

    Returns:
        ``{"output_dir", "files" (name -> path), "metrics", "timings", "device", "settings", "record"}``; ``record``
        is what ``registration.json`` holds.

    Raises:
        FileNotFoundError: an input file, the bundle or its model is missing (named).
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False.
        ValueError: unreadable, corrupt or non-finite images, non-integer labels, images of the wrong dimension, a
            mask that is not binary or empty (each names the file).

    Example::

        import monai_avsm

        out = monai_avsm.register("moving.nii.gz", "fixed.nii.gz", "result", moving_label="moving_seg.nii.gz")
        print(out["files"]["warped"], out["metrics"]["inverse_consistency"])
    """
    t_start = time.perf_counter()
    files_in = {"moving": _check_file(moving, "moving"), "fixed": _check_file(fixed, "fixed")}
    if moving_label is not None:
        files_in["moving_label"] = _check_file(moving_label, "moving_label")
    if fixed_label is not None:
        files_in["fixed_label"] = _check_file(fixed_label, "fixed_label")
    mask_file = _check_file(mask, "mask") if mask is not None else None
    iterations = (20 if mask_file is not None else 0) if refine is None else int(refine)
    if iterations < 0:
        raise ValueError(f"register: 'refine' must be >= 0 iterations, got {refine}.")
    out_dir = _prepare_output(output_dir, overwrite)
    bar = _Progress(progress, ["load", "network", "refine", "write"])
    timings: dict[str, float] = {}
    try:
        bar.step("loading the model")
        t0 = time.perf_counter()
        net, settings = network if network is not None else load_bundle_network(bundle_dir, device, model_path)
        dev = next(net.parameters()).device
        bar.step("loading the images")
        transforms = pair_loading_transforms(
            spatial_size=settings["spatial_size"], spatial_dims=settings["spatial_dims"], spacing=spacing
        )
        item = _load_pair(transforms, files_in)
        batch = list_data_collate([item])
        geometry = pair_geometry(batch, 0)
        mask_working = _working_mask(mask_file, geometry, dev) if mask_file is not None else None
        timings["load_seconds"] = time.perf_counter() - t0
        bar.done()

        bar.step("network")
        voxel_spacing = batch_spacing(batch["fixed"])
        mov = batch["moving"].as_tensor().to(dev)
        fix = batch["fixed"].as_tensor().to(dev)
        t0 = time.perf_counter()
        with torch.no_grad():
            pred = net(mov, fix, spacing=None if voxel_spacing is None else voxel_spacing.to(dev))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        timings["network_seconds"] = time.perf_counter() - t0
        bar.done()

        bar.step(f"refinement ({iterations} iterations)" if iterations else "no refinement")
        t0 = time.perf_counter()
        refine_info: dict[str, Any] = {"iterations": iterations}
        if iterations > 0:
            from monai_avsm.optimization import refine as refine_fn

            options: dict[str, Any] = {"iterations": iterations, "progress": progress}
            if getattr(net, "vsvf_net", None) is not None:
                options["warp"] = net.vsvf_net.warp
            if voxel_spacing is not None:
                options["spacing"] = voxel_spacing.to(dev)
            if mask_working is not None:
                options["mask"] = mask_working
            with torch.enable_grad():
                pred = refine_fn(pred, **options)
            refine_info.update(
                initial_loss=float(pred["initial_loss"][0]),
                loss=float(pred["loss"][0]),
                improved=bool(pred["improved"][0]),
            )
        timings["refine_seconds"] = time.perf_counter() - t0
        bar.done()

        bar.step("writing")
        t0 = time.perf_counter()
        integrator = net.vsvf_net.warp.integrator if getattr(net, "vsvf_net", None) is not None else None
        record = write_pair_outputs(
            out_dir,
            geometry,
            pred,
            0,
            integrator=integrator,
            fixed_image=batch["fixed"][0],
            moving_image=batch["moving"][0],
            overwrite=overwrite,
        )
        metrics: dict[str, Any] = {
            "inverse_consistency": record.get("inverse_consistency"),
            "jacobian": record.get("jacobian"),
        }
        if "moving_label" in files_in and "fixed_label" in files_in:
            metrics.update(_dice_rows(NativeResampler(geometry), pred))
        metrics["refinement"] = refine_info
        timings["write_seconds"] = time.perf_counter() - t0
        timings["total_seconds"] = time.perf_counter() - t_start
        bar.done()
    finally:
        bar.close()
    timings = {k: round(v, 3) for k, v in timings.items()}
    used = {
        **settings,
        "moving": os.path.abspath(files_in["moving"]),
        "fixed": os.path.abspath(files_in["fixed"]),
        "moving_label": os.path.abspath(files_in["moving_label"]) if "moving_label" in files_in else None,
        "fixed_label": os.path.abspath(files_in["fixed_label"]) if "fixed_label" in files_in else None,
        "mask": os.path.abspath(mask_file) if mask_file else None,
        "refine_iterations": iterations,
        "working_spacing": None
        if spacing is None
        else (float(spacing) if isinstance(spacing, (int, float)) else list(spacing)),
        "overwrite": bool(overwrite),
    }
    full = {
        **record,
        "metrics": metrics,
        "timings": timings,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "versions": _versions(),
        "settings": used,
    }
    full = _jsonable(full)
    json_path = os.path.join(out_dir, "registration.json")
    with open(json_path, "w" if overwrite else "x") as f:
        json.dump(full, f, indent=2)
    files = {k: os.path.join(out_dir, v) for k, v in record["files"].items()}
    files["registration_json"] = json_path
    _LOGGER.info(f"register: wrote {out_dir} in {timings['total_seconds']:.1f} s")
    return {
        "output_dir": out_dir,
        "files": files,
        "metrics": metrics,
        "timings": timings,
        "device": str(dev),
        "settings": used,
        "record": full,
    }


def _reference_grid(reference: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    img = load_native(_check_file(reference, "reference"))
    return torch.as_tensor(img.affine, dtype=torch.float64), tuple(int(s) for s in img.shape[1:])


def _sample_field(disp: torch.Tensor, affine: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Displacement of a world field at world points (linear; zero outside the field's grid, as ITK)."""
    return resample_world(disp, affine, points, mode="bilinear").to(torch.float64)


def _parse_transform(item: str) -> tuple[str, bool]:
    """ANTs' ``[file,1]`` (inverse) / ``[file,0]`` syntax -> ``(file, invert)``."""
    text = item.strip()
    if text.startswith("[") and text.endswith("]") and "," in text:
        path, flag = text[1:-1].rsplit(",", 1)
        if flag.strip() not in ("0", "1"):
            raise ValueError(f"apply_transforms: {item!r}: the flag after the comma must be 0 or 1.")
        return path.strip(), flag.strip() == "1"
    return text, False


def _is_image_file(path: str) -> bool:
    return path.lower().endswith(_IMAGE_SUFFIXES)


def apply_transforms(
    transforms: str | os.PathLike | Sequence[str | os.PathLike],
    image: str | os.PathLike,
    reference: str | os.PathLike,
    output: str | os.PathLike,
    label: bool = False,
    overwrite: bool = False,
) -> str:
    r"""Apply written transforms to an image, as ``antsApplyTransforms -i image -r reference -t T1 -t T2 ...`` does.

    For each voxel ``p`` of the reference grid (world), the image is read at :math:`T_n(\dots T_2(T_1(p)))`: the
    transforms are listed in ANTs' order (the first listed acts first on the reference points; "the last one is
    applied first to the image"), checked against ANTs in ``tests/apps/test_ants_roundtrip.py``. Each transform is

    - a displacement field (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``; ITK vector image, LPS): ``p -> p + d(p)``
      (zero displacement outside its grid, as ITK);
    - an affine file (``.tfm``, ``.txt``, ``.mat``): ``p -> T p``; ``"[affine.mat,1]"`` uses its inverse (ANTs'
      syntax);
    - a folder written by :func:`register`: its ``displacement_field.nii.gz``.

    So ``[result/displacement_field.nii.gz]`` equals ``[result/deformable_field.nii.gz, result/affine.mat]``, and the
    inverse direction (``reference`` = the moving image) is ``[result/inverse_displacement_field.nii.gz]`` or
    ``["[result/affine.mat,1]", result/inverse_deformable_field.nii.gz]``.

    Args:
        transforms: one transform or a list (ANTs order).
        image: the image (or label map) to warp.
        reference: the image whose grid the output takes (e.g. the fixed image; for the inverse direction the
            moving image).
        output: the new file (never overwritten unless ``overwrite``).
        label: nearest neighbour (for label maps), else linear.
        overwrite: replace an existing ``output``.

    Returns:
        the path written.

    Raises:
        FileNotFoundError: a transform, the image or the reference is missing; FileExistsError: ``output`` exists;
        ValueError: a file that is neither a displacement field nor an affine file, a label map with non-integer
        values, an unreadable image.
    """
    caller = "apply_transforms"
    items = [transforms] if isinstance(transforms, (str, os.PathLike)) else list(transforms)
    if not items:
        raise ValueError(f"{caller}: give at least one transform.")
    out = os.fspath(output)
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{caller}: {out!r} exists; choose a new file name or pass overwrite=True (--overwrite).")
    ref_affine, ref_shape = _reference_grid(os.fspath(reference))
    img_path = _check_file(image, "image")
    try:
        img = load_native(img_path, label=label)
    except Exception as e:
        raise ValueError(f"{caller}: cannot read the image {img_path!r}: {e}") from e
    if label and img.is_floating_point():
        raise ValueError(f"{caller}: the label map {img_path!r} must hold integer values.")
    points = voxel_world_points(ref_affine, ref_shape)
    for t in items:
        t, invert = _parse_transform(os.fspath(t))
        if invert and not t.lower().endswith(_TRANSFORM_SUFFIXES):
            raise ValueError(f"{caller}: only affine files can be inverted with '[file,1]', got {t!r}.")
        if os.path.isdir(t):
            t = os.path.join(t, "displacement_field.nii.gz")
        if not os.path.isfile(t):
            raise FileNotFoundError(f"{caller}: the transform {t!r} does not exist.")
        if t.lower().endswith(_TRANSFORM_SUFFIXES):
            T = read_affine_transform(t)
            if invert:
                T = torch.linalg.inv(T)
            points = apply_affine_points(T, points)
        elif _is_image_file(t):
            disp, aff = read_displacement_field(t)
            points = points + _sample_field(disp, aff, points)
        else:
            raise ValueError(
                f"{caller}: cannot tell what {t!r} is; transforms are displacement fields "
                f"({', '.join(_IMAGE_SUFFIXES)}) or affine files ({', '.join(_TRANSFORM_SUFFIXES)})."
            )
    return write_image(out, sample_at_points(img, points, label), ref_affine, overwrite=overwrite)


def jacobian_summary(
    field: str | os.PathLike,
    output: str | os.PathLike | None = None,
    mask: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    r"""Statistics of :math:`\det J` of a written displacement field ``p -> p + d(p)`` (world mm).

    Args:
        field: a displacement field file (or a :func:`register` folder: its ``displacement_field.nii.gz``).
        output: optionally write the determinant image there (a new file).
        mask: optionally restrict the statistics to a binary mask on the field's grid.

    Returns:
        ``{"field", "voxels", "min", "max", "mean", "folds", "fold_fraction", "folds_mean_abs_det",
        "fraction_below_0.5", "fraction_above_2"}`` (folds: :math:`\det J \le 0`).
    """
    caller = "jacobian_summary"
    path = os.fspath(field)
    if os.path.isdir(path):
        path = os.path.join(path, "displacement_field.nii.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{caller}: the displacement field {path!r} does not exist.")
    disp, aff = read_displacement_field(path)
    points = voxel_world_points(aff, disp.shape[1:]) + disp
    det = world_jacobian_determinant(points, aff)
    if output is not None:
        write_image(output, det.to(torch.float32), aff, overwrite=overwrite)
    values = det[0]
    if mask is not None:
        m = load_native(_check_file(mask, "mask")).as_tensor()[0]
        if tuple(m.shape) != tuple(values.shape):
            raise ValueError(
                f"{caller}: the mask {os.fspath(mask)!r} has shape {tuple(m.shape)}, the field {tuple(values.shape)}."
            )
        values = values[m > 0]
        if values.numel() == 0:
            raise ValueError(f"{caller}: the mask {os.fspath(mask)!r} selects no voxel.")
    return {
        "field": os.path.abspath(path),
        "voxels": int(values.numel()),
        **determinant_summary(values),
        "fraction_below_0.5": float((values < 0.5).double().mean()),
        "fraction_above_2": float((values > 2).double().mean()),
        **({"output": os.path.abspath(os.fspath(output))} if output is not None else {}),
    }
