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
r"""The Adam update of the per-pair optimisations (``affine_opt``, ``deformable_opt``) and its plateau rule.

Why not ``torch.optim.Adam``: every ``torch.optim`` optimiser imports ``torch._dynamo`` when it is built (its
``add_param_group`` is wrapped by ``torch._disable_dynamo``), about **1.2 s** on 2 CPU cores, once per process. The
one-pair command runs one process per pair, so that import was half of the initial alignment's time (2.4 s) and a
seventh of the accurate path's. The per-pair problems have one parameter tensor and need no hooks, state dicts or
foreach kernels, so the update is written out here, operation for operation as ``torch.optim.Adam``'s
single-tensor path with its defaults (no weight decay, AMSGrad or maximisation), and tested equal to it in float64
(``tests/optimization/test_adam.py``), together with ``ReduceLROnPlateau``'s defaults (mode ``min``, relative
threshold ``1e-4``, no cooldown).

Adam (Kingma & Ba, ICLR 2015, Algorithm 1) for a parameter :math:`\theta` with gradient :math:`g_t`:

.. math::
    m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
    \theta_t = \theta_{t-1} - \frac{\alpha}{1 - \beta_1^t} \,
    \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon}.
"""

from __future__ import annotations

import math

import torch

__all__ = ["Adam", "PlateauHalving"]


class Adam:
    r"""Adam on one tensor that requires grad (the equation above; ``torch.optim.Adam``'s defaults).

    Args:
        param: the leaf tensor to optimise (``requires_grad=True``), updated in place by :meth:`step`.
        lr: learning rate :math:`\alpha` (> 0).
        betas: :math:`(\beta_1, \beta_2)`, each in [0, 1).
        eps: :math:`\epsilon` (>= 0).

    Example::

        p = torch.zeros(3, requires_grad=True)
        opt = Adam(p, lr=0.1)
        for _ in range(100):
            opt.zero_grad()
            ((p - 1) ** 2).sum().backward()
            opt.step()
    """

    def __init__(
        self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if not isinstance(param, torch.Tensor) or not param.requires_grad or not param.is_leaf:
            raise ValueError("Adam: 'param' must be a leaf tensor with requires_grad=True.")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"Adam: 'lr' must be a finite number > 0, got {lr}.")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: 'betas' must be two numbers in [0, 1), got {betas}.")
        if not eps >= 0:
            raise ValueError(f"Adam: 'eps' must be >= 0, got {eps}.")
        self.param, self.lr, self.betas, self.eps = param, float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.steps = 0
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)

    def zero_grad(self) -> None:
        """Drop the gradient (as ``set_to_none=True``)."""
        self.param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update from ``param.grad`` (no gradient: nothing happens, as in ``torch.optim``)."""
        grad = self.param.grad
        if grad is None:
            return
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad.conj(), value=1 - beta2)
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2 = 1 - beta2**self.steps
        step_size = self.lr / bias_correction1
        denom = (self.exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)


class PlateauHalving:
    r"""Multiply an :class:`Adam`'s learning rate by ``factor`` once the loss has not improved for more than
    ``patience`` calls (``torch.optim.lr_scheduler.ReduceLROnPlateau`` with mode ``min``, ``threshold_mode="rel"``,
    ``cooldown=0``, ``min_lr=0``, ``eps=1e-8``): a loss :math:`L` improves when
    :math:`L < L_{best} (1 - \mathrm{threshold})`.
    """

    def __init__(self, optimizer: Adam, factor: float = 0.5, patience: int = 10, threshold: float = 1e-4) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"PlateauHalving: 'factor' must be in (0, 1), got {factor}.")
        if isinstance(patience, bool) or int(patience) != patience or patience < 0:
            raise ValueError(f"PlateauHalving: 'patience' must be an integer >= 0, got {patience}.")
        self.optimizer, self.factor, self.patience, self.threshold = optimizer, float(factor), int(patience), threshold
        self.best = math.inf
        self.bad = 0

    def step(self, loss: float) -> None:
        """Record the loss of the last iteration; halve the learning rate after a plateau."""
        loss = float(loss)
        if loss < self.best * (1.0 - self.threshold):
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            new_lr = self.optimizer.lr * self.factor
            if self.optimizer.lr - new_lr > 1e-8:
                self.optimizer.lr = new_lr
            self.bad = 0
