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
r"""The shipped bundle for the one-pair tools: where it is, its settings, its network.

- :func:`default_bundle_dir`: ``$MONAI_AVSM_BUNDLE``, the repository's ``bundle/`` (source checkout or editable
  install), or the copy a wheel installs under ``<prefix>/share/monai_avsm/bundle``;
- :func:`bundle_settings`: the working grid and step counts of ``configs/inference.json`` (plain JSON reading);
- :func:`load_bundle_network`: the network built from the config by MONAI's ``ConfigParser`` with its weights;
- :func:`load_inference_network`: the same network for inference on the working grid, from a TorchScript trace kept
  in a cache folder when one fits (model file, settings, device, working spacing, torch version), so that a
  registration needs neither ``import monai`` (about 3 s on 2 CPU cores) nor building the network. On a cache miss
  the network is built with MONAI, traced (``torch.jit.trace``, exact to float32 round-off, checked on every new
  trace against the eager network) and stored for the next call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from monai_avsm.networks.utils import read_state_dict

__all__ = [
    "default_bundle_dir",
    "bundle_settings",
    "load_bundle_network",
    "load_inference_network",
    "InferenceNetwork",
    "model_cache_dir",
    "resolve_device",
]

_LOGGER = logging.getLogger(__name__)
_SETTING_KEYS = ("spatial_size", "spatial_dims", "affine_test_steps", "vsvf_steps", "time_steps")
_OPTIONAL_KEYS = ("working_spacing", "prealignment")
#: how the one-pair tools pre-align a pair before the network (inference.json ``prealignment``)
PREALIGNMENTS = ("center_of_mass", "initial_alignment")


def _candidates() -> list[Path]:
    out = []
    if os.environ.get("MONAI_AVSM_BUNDLE"):
        out.append(Path(os.environ["MONAI_AVSM_BUNDLE"]))
    out.append(Path(__file__).resolve().parents[2] / "bundle")  # a source checkout / editable install
    for prefix in dict.fromkeys((sysconfig.get_path("data"), sys.prefix, sys.base_prefix)):
        out.append(Path(prefix) / "share" / "monai_avsm" / "bundle")  # setup.cfg [options.data_files]: wheels
    return out


def default_bundle_dir() -> str:
    """The shipped bundle: ``$MONAI_AVSM_BUNDLE`` if set, else the ``bundle/`` folder next to the package (a source
    checkout or editable install), else the copy installed with the wheel (``<prefix>/share/monai_avsm/bundle``).

    Raises:
        FileNotFoundError: none of them holds ``configs/inference.json``.
    """
    candidates = _candidates()
    for c in candidates:
        if (c / "configs" / "inference.json").is_file():
            return str(c)
    raise FileNotFoundError(
        f"default_bundle_dir: no bundle found (looked in {[str(c) for c in candidates]}); pass the bundle folder "
        "(bundle_dir=... or --bundle DIR, the repository's bundle/ folder) or set MONAI_AVSM_BUNDLE."
    )


def resolve_device(device: str | torch.device | None, caller: str = "register") -> torch.device:
    """``None``/``"auto"`` -> CUDA when available, else CPU; a CUDA device asked for without CUDA is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{caller}: device {str(device)!r} was asked for but CUDA is not available here; use 'cpu'.")
    return dev


def _config_path(bundle_dir: str | os.PathLike | None) -> tuple[str, str]:
    bundle = str(bundle_dir) if bundle_dir is not None else default_bundle_dir()
    config = os.path.join(bundle, "configs", "inference.json")
    if not os.path.isfile(config):
        raise FileNotFoundError(f"load_bundle_network: {config!r} does not exist; is {bundle!r} an AVSM bundle folder?")
    return bundle, config


