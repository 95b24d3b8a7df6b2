"""LossWeightScheduleHandler in a stock MONAI SupervisedTrainer training AVSMNet with AVSMLoss (the bundle's wiring):
the eq. 13 weight follows the epochs, the symmetric terms reach the loss, and the affine net learns."""

from __future__ import annotations

import unittest

import torch
from monai.data import DataLoader
from monai.engines import PrepareBatchExtraInput, SupervisedTrainer

from monai_avsm.handlers import LossWeightScheduleHandler
from monai_avsm.losses import AffineRegularizationWeight, AVSMLoss
from monai_avsm.networks.nets import AVSMNet, MultiStepAffineNet
from monai_avsm.transforms import RandSyntheticDeformationd
from tests.utils import real_slice


class TestLossWeightScheduleHandler(unittest.TestCase):
    def test_schedule_in_supervised_trainer(self):
        torch.manual_seed(0)
        image = real_slice((48, 56))[0]
        make_pair = RandSyntheticDeformationd(label_key=None, rotation_deg=8, displacement_mm=0.0).set_random_state(0)
        items = []
        for _ in range(4):
            d = make_pair({"image": image})
            items.append({"image": d["moving"], "label": d["fixed"]})
        loader = DataLoader(items, batch_size=2, shuffle=False)
        net = AVSMNet(MultiStepAffineNet(2, num_steps=1), symmetric_training=True)
        loss = AVSMLoss("affine", spatial_dims=2)
        seen = []
        loss_forward = loss.forward

        def spy(pred, fixed=None, moving=None):
            seen.append((loss.affine_reg_weight, "affine_ts" in pred))
            return loss_forward(pred, fixed, moving)

        loss.forward = spy
        before = [p.detach().clone() for p in net.parameters()]
        trainer = SupervisedTrainer(
            device=torch.device("cpu"),
            max_epochs=3,
            train_data_loader=loader,
            network=net,
            optimizer=torch.optim.Adam(net.parameters(), lr=1e-3),
            loss_function=loss,
            prepare_batch=PrepareBatchExtraInput(extra_keys="label"),
            train_handlers=[LossWeightScheduleHandler(loss, AffineRegularizationWeight(c_ar=10.0, k_ar=4.0))],
            decollate=False,
        )
        trainer.run()
        schedule = AffineRegularizationWeight()
        self.assertEqual([w for w, _ in seen], [schedule(0)] * 2 + [schedule(1)] * 2 + [schedule(2)] * 2)
        self.assertTrue(all(sym for _, sym in seen))
        self.assertTrue(torch.isfinite(torch.as_tensor(trainer.state.output["loss"])))
        self.assertTrue(any(not torch.equal(a, b) for a, b in zip(before, net.parameters())))

    def test_start_epoch_and_bad_attribute(self):
        handler = LossWeightScheduleHandler(AVSMLoss(spatial_dims=2), start_epoch=5)
        self.assertEqual(handler.value_at(3), AffineRegularizationWeight()(0))
        self.assertEqual(handler.value_at(8), AffineRegularizationWeight()(2))
        with self.assertRaisesRegex(AttributeError, "lambda_x"):
            LossWeightScheduleHandler(AVSMLoss(spatial_dims=2), attribute="lambda_x")


if __name__ == "__main__":
    unittest.main()
