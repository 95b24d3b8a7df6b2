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
r"""The complete AVSM training losses of the two stages (paper eq. 6 and eq. 11-12), on the output dict of
:class:`~monai_avsm.networks.nets.AVSMNet`, with the named parts kept for logging.

Affine stage (eq. 6):

.. math::
    \mathcal{L}_a = \mathrm{Sim}(I_0 \circ \Phi_a, I_1) + \lambda_{ar} R(A, b)
    + [\mathrm{Sim}(I_1 \circ \Phi_a^{ts}, I_0) + \lambda_{ar} R(A^{ts}, b^{ts}) + L_{a\text{-}sym}]

vSVF stage (eq. 11-12), summed over the vSVF steps :math:`\tau`:

.. math::
    \mathcal{L}_v = \sum_\tau \mathrm{Sim}(I_0 \circ \Phi_\tau^{-1}, I_1) + \lambda_{vr} \langle m_\tau, v_\tau \rangle
    + [\mathrm{Sim}(I_1 \circ (\Phi^{ts}_\tau)^{-1}, I_0) + \lambda_{vr} \langle m^{ts}_\tau, v^{ts}_\tau \rangle
    + L_{v\text{-}sym}(\Phi_\tau^{-1}, (\Phi^{ts}_\tau)^{-1})]

The bracketed terms are used when the prediction is symmetric (it has the ``"_ts"`` keys). Weights are constructor
arguments (and attributes a handler may change, e.g. :math:`\lambda_{ar}` per epoch, eq. 13); the similarity is any
two-argument image loss (default :class:`~monai_avsm.losses.MKLNCCLoss`; MONAI's
``GlobalMutualInformationLoss`` for multi-modal pairs). Optional image masks (a project extension, not in the paper)
restrict the similarity terms; a similarity then needs a ``mask`` keyword (as ``MKLNCCLoss.forward``).

Label supervision (a project extension for synthetic training, not in the paper; ``label_dice_weight`` > 0): when
the target carries the pair's label maps, each warped term adds :math:`\lambda_{dice}\,(1 - \mathrm{Dice})` between
the moving labels, one-hot and warped linearly by the same map (so the term is differentiable in the map), and the
fixed labels (SynthMorph's loss, Hoffmann et al., IEEE TMI 2022), MONAI's ``DiceLoss`` without the background.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

from monai_avsm.functional.affine import affine_from_theta
from monai_avsm.functional.maps import warp_image
from monai_avsm.losses.affine import AffineRegularizationLoss, AffineSymmetryLoss
from monai_avsm.losses.mk_lncc import MKLNCCLoss
from monai_avsm.losses.utils import check_weight, masked_similarity, parse_reduction
from monai_avsm.losses.vsvf import MapSymmetryLoss, MomentumRegularizationLoss
from monai_avsm.utils.enums import LossReduction
from monai_avsm.utils.options import look_up_option

__all__ = ["AVSMLoss", "fold_labels"]


def fold_labels(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""Fold an integer label map onto ``num_classes`` classes for a one-hot loss: background 0 stays 0 and label
    :math:`l > 0` becomes :math:`(l - 1) \bmod (K - 1) + 1`.

    Atlases carry up to a few hundred labels; a one-hot of all of them at a 2 mm brain grid is gigabytes. Folded
    classes group a few distant regions each, so the Dice still measures every boundary between different classes.

    Args:
        label: ``(B, 1, *S)`` non-negative integer values (any dtype).
        num_classes: ``K >= 2``.

    Returns:
        ``(B, 1, *S)`` ``int64`` in ``[0, K)``.
    """
    if int(num_classes) < 2:
        raise ValueError(f"fold_labels: 'num_classes' must be >= 2, got {num_classes}.")
    lab = label.round().long() if label.is_floating_point() else label.long()
    if lab.numel() and int(lab.min()) < 0:
        raise ValueError(f"fold_labels: label values must be >= 0, got minimum {int(lab.min())}.")
    return torch.where(lab > 0, (lab - 1) % (int(num_classes) - 1) + 1, torch.zeros_like(lab))