def bundle_settings(bundle_dir: str | os.PathLike | None = None, model_path: str | os.PathLike | None = None) -> dict:
    """The settings of the bundle's ``inference.json`` that the one-pair tools need, read as plain JSON: ``bundle_dir``,
    ``model_path``, ``spatial_size``, ``spatial_dims``, ``affine_test_steps``, ``vsvf_steps``, ``time_steps`` and
    ``working_spacing`` (the model's voxel size in mm, ``None`` when the config has none) and ``prealignment``
    (``"center_of_mass"``, the default, or ``"initial_alignment"`` for a model trained on pairs after the initial
    alignment of :func:`~monai_avsm.optimization.initial_alignment`).

    A value that is not a literal (a ``@``/``$`` expression) is resolved with MONAI's ``ConfigParser``.

    Raises:
        FileNotFoundError: no bundle, or its trained model is missing.
    """
    bundle, config = _config_path(bundle_dir)
    with open(config) as f:
        raw = json.load(f)
    values: dict[str, Any] = {}
    parser = None
    for key in _SETTING_KEYS + _OPTIONAL_KEYS + ("model_path",):
        if key in _OPTIONAL_KEYS and key not in raw:
            values[key] = None
            continue
        value = raw.get(key)
        literal = not (isinstance(value, str) and value[:1] in "@$") and not (
            isinstance(value, list) and any(isinstance(v, str) for v in value)
        )
        if key == "model_path" and model_path is not None:
            values[key] = str(model_path)
            continue
        if key == "model_path" and value == "$os.path.join(@bundle_root, 'models', 'model.pt')":
            values[key] = os.path.join(bundle, "models", "model.pt")
            continue
        if not literal:
            if parser is None:
                from monai.bundle import ConfigParser

                parser = ConfigParser()
                parser.read_config(config)
                parser["bundle_root"] = bundle
            value = parser.get_parsed_content(key)
        values[key] = value
    model = values["model_path"]
    if not os.path.isfile(model):
        raise FileNotFoundError(
            f"load_bundle_network: the trained model {model!r} does not exist. Train one with: python -m monai.bundle "
            "run training --config_file bundle/configs/train.json, or pass model_path."
        )
    prealignment = values["prealignment"] or "center_of_mass"
    if prealignment not in PREALIGNMENTS:
        raise ValueError(
            f"bundle_settings: {config}: 'prealignment' must be one of {PREALIGNMENTS}, got {prealignment!r}."
        )
    return {
        "bundle_dir": os.path.abspath(bundle),
        "model_path": os.path.abspath(model),
        "spatial_size": [int(s) for s in values["spatial_size"]],
        "spatial_dims": int(values["spatial_dims"]),
        "affine_test_steps": int(values["affine_test_steps"]),
        "vsvf_steps": int(values["vsvf_steps"]),
        "time_steps": int(values["time_steps"]),
        "working_spacing": None if values["working_spacing"] is None else float(values["working_spacing"]),
        "prealignment": prealignment,
    }


