"""The MONAI bundle, model-zoo CI style (initialize, check_properties, run, finalize) on the real sample data at
4 mm, with a tiny grid and a few iterations: training (both stages, resume, NaN stop, loss swaps on the command line),
inference (files on the native grid that ITK applies to the same result), evaluation, multi-process training
(torchrun, gloo) and the MONAI verbs verify_metadata, verify_net_in_out, ckpt_export and load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_avsm.apps.sample import build_sample_dataset
from monai_avsm.data.templates import missing_packages
from monai_avsm.handlers import NonFiniteLossError

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"
CONFIGS = BUNDLE / "configs"
TRAIN, INFER, EVAL = (str(CONFIGS / f) for f in ("train.json", "inference.json", "evaluate.json"))
MULTI = str(CONFIGS / "multi_gpu_train.json")
META, LOGGING = str(CONFIGS / "metadata.json"), str(CONFIGS / "logging.conf")
SCHEMA = Path(__file__).resolve().parent / "meta_schema_offline.json"
TINY = {"spatial_size": [32, 32, 32], "iterations_per_epoch": 2, "val_interval": 1, "bundle_root": str(BUNDLE)}


def _cause(e: BaseException) -> BaseException:
    while e.__cause__ is not None:
        e = e.__cause__
    return e


def _settings(obj, depth: int = 0):
    """The settings of a transform as plain values, recursively (objects by type and attributes, no addresses), to
    compare two transforms built in different ways."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.dtype, np.dtype, type)):
        return obj
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return np.asarray(obj).tolist()
    if isinstance(obj, (list, tuple)):
        return [_settings(x, depth + 1) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _settings(v, depth + 1) for k, v in obj.items()}
    if hasattr(obj, "__dict__") and depth < 6:
        return type(obj).__name__, _settings(vars(obj), depth + 1)
    return type(obj).__name__


def _workflow(config, workflow_type, **override) -> ConfigWorkflow:
    return ConfigWorkflow(
        config_file=config, meta_file=META, logging_file=LOGGING, workflow_type=workflow_type, **override
    )


def _train(data, out, **override) -> ConfigWorkflow:
    settings = {**TINY, "dataset_dir": data, "output_dir": out, "affine_epochs": 1, "vsvf_epochs": 1, **override}
    wf = _workflow(TRAIN, "train", **settings)
    wf.initialize()
    return wf