def _one_hot(label: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, 1, *S)`` labels -> ``(B, K, *S)`` one-hot of the folded labels."""
    return F.one_hot(fold_labels(label, num_classes)[:, 0], num_classes).movedim(-1, 1).to(dtype)


class AVSMLoss(_Loss):
    r"""Total loss of one AVSM training stage, computed from an :class:`~monai_avsm.networks.nets.AVSMNet` output.

    Args:
        stage: ``"affine"`` (eq. 6) or ``"vsvf"`` (eq. 11-12).
        similarity: the image similarity loss (default ``MKLNCCLoss(spatial_dims)``).
        spatial_dims: for the default similarity.
        affine_reg_weight: :math:`\lambda_{ar}` (epoch-dependent in the paper; set ``loss.affine_reg_weight`` from
            :class:`~monai_avsm.losses.AffineRegularizationWeight`).
        affine_sym_weight: :math:`\lambda_{as}` (paper: 10).
        momentum_reg_weight: :math:`\lambda_{vr}` (paper: 10).
        map_sym_weight: :math:`\lambda_{vs}` with :class:`MapSymmetryLoss` ``normalization="mean"`` (authors' code:
            500; the paper's 1e-4 goes with a sum over voxels).
        reduction: ``"mean"`` or ``"sum"`` over the batch.
        label_dice_weight: :math:`\lambda_{dice}` of the label Dice term (module docstring; 0: off, the paper).
        label_dice_classes: the labels are folded onto this many classes for the one-hot (:func:`fold_labels`).

    ``forward(pred, fixed=None, moving=None, mask=None, moving_mask=None)``: ``pred`` the network's dict;
    ``fixed``/``moving`` default to ``pred["fixed"]``/``pred["moving"]`` (``moving`` is needed for the
    target->source terms). After each call :attr:`parts` holds the detached named terms (``"similarity"``,
    ``"affine_reg"``, ``"affine_sym"``, ``"momentum_reg"``, ``"map_sym"``) for logging.

    Masks (a project extension, not in the paper): ``mask``, a binary mask on the fixed image's grid
    ``(B or 1, 1, *S)``, is passed as ``similarity(warped, fixed, mask=mask)`` to every source->target similarity
    term; ``moving_mask``, on the moving image's grid, to every target->source term of a symmetric prediction. A
    symmetric prediction with only ``mask`` keeps its target->source similarity unmasked (and ``moving_mask`` is
    unused by a one-direction prediction). The regularisation and symmetry terms are never masked. With
    :class:`MKLNCCLoss` only the windows with at least ``mask_fraction`` of their voxels in the mask count. A mask
    given with a similarity that has no ``mask`` keyword (e.g. MONAI's ``GlobalMutualInformationLoss``) is a
    ``TypeError``.

    Labels: ``fixed`` may be a mapping ``{"fixed": image, "moving_label": ..., "fixed_label": ...}`` (what
    :class:`~monai_avsm.engines.PreparePairBatch` with ``label_keys`` gives MONAI's trainer as the target), or the
    labels are passed as ``moving_label=``/``fixed_label=``. Without labels the Dice term is skipped.
    """

    def __init__(
        self,
        stage: str = "vsvf",
        similarity: _Loss | None = None,
        spatial_dims: int = 3,
        affine_reg_weight: float = 0.0,
        affine_sym_weight: float = 10.0,
        momentum_reg_weight: float = 10.0,
        map_sym_weight: float = 500.0,
        reduction: LossReduction | str = LossReduction.MEAN,
        label_dice_weight: float = 0.0,
        label_dice_classes: int = 16,
    ) -> None:
        reduction = parse_reduction(reduction, "AVSMLoss", allowed=("mean", "sum"))
        super().__init__(reduction=reduction)
        self.stage = look_up_option(stage, ("affine", "vsvf"))
        self.similarity = similarity if similarity is not None else MKLNCCLoss(spatial_dims, reduction=reduction)
        self.affine_reg_weight = check_weight(affine_reg_weight, "affine_reg_weight", "AVSMLoss")
        self.affine_sym_weight = check_weight(affine_sym_weight, "affine_sym_weight", "AVSMLoss")
        self.momentum_reg_weight = check_weight(momentum_reg_weight, "momentum_reg_weight", "AVSMLoss")
        self.map_sym_weight = check_weight(map_sym_weight, "map_sym_weight", "AVSMLoss")
        self._affine_reg = AffineRegularizationLoss(reduction=reduction)
        self._affine_sym = AffineSymmetryLoss(reduction=reduction)
        self._momentum_reg = MomentumRegularizationLoss(reduction=reduction)
        self._map_sym = MapSymmetryLoss(reduction=reduction)
        self.label_dice_weight = check_weight(label_dice_weight, "label_dice_weight", "AVSMLoss")
        if int(label_dice_classes) < 2:
            raise ValueError(f"AVSMLoss: 'label_dice_classes' must be >= 2, got {label_dice_classes}.")
        self.label_dice_classes = int(label_dice_classes)
        self._dice = None
        if self.label_dice_weight > 0:
            from monai.losses import DiceLoss  # MONAI only when the term is used (the core imports without MONAI)

            self._dice = DiceLoss(include_background=False, reduction=reduction)
        self.parts: dict[str, float] = {}

    def _label_dice(self, phi: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``1 - Dice`` of the one-hot ``source`` labels warped by ``phi`` against the ``target`` labels."""
        k = self.label_dice_classes
        warped = warp_image(_one_hot(source, k, phi.dtype), phi)
        return self._dice(warped, _one_hot(target, k, phi.dtype))

    @staticmethod
    def _get(pred: dict, key: str):
        if key not in pred:
            raise KeyError(f"AVSMLoss: the prediction has no {key!r}; keys: {sorted(pred)}.")
        return pred[key]

    def forward(  # type: ignore[override]
        self,
        pred: dict,
        fixed: torch.Tensor | None = None,
        moving: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        moving_mask: torch.Tensor | None = None,
        moving_label: torch.Tensor | None = None,
        fixed_label: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            pred: the dict of :class:`~monai_avsm.networks.nets.AVSMNet`.
            fixed, moving: ``(B, C, *S)`` (default: ``pred["fixed"]``, ``pred["moving"]``); ``fixed`` may also be a
                mapping with ``"fixed"`` and the two labels (class docstring).
            moving_label, fixed_label: ``(B, 1, *S)`` integer label maps for the label Dice term.
            mask: ``None`` or a binary fixed-image mask ``(B or 1, 1, *S)`` for the source->target similarity terms.
            moving_mask: ``None`` or a binary moving-image mask for the target->source terms (symmetric prediction).

        Returns:
            the stage loss, a scalar.

        Raises:
            TypeError: ``pred`` is not a dict; a mask is given but the similarity has no ``mask`` keyword.
            KeyError: a key the stage needs is missing from ``pred``.
        """
        if not isinstance(pred, dict):
            raise TypeError(f"AVSMLoss: 'pred' must be the dict returned by AVSMNet, got {type(pred).__name__}.")
        if isinstance(fixed, Mapping):
            if "fixed" not in fixed:
                raise KeyError(f"AVSMLoss: a mapping target needs a 'fixed' image; keys: {sorted(fixed)}.")
            moving_label = fixed.get("moving_label", moving_label)
            fixed_label = fixed.get("fixed_label", fixed_label)
            fixed = fixed["fixed"]
        fixed = fixed if fixed is not None else self._get(pred, "fixed")
        use_labels = self._dice is not None and moving_label is not None and fixed_label is not None
        symmetric = "map_ts" in pred
        if symmetric:
            moving = moving if moving is not None else self._get(pred, "moving")
        directions = [("", fixed, masked_similarity(self.similarity, mask, "AVSMLoss", "mask"))]
        if symmetric:
            directions.append(
                ("_ts", moving, masked_similarity(self.similarity, moving_mask, "AVSMLoss", "moving_mask"))
            )
        parts = {"similarity": 0.0, "affine_reg": 0.0, "affine_sym": 0.0, "momentum_reg": 0.0, "map_sym": 0.0}
        if use_labels:
            parts["label_dice"] = 0.0
            labels = {"": (moving_label, fixed_label), "_ts": (fixed_label, moving_label)}
        if self.stage == "affine":
            for s, target, similarity in directions:
                warped = self._get(pred, f"affine_warped{s}")
                parts["similarity"] = parts["similarity"] + similarity(warped, target)
                if use_labels:
                    dice = self._label_dice(self._get(pred, f"affine_map{s}"), *labels[s])
                    parts["label_dice"] = parts["label_dice"] + self.label_dice_weight * dice
                parts["affine_reg"] = parts["affine_reg"] + self.affine_reg_weight * self._affine_reg(
                    *affine_from_theta(self._get(pred, f"affine{s}"))
                )
            if symmetric:
                parts["affine_sym"] = self.affine_sym_weight * self._affine_sym(
                    *affine_from_theta(pred["affine"]), *affine_from_theta(pred["affine_ts"])
                )
        else:
            steps = len(self._get(pred, "maps"))
            for k in range(steps):
                for s, target, similarity in directions:
                    warped = self._get(pred, f"warped_steps{s}")[k]
                    parts["similarity"] = parts["similarity"] + similarity(warped, target)
                    reg = self._momentum_reg(self._get(pred, f"momenta{s}")[k], self._get(pred, f"velocities{s}")[k])
                    parts["momentum_reg"] = parts["momentum_reg"] + self.momentum_reg_weight * reg
                    if use_labels:
                        dice = self._label_dice(self._get(pred, f"maps{s}")[k], *labels[s])
                        parts["label_dice"] = parts["label_dice"] + self.label_dice_weight * dice
                if symmetric:
                    sym = self._map_sym(pred["maps"][k], pred["maps_ts"][k])
                    parts["map_sym"] = parts["map_sym"] + self.map_sym_weight * sym
        total = sum(parts.values())
        self.parts = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in parts.items()}
        return total

    def extra_repr(self) -> str:
        return (
            f"stage={self.stage!r}, affine_reg_weight={self.affine_reg_weight}, affine_sym_weight="
            f"{self.affine_sym_weight}, momentum_reg_weight={self.momentum_reg_weight}, map_sym_weight="
            f"{self.map_sym_weight}, label_dice_weight={self.label_dice_weight}"
        )