def load_bundle_network(
    bundle_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    model_path: str | os.PathLike | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The bundle's inference network (built by MONAI's ``ConfigParser`` from ``network_def``) with its trained
    weights, in eval mode, and its settings (:func:`bundle_settings`).

    Args:
        bundle_dir: the bundle folder (default :func:`default_bundle_dir`).
        device: ``"cpu"``, ``"cuda"`` (default: CUDA when available).
        model_path: weights to load (default: the bundle's ``models/model.pt``).
    """
    from monai.bundle import ConfigParser

    settings = bundle_settings(bundle_dir, model_path)
    parser = ConfigParser()
    parser.read_config(os.path.join(settings["bundle_dir"], "configs", "inference.json"))
    parser["bundle_root"] = settings["bundle_dir"]
    dev = resolve_device(device)
    network = parser.get_parsed_content("network_def")
    try:
        network.load_state_dict(read_state_dict(settings["model_path"], caller="load_bundle_network"))
    except RuntimeError as e:
        raise RuntimeError(
            f"load_bundle_network: {settings['model_path']!r} does not fit the bundle's network: {e}"
        ) from e
    network.to(dev).eval()
    return network, settings


def model_cache_dir() -> str:
    """Where traced networks are kept: ``$MONAI_AVSM_CACHE_DIR``, else ``$XDG_CACHE_HOME/monai_avsm`` (default
    ``~/.cache/monai_avsm``)."""
    if os.environ.get("MONAI_AVSM_CACHE_DIR"):
        return os.environ["MONAI_AVSM_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "monai_avsm")


class _Traceable(torch.nn.Module):
    """AVSMNet's inference outputs as a tuple (``torch.jit.trace`` needs tensors): map, affine, warped, and the
    velocities of the vSVF steps stacked (an empty tensor without vSVF steps)."""

    def __init__(self, net: torch.nn.Module, spacing: torch.Tensor | None) -> None:
        super().__init__()
        self.net = net
        self.spacing = spacing

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor):
        out = self.net(moving, fixed, spacing=self.spacing)
        v = out.get("velocities") or []
        velocities = torch.stack(v, 0) if len(v) else torch.zeros(0, device=moving.device)
        return out["map"], out["affine"], out["warped"], velocities


class InferenceNetwork:
    """The bundle's network for inference on its working grid: ``net(moving, fixed)`` -> ``{"map", "affine",
    "warped", "velocities"}`` (AVSMNet's keys), ``integrator`` (the vSVF steps' map integrator, for the inverse),
    ``settings`` and ``source`` (``"trace-cache"``, ``"traced"`` or ``"eager"``).

    ``eager`` is the ``nn.Module`` when it was built (``None`` when the network came from the cache).
    """

    def __init__(self, module, integrator, settings: dict, source: str, device: torch.device, eager=None) -> None:
        self.module, self.integrator, self.settings = module, integrator, settings
        self.source, self.device, self.eager = source, device, eager

    def __call__(self, moving: torch.Tensor, fixed: torch.Tensor) -> dict[str, Any]:
        with torch.no_grad():
            phi, affine, warped, velocities = self.module(moving, fixed)
        return {
            "map": phi,
            "affine": affine,
            "warped": warped,
            "velocities": list(velocities.unbind(0)) if velocities.numel() else [],
            "moving": moving,
            "fixed": fixed,
        }


def _cache_key(settings: dict, device: torch.device, spacing: Sequence[float] | None) -> str:
    from monai_avsm._version import __version__

    model = settings["model_path"]
    st = os.stat(model)
    with open(os.path.join(settings["bundle_dir"], "configs", "inference.json"), "rb") as f:
        config = f.read()
    parts = [
        os.path.realpath(model),
        str(st.st_size),
        str(st.st_mtime_ns),
        hashlib.sha256(config).hexdigest(),
        torch.__version__,
        __version__,
        device.type,
        "none" if spacing is None else ",".join(f"{float(s):.4f}" for s in spacing),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def load_inference_network(
    bundle_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    model_path: str | os.PathLike | None = None,
    spacing: Sequence[float] | None = None,
    cache: bool = True,
    network: tuple[torch.nn.Module, dict] | None = None,
) -> InferenceNetwork:
    """The bundle's network ready for one working grid, from the trace cache when possible.

    Args:
        bundle_dir, device, model_path: as :func:`load_bundle_network`.
        spacing: the working grid's voxel spacing given to the network (the vSVF smoother's kernel depends on it, and
            a trace keeps it as a constant: one cache entry per spacing, rounded to 1e-4 mm).
        cache: use and fill the cache (:func:`model_cache_dir`); ``False`` builds the eager network.
        network: an already built ``(network, settings)`` (:func:`load_bundle_network`): used as it is, no cache.
    """
    from monai_avsm.networks.blocks.integrator import MapAdvection

    dev = resolve_device(device)
    sp = None if spacing is None else torch.as_tensor(spacing, dtype=torch.float32).reshape(1, -1)
    if network is not None:
        net, settings = network
        return _eager(net, settings, next(net.parameters()).device, sp)
    settings = bundle_settings(bundle_dir, model_path)
    folder = model_cache_dir()
    key = _cache_key(settings, dev, None if spacing is None else list(spacing))
    trace_file = os.path.join(folder, f"avsm_{key}.ts")
    meta_file = trace_file + ".json"
    if cache and os.path.isfile(trace_file) and os.path.isfile(meta_file):
        try:
            with open(meta_file) as f:
                meta = json.load(f)
            module = torch.jit.load(trace_file, map_location=dev)
            integ = MapAdvection(**meta["integrator"]) if meta.get("integrator") else None
            return InferenceNetwork(module, integ, settings, "trace-cache", dev)
        except Exception as e:  # a damaged entry: rebuild it
            _LOGGER.warning(f"load_inference_network: ignoring the cached trace {trace_file!r} ({e}); rebuilding it.")
    net, settings = load_bundle_network(settings["bundle_dir"], dev, settings["model_path"])
    eager = _eager(net, settings, dev, sp)
    if not cache:
        return eager
    shape = (1, 1, *settings["spatial_size"])
    gen = torch.Generator().manual_seed(0)
    example = (torch.rand(shape, generator=gen).to(dev), torch.rand(shape, generator=gen).to(dev))
    check = (torch.rand(shape, generator=gen).to(dev), example[1])
    try:
        import warnings

        wrapper = _Traceable(net, None if sp is None else sp.to(dev))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the spacing and grids are constants of this trace
            traced = torch.jit.trace(wrapper, example, check_trace=False)
            ref, got = wrapper(*check), traced(*check)
        err = max(float((a - b).abs().max()) for a, b in zip(ref[:3], got[:3]))
        if err > 1e-4:
            raise RuntimeError(f"the trace differs from the network by {err:.3g} on a new input")
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as tmp:
            traced.save(tmp.name)
        os.replace(tmp.name, trace_file)  # atomic: a concurrent reader sees the old or the new file, never half
        integrator = eager.integrator
        meta = {
            "integrator": None
            if integrator is None
            else {"num_steps": int(integrator.num_steps), "velocity_clamp": integrator.velocity_clamp},
            "settings": settings,
            "spacing": None if spacing is None else [float(s) for s in spacing],
            "torch": torch.__version__,
        }
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as tmp:
            json.dump(meta, tmp, indent=2)
        os.replace(tmp.name, meta_file)
        return InferenceNetwork(traced, integrator, settings, "traced", dev, eager=net)
    except Exception as e:  # no cache folder, or a network that does not trace: the eager one does the same work
        _LOGGER.warning(f"load_inference_network: not caching a trace ({e}); using the eager network.")
        return eager


def _eager(net: torch.nn.Module, settings: dict, dev: torch.device, sp: torch.Tensor | None) -> InferenceNetwork:
    vsvf = getattr(net, "vsvf_net", None)
    integrator = vsvf.warp.integrator if vsvf is not None else None
    wrapper = _Traceable(net, None if sp is None else sp.to(dev))
    return InferenceNetwork(wrapper, integrator, settings, "eager", dev, eager=net)
