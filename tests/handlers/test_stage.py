"""TrainingStageHandler (the two AVSM stages by epoch), EpochScheduleHandler (piecewise schedules), StopOnNaNLoss."""

from __future__ import annotations

import unittest

import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedTrainer

from monai_avsm.engines import PreparePairBatch
from monai_avsm.handlers import EpochScheduleHandler, NonFiniteLossError, StopOnNaNLoss, TrainingStageHandler
from monai_avsm.losses import AVSMLoss, GlobalNCCLoss, MKLNCCLoss
from monai_avsm.networks.nets import AVSMNet, MultiStepAffineNet, VSVFNet


def _net():
    return AVSMNet(MultiStepAffineNet(2, num_steps=1), VSVFNet(2, channels=(4, 8, 8, 8, 8), decoder_channels=(8, 8, 4)))


class TestTrainingStageHandler(unittest.TestCase):
    def test_stages_by_epoch(self):
        net, loss = _net(), AVSMLoss("affine", spatial_dims=2)
        handler = TrainingStageHandler(net, loss, vsvf_start_epoch=2)
        engine = Engine(lambda e, b: None)
        seen = []
        handler.attach(engine)  # first, so the recorder below sees the stage of the epoch

        @engine.on(Events.EPOCH_STARTED)
        def record(e):
            grad = next(net.affine_net.parameters()).requires_grad
            seen.append((loss.stage, net.vsvf_enabled, net.affine_frozen, grad))

        engine.run([0], max_epochs=4)
        self.assertEqual(seen[:2], [("affine", False, False, True)] * 2)
        self.assertEqual(seen[2:], [("vsvf", True, True, False)] * 2)
        # affine stage output has no vSVF keys; vSVF stage does
        x = torch.rand(1, 1, 16, 16)
        handler.apply("affine")
        self.assertNotIn("momenta", net(x, x))
        handler.apply("vsvf")
        self.assertIn("momenta", net(x, x))

    def test_bad_arguments(self):
        with self.assertRaisesRegex(TypeError, "must be an AVSMNet"):
            TrainingStageHandler(torch.nn.Linear(2, 2), AVSMLoss(), 1)
        with self.assertRaisesRegex(ValueError, "vSVF stage needs"):
            TrainingStageHandler(AVSMNet(MultiStepAffineNet(2)), AVSMLoss(), 0).apply("vsvf")


class TestEpochScheduleHandler(unittest.TestCase):
    def test_piecewise_and_nested(self):
        net, loss = _net(), AVSMLoss(spatial_dims=2)
        ncc, mk = GlobalNCCLoss(), MKLNCCLoss(2)
        h1 = EpochScheduleHandler(loss, "similarity", {"0": ncc, "2": mk})
        h2 = EpochScheduleHandler(net, "affine_net.num_steps", {1: 3})
        engine = Engine(lambda e, b: None)
        seen = []
        h1.attach(engine)
        h2.attach(engine)
        engine.add_event_handler(
            Events.EPOCH_STARTED, lambda e: seen.append((loss.similarity, net.affine_net.num_steps))
        )
        engine.run([0], max_epochs=3)
        self.assertEqual(seen, [(ncc, 1), (ncc, 3), (mk, 3)])
        self.assertIsNone(h2.value_at(0))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "non-empty dict"):
            EpochScheduleHandler(AVSMLoss(), "similarity", {})
        with self.assertRaisesRegex(ValueError, "must be epochs"):
            EpochScheduleHandler(AVSMLoss(), "similarity", {"first": 1})
        with self.assertRaisesRegex(AttributeError, "no attribute 'simlarity'"):
            EpochScheduleHandler(AVSMLoss(), "simlarity", {0: 1})


class TestStopOnNaNLoss(unittest.TestCase):
    def test_stops_before_the_update(self):
        torch.manual_seed(0)
        net = AVSMNet(MultiStepAffineNet(2, num_steps=1))
        loss = AVSMLoss("affine", spatial_dims=2)
        calls = []
        forward = loss.forward

        def poisoned(pred, fixed=None, moving=None):
            calls.append(1)
            out = forward(pred, fixed, moving)
            return out * float("nan") if len(calls) == 3 else out

        loss.forward = poisoned
        x = torch.rand(1, 1, 16, 16)
        data = [{"moving": x, "fixed": torch.roll(x, 1, 2)}] * 5
        snapshot = {}
        trainer = SupervisedTrainer(
            device=torch.device("cpu"),
            max_epochs=1,
            train_data_loader=data,
            network=net,
            optimizer=torch.optim.Adam(net.parameters(), 1e-2),
            loss_function=loss,
            prepare_batch=PreparePairBatch(),
            train_handlers=[StopOnNaNLoss(loss, checkpoint_dir="/ckpt")],
            decollate=False,
        )
        trainer.add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: snapshot.update({k: v.clone() for k, v in net.state_dict().items()})
        )
        with self.assertRaisesRegex(NonFiniteLossError, r"nan at epoch 1, iteration 3 .*similarity=.*'/ckpt'"):
            trainer.run()
        for k, v in net.state_dict().items():  # the weights after iteration 2: the NaN step never happened
            self.assertTrue(torch.equal(v, snapshot[k]), k)
            self.assertTrue(bool(torch.isfinite(v).all()), k)


if __name__ == "__main__":
    unittest.main()
