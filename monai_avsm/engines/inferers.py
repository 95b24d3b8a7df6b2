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
"""Inferers, the swappable piece of MONAI's engines:

- :class:`RefineInferer` adds test-time refinement to the network (method spec §8), so ``--refine_iterations N`` in
  ``inference.json`` / ``evaluate.json`` refines every pair after the network without changing the network or the
  engine;
- :class:`AutocastInferer` runs the network's forward pass under ``torch.autocast`` on the inputs' device, CPU
  included (``train.json --bf16 true``): MONAI's engines autocast only on CUDA (``amp=True``), while bfloat16
  convolutions on a CPU with AVX512-BF16 or AMX halve a training iteration (``docs/benchmarks.md``).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import Inferer

from monai_avsm.optimization import refine

__all__ = ["AutocastInferer", "RefineInferer"]

_AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _to_float32(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x
    if isinstance(x, dict):
        return {k: _to_float32(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_float32(v) for v in x)
    return x


class AutocastInferer(Inferer):
    """Run the network under ``torch.autocast(device_type=inputs.device.type, dtype=dtype)`` and return its floating
    outputs in float32, so that the losses and metrics after it run in float32.

    The networks keep their maps, the vSVF integration and the warps in float32 themselves (they disable autocast
    there); only the convolutions run in ``dtype``. With ``enabled=False`` it is MONAI's ``SimpleInferer``.

    Args:
        dtype: ``"bfloat16"`` (default; CPU and CUDA) or ``"float16"`` (CUDA).
        enabled: autocast on or off.

    Example (bundle config)::

        "inferer": {"_target_": "monai_avsm.engines.AutocastInferer", "enabled": "@bf16"}
    """

    def __init__(self, dtype: str = "bfloat16", enabled: bool = True) -> None:
        if dtype not in _AUTOCAST_DTYPES:
            raise ValueError(f"AutocastInferer: 'dtype' must be one of {sorted(_AUTOCAST_DTYPES)}, got {dtype!r}.")
        if isinstance(enabled, str) and enabled.lower() in ("true", "false"):  # "--bf16 false" arrives as a string
            enabled = enabled.lower() == "true"
        if not isinstance(enabled, bool):
            raise ValueError(f"AutocastInferer: 'enabled' must be true or false, got {enabled!r}.")
        super().__init__()
        self.dtype, self.enabled = _AUTOCAST_DTYPES[dtype], enabled

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return network(inputs, *args, **kwargs)
        if inputs.device.type == "cpu" and self.dtype == torch.float16:
            raise ValueError("AutocastInferer: float16 autocast is for CUDA; use dtype='bfloat16' on the CPU.")
        with torch.autocast(device_type=inputs.device.type, dtype=self.dtype):
            pred = network(inputs, *args, **kwargs)
        return _to_float32(pred)


class RefineInferer(Inferer):
    """Run the registration network, then :func:`~monai_avsm.optimization.refine` its output for ``iterations``
    L-BFGS iterations (one more vSVF step on the pair, starting exactly at the network's result, never worse).

    Args:
        iterations: refinement iterations per pair (0: the network's output unchanged).
        progress: log the refinement's progress.
        refine_kwargs: further arguments of :func:`~monai_avsm.optimization.refine` (e.g. ``momentum_reg_weight``).

    The network must return the ``AVSMNet`` dict; the refinement reuses its vSVF smoother and integrator. Gradients
    are enabled inside the refinement even under the evaluator's ``no_grad``.
    """

    def __init__(self, iterations: int = 20, progress: bool = False, **refine_kwargs: Any) -> None:
        if int(iterations) < 0:
            raise ValueError(f"RefineInferer: 'iterations' must be >= 0, got {iterations}.")
        super().__init__()
        self.iterations, self.progress, self.refine_kwargs = int(iterations), progress, refine_kwargs

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        pred = network(inputs, *args, **kwargs)
        if self.iterations == 0:
            return pred
        if not isinstance(pred, dict) or "map" not in pred:
            raise TypeError(
                "RefineInferer: the network must return the AVSMNet output dict (network_def#output 'dict')."
            )
        net = getattr(network, "module", network)
        vsvf = getattr(net, "vsvf_net", None)
        options = dict(self.refine_kwargs)
        if vsvf is not None and "warp" not in options:
            options["warp"] = vsvf.warp
        if "spacing" in kwargs and "spacing" not in options:
            options["spacing"] = kwargs["spacing"]
        with torch.enable_grad():
            return refine(pred, iterations=self.iterations, progress=self.progress, **options)
