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
"""An inferer that adds test-time refinement to the network (method spec §8): the bundle's ``inferer`` is the
swappable piece of MONAI's engines, so ``--refine_iterations N`` in ``inference.json`` / ``evaluate.json`` refines
every pair after the network without changing the network or the engine.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import Inferer

from monai_avsm.optimization import refine

__all__ = ["RefineInferer"]


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
