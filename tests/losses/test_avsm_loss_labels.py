"""The label Dice term of AVSMLoss (synthetic training) and the label targets of PreparePairBatch."""

from __future__ import annotations

import unittest

import torch

from monai_avsm.engines import PreparePairBatch
from monai_avsm.functional.affine import affine_to_map
from monai_avsm.functional.maps import identity_map
from monai_avsm.losses import AVSMLoss
from monai_avsm.losses.avsm import fold_labels


def _blocks(shape=(12, 14, 10)) -> torch.Tensor:
    """(1, 1, *S) labels: three boxes of labels 1, 7, 40 on background 0."""
    lab = torch.zeros(1, 1, *shape, dtype=torch.int64)
    lab[..., 2:6, 3:9, 2:8] = 1
    lab[..., 6:10, 3:9, 2:8] = 7
    lab[..., 3:9, 9:12, 3:7] = 40
    return lab


def _pred(phi: torch.Tensor, image: torch.Tensor) -> dict:
    """A vSVF-stage prediction with one step whose map is ``phi`` (the other terms zero)."""
    b, d = phi.shape[:2]
    low = torch.zeros(b, d, *[max(n // 2, 1) for n in phi.shape[2:]], dtype=phi.dtype)
    return {
        "maps": [phi],
        "warped_steps": [image],
        "momenta": [low],
        "velocities": [low],
        "fixed": image,
        "moving": image,
    }


class TestFoldLabels(unittest.TestCase):
    def test_known_answer(self):
        lab = torch.tensor([[[0, 1, 2, 3, 4, 5, 6, 31]]])
        self.assertEqual(fold_labels(lab, 4).tolist(), [[[0, 1, 2, 3, 1, 2, 3, 1]]])
        self.assertEqual(fold_labels(lab.float(), 40).tolist(), lab.tolist())  # fewer labels than classes: unchanged

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            fold_labels(torch.zeros(1, 1, 2), 1)
        with self.assertRaisesRegex(ValueError, ">= 0"):
            fold_labels(-torch.ones(1, 1, 2), 4)


class TestLabelDice(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.lab = _blocks()
        self.image = torch.rand(1, 1, *self.lab.shape[2:], dtype=torch.float64)
        self.phi = identity_map(self.lab.shape[2:], dtype=torch.float64)

    def _loss(self, **kw) -> AVSMLoss:
        # zero similarity so that the Dice term is isolated
        return AVSMLoss("vsvf", similarity=lambda a, b: (a - b).abs().mean() * 0, momentum_reg_weight=0.0, **kw)

    def test_identity_is_zero_and_shift_is_not(self):
        loss = self._loss(label_dice_weight=1.0, label_dice_classes=8)
        same = loss(_pred(self.phi, self.image), self.image, moving_label=self.lab, fixed_label=self.lab)
        self.assertLess(float(same), 1e-4)
        self.assertIn("label_dice", loss.parts)
        shifted = torch.roll(self.lab, 2, dims=2)
        off = loss(_pred(self.phi, self.image), self.image, moving_label=self.lab, fixed_label=shifted)
        self.assertGreater(float(off), 0.1)

    def test_weight_scales_and_off_by_default(self):
        shifted = torch.roll(self.lab, 2, dims=2)
        one = self._loss(label_dice_weight=1.0)(
            _pred(self.phi, self.image), self.image, moving_label=self.lab, fixed_label=shifted
        )
        three = self._loss(label_dice_weight=3.0)(
            _pred(self.phi, self.image), self.image, moving_label=self.lab, fixed_label=shifted
        )
        torch.testing.assert_close(three, 3 * one)
        default = self._loss()
        out = default(_pred(self.phi, self.image), self.image, moving_label=self.lab, fixed_label=shifted)
        self.assertEqual(float(out), 0.0)
        self.assertNotIn("label_dice", default.parts)

    def test_mapping_target_equals_keywords(self):
        shifted = torch.roll(self.lab, 1, dims=3)
        loss = self._loss(label_dice_weight=1.0)
        a = loss(_pred(self.phi, self.image), self.image, moving_label=self.lab, fixed_label=shifted)
        b = loss(_pred(self.phi, self.image), {"fixed": self.image, "moving_label": self.lab, "fixed_label": shifted})
        torch.testing.assert_close(a, b)
        with self.assertRaisesRegex(KeyError, "'fixed'"):
            loss(_pred(self.phi, self.image), {"moving_label": self.lab})

    def test_gradient_moves_the_map_towards_the_labels(self):
        """One gradient step on a translation of the map lowers the Dice loss of a shifted pair (known direction)."""
        shape = self.lab.shape[2:]
        fixed_label = torch.roll(self.lab, 1, dims=2)  # fixed(x) = moving(x - 1 voxel): phi(x) = x - 1 voxel
        loss = self._loss(label_dice_weight=1.0)
        b = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
        phi = affine_to_map(torch.eye(3, dtype=torch.float64)[None], b, shape)
        value = loss(_pred(phi, self.image), self.image, moving_label=self.lab, fixed_label=fixed_label)
        value.backward()
        # decreasing the first coordinate of the map (pulling from x - 1) lowers the loss: positive gradient
        self.assertGreater(float(b.grad[0, 0]), 0.0)
        step = 2.0 / (shape[0] - 1)  # one voxel in normalised units
        phi1 = affine_to_map(torch.eye(3, dtype=torch.float64)[None], torch.tensor([[-step / 2, 0.0, 0.0]]), shape)
        lower = loss(_pred(phi1, self.image), self.image, moving_label=self.lab, fixed_label=fixed_label)
        self.assertLess(float(lower), float(value))

    def test_bad_parameters(self):
        with self.assertRaisesRegex(ValueError, "label_dice_classes"):
            AVSMLoss(label_dice_weight=1.0, label_dice_classes=1)
        with self.assertRaises(ValueError):
            AVSMLoss(label_dice_weight=-1.0)


class TestPrepareLabels(unittest.TestCase):
    def test_label_targets(self):
        batch = {k: torch.rand(1, 1, 4, 5, 6) for k in ("moving", "fixed")}
        batch.update(moving_label=torch.ones(1, 1, 4, 5, 6), fixed_label=torch.zeros(1, 1, 4, 5, 6))
        moving, target, args, _ = PreparePairBatch(label_keys=("moving_label", "fixed_label"))(batch)
        self.assertEqual(sorted(target), ["fixed", "fixed_label", "moving_label"])
        torch.testing.assert_close(target["fixed"], args[0])
        torch.testing.assert_close(target["moving_label"], batch["moving_label"])
        _, plain, _, _ = PreparePairBatch()(batch)
        self.assertIsInstance(plain, torch.Tensor)
        with self.assertRaisesRegex(KeyError, "fixed_label"):
            PreparePairBatch(label_keys=("moving_label", "fixed_label"))(
                {"moving": batch["moving"], "fixed": batch["fixed"]}
            )
        with self.assertRaisesRegex(ValueError, "label_keys"):
            PreparePairBatch(label_keys="moving_label")


if __name__ == "__main__":
    unittest.main()