@unittest.skipIf(missing_packages(), f"the sample data needs the demo extra: {missing_packages()}")
class TestBundle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.data = os.path.join(cls.tmp, "sample")
        build_sample_dataset(cls.data, spacing=4.0)  # real templates, 48x56x48
        cls.run_dir = os.path.join(cls.tmp, "run")
        wf = _train(cls.data, cls.run_dir)
        cls.missing_properties = wf.check_properties()
        cls.trainer = wf.parser.get_parsed_content("train#trainer")
        wf.run()
        wf.finalize()
        cls.model = os.path.join(cls.run_dir, "checkpoints", "model.pt")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---------------------------------------------------------------------------------------------- training
    def test_train_two_stages_and_checkpoints(self):
        self.assertFalse(self.missing_properties)  # every required train property is defined
        self.assertEqual(self.trainer.state.epoch, 2)
        self.assertEqual(self.trainer.state.iteration, 4)
        files = sorted(os.listdir(os.path.join(self.run_dir, "checkpoints")))
        self.assertIn("checkpoint_epoch=2.pt", files)
        self.assertTrue(any(f.startswith("model_key_metric=") for f in files), files)
        # models/model.pt format: a bare state dict of network_def, with the affine and the vSVF net
        state = torch.load(self.model, weights_only=True)
        net = _workflow(INFER, "infer", bundle_root=str(BUNDLE)).parser.get_parsed_content("network_def")
        net.load_state_dict(state)
        self.assertTrue(any(k.startswith("vsvf_net.") for k in state))
        self.assertTrue(os.listdir(self.run_dir))  # TensorBoard event files
        self.assertTrue(any(f.startswith("events.out.tfevents") for f in os.listdir(self.run_dir)))

    def test_resume_from_last_checkpoint(self):
        out = os.path.join(self.tmp, "resumed")
        shutil.copytree(self.run_dir, out)
        before = os.path.getmtime(os.path.join(out, "checkpoints", "checkpoint_epoch=2.pt"))
        wf = _train(self.data, out, vsvf_epochs=2)
        trainer = wf.parser.get_parsed_content("train#trainer")
        first = []
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: first.append(e.state.epoch) if not first else None)
        wf.run()
        self.assertEqual(first, [3])  # epochs 1-2 were not trained again
        self.assertEqual(trainer.state.iteration, 6)
        self.assertEqual(wf.parser.get_parsed_content("loss").stage, "vsvf")
        files = os.listdir(os.path.join(out, "checkpoints"))
        self.assertIn("checkpoint_epoch=3.pt", files)
        # the checkpoint it resumed from was not rewritten
        self.assertEqual(before, os.path.getmtime(os.path.join(out, "checkpoints", "checkpoint_epoch=2.pt")))

    def test_fresh_run_refuses_old_checkpoints(self):
        wf = _train(self.data, self.run_dir, resume=False)
        with self.assertRaises(Exception) as ctx:
            wf.run()
        self.assertIsInstance(_cause(ctx.exception), FileExistsError)
        self.assertIn("new --output_dir", str(_cause(ctx.exception)))

    def test_optional_early_stop(self):
        from monai.handlers import EarlyStopHandler

        off = _train(self.data, os.path.join(self.tmp, "es0"))
        self.assertFalse(
            any(isinstance(h, EarlyStopHandler) for h in off.parser.get_parsed_content("validate#handlers"))
        )
        wf = _train(
            self.data, os.path.join(self.tmp, "es"), early_stop_patience=1, vsvf_epochs=0, iterations_per_epoch=1
        )
        wf.run()
        stops = [h for h in wf.parser.get_parsed_content("validate#handlers") if isinstance(h, EarlyStopHandler)]
        self.assertEqual(len(stops), 1)
        self.assertIs(stops[0]._handler.trainer, wf.parser.get_parsed_content("train#trainer"))  # set in "run"
        self.assertEqual(stops[0].patience, 1)

    def test_nan_loss_stops_and_keeps_last_good_checkpoint(self):
        out = os.path.join(self.tmp, "nan")
        wf = _train(self.data, out, ncc_warmup_epochs=1)
        similarity = wf.parser.get_parsed_content("similarity")  # used from epoch 2 on
        similarity.forward = lambda pred, target: torch.tensor(float("nan"))
        with self.assertRaises(Exception) as ctx:
            wf.run()
        error = _cause(ctx.exception)
        self.assertIsInstance(error, NonFiniteLossError)
        self.assertIn("epoch 2, iteration 3", str(error))
        files = os.listdir(os.path.join(out, "checkpoints"))
        self.assertIn("checkpoint_epoch=1.pt", files)
        self.assertNotIn("checkpoint_epoch=2.pt", files)
        state = torch.load(os.path.join(out, "checkpoints", "checkpoint_epoch=1.pt"), weights_only=True)["model"]
        self.assertTrue(all(bool(torch.isfinite(v).all()) for v in state.values()))

    def test_similarity_swapped_by_override(self):
        # MKLNCCLoss with other kernels, as any config id can be replaced from the command line (--similarity ...)
        wf = _train(
            self.data,
            os.path.join(self.tmp, "mk"),
            vsvf_epochs=0,
            ncc_warmup_epochs=0,
            iterations_per_epoch=1,
            similarity="$monai_avsm.losses.MKLNCCLoss(3, kernel_sizes=[5, 9], kernel_weights=[0.5, 0.5])",
        )
        wf.run()
        loss = wf.parser.get_parsed_content("loss")
        self.assertEqual(type(loss.similarity).__name__, "MKLNCCLoss")
        self.assertEqual(loss.similarity.settings.kernel_sizes, ((5, 5, 5), (9, 9, 9)))
        # MONAI's GlobalMutualInformationLoss (multi-modal pairs), through the real command line
        out = os.path.join(self.tmp, "gmi")
        cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", TRAIN, "--dataset_dir",
               self.data, "--output_dir", out, "--bundle_root", str(BUNDLE), "--affine_epochs", "1", "--vsvf_epochs",
               "0", "--ncc_warmup_epochs", "0", "--iterations_per_epoch", "1", "--spatial_size", "[32,32,32]",
               "--similarity", "$monai.losses.GlobalMutualInformationLoss()"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), timeout=600)
        self.assertEqual(done.returncode, 0, done.stdout[-3000:] + done.stderr[-3000:])
        self.assertIn("similarity = GlobalMutualInformationLoss", done.stdout + done.stderr)

    # ---------------------------------------------------------------------------------------------- inference
    def test_inference_writes_native_grid_results_that_itk_reproduces(self):
        import itk

        root = os.path.join(self.tmp, "inference")
        wf = _workflow(
            INFER, "infer", bundle_root=str(BUNDLE), dataset_dir=self.data, model_path=self.model, output_root=root
        )
        wf.initialize()
        self.assertFalse(wf.check_properties())
        wf.run()
        wf.finalize()
        pairs = sorted(os.listdir(root))
        self.assertEqual(pairs, ["icbm2009c_asym_to_mni152_nlin6_asym", "mni152_nlin6_asym_to_icbm2009c_asym"])
        folder = os.path.join(root, pairs[0])
        expected = {"warped.nii.gz", "warped_label.nii.gz", "displacement_field.nii.gz", "affine.tfm", "affine.mat",
                    "deformable_field.nii.gz", "jacobian_determinant.nii.gz", "inverse_warped.nii.gz",
                    "inverse_warped_label.nii.gz", "inverse_displacement_field.nii.gz",
                    "inverse_deformable_field.nii.gz", "inverse_affine.tfm", "inverse_affine.mat",
                    "preview.png", "registration.json"}  # fmt: skip
        self.assertEqual(set(os.listdir(folder)), expected)
        record = json.load(open(os.path.join(folder, "registration.json")))
        self.assertLess(record["inverse_consistency"]["forward_inverse_mean_mm"], 0.5)  # the optimisation's integrator
        self.assertEqual(record["registration"]["mode"], "accurate")  # the default, as monai-avsm register
        self.assertEqual(record["jacobian"]["folds"], 0)
        fixed_file = record["fixed"]
        warped = nib.load(os.path.join(folder, "warped.nii.gz"))
        fixed = nib.load(fixed_file)
        self.assertEqual(warped.shape, fixed.shape)  # the fixed image's native grid and geometry
        np.testing.assert_allclose(warped.affine, fixed.affine, atol=1e-5)
        label = np.asarray(nib.load(os.path.join(folder, "warped_label.nii.gz")).dataobj)
        self.assertTrue(np.issubdtype(label.dtype, np.integer))
        self.assertLessEqual(set(np.unique(label).tolist()), {0, 1, 2})
        # ITK applies the written displacement field to the moving file: the same warped image
        field = itk.imread(os.path.join(folder, "displacement_field.nii.gz"))
        arr = itk.array_from_image(field).astype(np.float64)
        ftype = itk.Image[itk.Vector[itk.D, 3], 3]
        dfield = ftype.New()
        dfield.SetRegions(field.GetLargestPossibleRegion())
        dfield.CopyInformation(field)
        dfield.Allocate()
        view = itk.array_view_from_image(dfield)
        view[...] = arr
        transform = itk.DisplacementFieldTransform[itk.D, 3].New()
        transform.SetDisplacementField(dfield)
        moving = itk.imread(record["moving"], itk.F)
        reference = itk.imread(fixed_file, itk.F)
        itk_warped = itk.resample_image_filter(
            moving,
            transform=transform,
            use_reference_image=True,
            reference_image=reference,
            interpolator=itk.LinearInterpolateImageFunction.New(moving),
        )
        ours = np.asarray(warped.dataobj, dtype=np.float64)
        theirs = np.transpose(itk.array_from_image(itk_warped), (2, 1, 0)).astype(np.float64)
        inner = (slice(2, -2),) * 3
        scale = np.abs(ours).max()
        self.assertLess(np.abs(ours[inner] - theirs[inner]).max() / scale, 1e-3)
        # a second run never overwrites: it goes to a new folder
        wf = _workflow(
            INFER,
            "infer",
            bundle_root=str(BUNDLE),
            moving=os.path.join(self.data, "images", "icbm2009c_asym.nii.gz"),
            fixed=os.path.join(self.data, "images", "icbm2009c_sym.nii.gz"),
            model_path=self.model,
            output_root=root,
            mode="fast",
        )
        wf.initialize()
        wf.run()
        self.assertEqual(os.listdir(root + "_2"), ["icbm2009c_asym_to_icbm2009c_sym"])
        fast = json.load(open(os.path.join(root + "_2", "icbm2009c_asym_to_icbm2009c_sym", "registration.json")))
        self.assertNotIn("registration", fast)  # the network's one pass
        self.assertNotIn(
            "warped_label.nii.gz", os.listdir(os.path.join(root + "_2", "icbm2009c_asym_to_icbm2009c_sym"))
        )

    def test_preprocessing_written_out_is_the_factory(self):
        """inference.json and train.json spell out monai_avsm.data.pair_loading_transforms: same transforms, same
        arguments, the same output on a real pair with and without labels; training and validation share it."""
        from monai_avsm.data import load_pair_datalist, pair_loading_transforms

        items = load_pair_datalist(os.path.join(self.data, "datalist.json"), section="test")
        unlabelled = {k: items[0][k] for k in ("moving", "fixed")}
        for config in (INFER, TRAIN):
            wf = _workflow(config, "infer", bundle_root=str(BUNDLE), spatial_size=[32, 40, 24])
            written = wf.parser.get_parsed_content("preprocessing")
            factory = pair_loading_transforms(spatial_size=(32, 40, 24), spatial_dims=3)
            self.assertEqual([type(t) for t in written.transforms], [type(t) for t in factory.transforms], config)
            for a, b in zip(written.transforms, factory.transforms):
                self.assertEqual(_settings(a), _settings(b), f"{config}: {type(a).__name__}")
            for item in (items[0], unlabelled):
                ours, theirs = written(dict(item)), factory(dict(item))
                self.assertEqual(sorted(ours), sorted(theirs))
                for key, value in theirs.items():
                    if isinstance(value, torch.Tensor):
                        self.assertEqual(ours[key].dtype, value.dtype, key)
                        torch.testing.assert_close(torch.as_tensor(ours[key]), torch.as_tensor(value), rtol=0, atol=0)
                    else:
                        self.assertEqual(ours[key], value, key)
                np.testing.assert_array_equal(np.asarray(ours["fixed"].affine), np.asarray(theirs["fixed"].affine))
        train = _workflow(TRAIN, "train", bundle_root=str(BUNDLE), dataset_dir=self.data)
        loading = train.parser.get_parsed_content("preprocessing")
        self.assertIs(train.parser.get_parsed_content("validate#preprocessing"), loading)
        head = train.parser.get_parsed_content("train#preprocessing").transforms[: len(loading.transforms)]
        self.assertTrue(all(a is b for a, b in zip(head, loading.transforms)))

    def test_missing_model_is_a_clear_error(self):
        wf = _workflow(INFER, "infer", bundle_root=str(BUNDLE), dataset_dir=self.data, model_path="/nope/model.pt")
        with self.assertRaises(Exception) as ctx:
            wf.initialize()
        self.assertIn("the trained model '/nope/model.pt' does not exist", str(_cause(ctx.exception)))

    # ---------------------------------------------------------------------------------------------- evaluation
    def test_evaluate(self):
        root = os.path.join(self.tmp, "eval")
        wf = _workflow(
            [INFER, EVAL], "infer", bundle_root=str(BUNDLE), dataset_dir=self.data, model_path=self.model,
            output_root=root,
        )  # fmt: skip
        wf.initialize()
        wf.run()
        self.assertEqual(sorted(os.listdir(root)), ["dice.png", "dice_per_label.png", "metrics.csv", "summary.json"])
        summary = json.load(open(os.path.join(root, "summary.json")))
        self.assertEqual(summary["pairs"], 2)
        for key in ("dice_identity", "dice_affine", "dice_avsm", "dice_avsm_grey_matter", "dice_avsm_white_matter"):
            self.assertTrue(0.0 <= summary[key]["mean"] <= 1.0, key)
        # the same pair in both directions before registration: the same Dice
        self.assertLess(summary["dice_identity"]["sd"], 1e-6)
        for key in ("folds", "folds_mean_abs_det", "symmetry_log_mse", "seconds"):
            self.assertIn(key, summary)
        self.assertEqual(summary["device"], "cpu")
        # --refine_iterations: test-time refinement after the network (monai_avsm.optimization.refine)
        wf = _workflow(
            [INFER, EVAL], "infer", bundle_root=str(BUNDLE), dataset_dir=self.data, model_path=self.model,
            output_root=root, refine_iterations=2, monai_reports=True,
        )  # fmt: skip
        wf.initialize()
        self.assertEqual(type(wf.parser.get_parsed_content("inferer")).__name__, "RefineInferer")
        wf.run()
        refined = json.load(open(os.path.join(root + "_2", "summary.json")))
        self.assertEqual(refined["pairs"], 2)
        self.assertEqual(refined["folds"]["max"], 0)
        # the measures are MONAI metrics of the evaluator: --monai_reports adds MONAI's MetricsSaver files
        metrics = wf.parser.get_parsed_content("evaluator").state.metrics
        self.assertAlmostEqual(metrics["dice_avsm"], refined["dice_avsm"]["mean"], places=6)
        reports = os.listdir(os.path.join(root + "_2", "monai_metrics"))
        self.assertTrue({"metrics.csv", "dice_avsm_raw.csv", "folds_summary.csv"} <= set(reports), reports)

    # ---------------------------------------------------------------------------------------------- MONAI verbs
    def test_monai_verbs(self):
        from monai.bundle import ckpt_export, load, verify_metadata, verify_net_in_out

        schema = os.path.join(self.tmp, "schema.json")
        shutil.copy(SCHEMA, schema)  # offline: verify_metadata skips the download when the file is there
        verify_metadata(meta_file=META, filepath=schema)
        warped_only = {"network_def#output": "warped", "bundle_root": str(BUNDLE), "spatial_size": [32, 32, 32]}
        # MONAI's verify_net_in_out checks one tensor against outputs#pred; the metadata's "pred" is the map of the
        # default dict output, so the export mode (the warped image alone) is checked against outputs#warped
        outputs = json.load(open(META))["network_data_format"]["outputs"]
        as_warped = {
            f"_meta_#network_data_format#outputs#pred#{k}": outputs["warped"][k] for k in ("num_channels", "dtype")
        }
        verify_net_in_out(
            net_id="network_def", meta_file=META, config_file=INFER, device="cpu", **warped_only, **as_warped
        )
        default = _workflow(INFER, "infer", bundle_root=str(BUNDLE)).parser.get_parsed_content("network_def")
        with torch.no_grad():
            out = default(torch.rand(1, 2, *outputs["pred"]["spatial_shape"]))
        for key, entry in (("map", "pred"), ("ddf", "ddf"), ("warped", "warped")):  # what inference reads
            self.assertEqual(out[key].shape[1:], (outputs[entry]["num_channels"], *outputs[entry]["spatial_shape"]))
            self.assertEqual(str(out[key].dtype), f"torch.{outputs[entry]['dtype']}", key)
        ts = os.path.join(self.tmp, "model.ts")
        ckpt_export(
            net_id="network_def", filepath=ts, ckpt_file=self.model, meta_file=META, config_file=INFER,
            use_trace=True, input_shape=[1, 2, 48, 56, 48], **warped_only,
        )  # fmt: skip
        exported = torch.jit.load(ts)
        net = _workflow(INFER, "infer", **warped_only).parser.get_parsed_content("network_def")
        net.load_state_dict(torch.load(self.model, weights_only=True))
        net.eval()
        x = torch.rand(1, 2, 48, 56, 48, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(exported(x), net(x), atol=1e-5, rtol=0)
        # model-zoo loading from a bundle folder
        zoo = os.path.join(self.tmp, "zoo")
        shutil.copytree(CONFIGS, os.path.join(zoo, "avsm_brain_mri_registration", "configs"))
        os.makedirs(os.path.join(zoo, "avsm_brain_mri_registration", "models"))
        shutil.copy(self.model, os.path.join(zoo, "avsm_brain_mri_registration", "models", "model.pt"))
        loaded = load(name="avsm_brain_mri_registration", bundle_dir=zoo, workflow_type="train", source="github")
        for k, v in net.state_dict().items():
            self.assertTrue(torch.equal(loaded.state_dict()[k], v), k)

    # ---------------------------------------------------------------------------------------------- multi-process
    def test_multi_gpu_config_with_two_cpu_processes(self):
        out = os.path.join(self.tmp, "ddp")
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2"]
        cmd = torchrun + ["-m", "monai.bundle", "run", "training", "--config_file", f"['{TRAIN}','{MULTI}']",
               "--dataset_dir", self.data, "--output_dir", out, "--bundle_root", str(BUNDLE), "--affine_epochs", "1",
               "--vsvf_epochs", "0", "--iterations_per_epoch", "2", "--spatial_size", "[32,32,32]"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), timeout=600, env=env)
        log = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, log[-4000:])
        self.assertEqual(log.count("Saved checkpoint at epoch: 1"), 1)  # rank 0 only
        self.assertEqual(log.count("Train completed, saved final checkpoint"), 1)
        self.assertTrue(os.path.isfile(os.path.join(out, "checkpoints", "model.pt")))
        state = torch.load(os.path.join(out, "checkpoints", "model.pt"), weights_only=True)
        self.assertFalse(any(k.startswith("module.") for k in state))  # loads into network_def directly


if __name__ == "__main__":
    unittest.main()
