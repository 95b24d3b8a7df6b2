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
"""The written-out Adam and plateau rule against torch.optim's, step for step in float64."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from monai_avsm.optimization.adam import Adam, PlateauHalving


def _rosenbrock(p: torch.Tensor) -> torch.Tensor:
    return ((1 - p[::2]) ** 2 + 100 * (p[1::2] - p[::2] ** 2) ** 2).sum()


@pytest.mark.parametrize("lr,betas,eps", [(1e-2, (0.9, 0.999), 1e-8), (0.3, (0.5, 0.9), 1e-3)])
def test_adam_equals_torch(lr, betas, eps):
    start = torch.linspace(-1.5, 1.2, 8, dtype=torch.float64)
    ours = start.clone().requires_grad_(True)
    ref = start.clone().requires_grad_(True)
    opt, ref_opt = Adam(ours, lr=lr, betas=betas, eps=eps), torch.optim.Adam([ref], lr=lr, betas=betas, eps=eps)
    for _ in range(200):
        opt.zero_grad()
        ref_opt.zero_grad(set_to_none=True)
        _rosenbrock(ours).backward()
        _rosenbrock(ref).backward()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=0, atol=1e-13)
    assert not torch.equal(ours.detach(), start)  # it moved
    assert _rosenbrock(ours.detach()) < _rosenbrock(start)


def test_plateau_equals_reduce_lr_on_plateau():
    start = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    ours = start.clone().requires_grad_(True)
    ref = start.clone().requires_grad_(True)
    opt, ref_opt = Adam(ours, lr=0.5), torch.optim.Adam([ref], lr=0.5)
    plateau = PlateauHalving(opt, factor=0.5, patience=3)
    ref_plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, factor=0.5, patience=3)
    lrs = []
    for _ in range(120):  # a large step oscillates around the minimum of |p|: plateaus, so the step is halved
        for p, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad()
            p.abs().sum().backward()
            o.step()
        plateau.step(float(ours.detach().abs().sum()))
        ref_plateau.step(float(ref.detach().abs().sum()))
        lrs.append(opt.lr)
        assert opt.lr == ref_opt.param_groups[0]["lr"]
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=0, atol=1e-13)
    assert min(lrs) < 0.5 / 4  # halved at least three times


def test_no_gradient_no_step_and_errors():
    p = torch.ones(2, requires_grad=True)
    opt = Adam(p, lr=0.1)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(2)) and opt.steps == 0
    with pytest.raises(ValueError, match="requires_grad"):
        Adam(torch.ones(2), lr=0.1)
    with pytest.raises(ValueError, match="'lr'"):
        Adam(p, lr=0.0)
    with pytest.raises(ValueError, match="'betas'"):
        Adam(p, lr=0.1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="'patience'"):
        PlateauHalving(opt, patience=-1)


def test_affine_opt_does_not_import_dynamo():
    """The reason the update is written out: torch.optim imports torch._dynamo (about 1.2 s per process)."""
    code = (
        "import sys, torch\n"
        "from monai_avsm.optimization import affine_opt\n"
        "g = torch.linspace(0, 1, 16)\n"
        "img = (g[:, None] * g[None, :])[None, None]\n"
        "affine_opt(img.roll(1, -1), img, scales=(1.0,), iterations=(3,), progress=False)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, encoding="utf-8", check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
