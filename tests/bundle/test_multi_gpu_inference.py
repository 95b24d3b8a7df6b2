"""Many pairs on many processes: the shard helpers of monai_avsm.engines.distributed (one process, and two gloo
processes with torch.multiprocessing) and bundle/configs/multi_gpu_inference.json (and multi_gpu_evaluate.json)
launched with torchrun on 2 CPU processes over 3 pairs of the real sample data (3 is not divisible by 2)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch.distributed as dist
import torch.multiprocessing as mp
from monai.data import partition_dataset

from monai_avsm.apps.sample import build_sample_dataset
from monai_avsm.data.templates import missing_packages
from monai_avsm.engines import (
    dist_info,
    distributed_output_dir,
    merge_shard_evaluation,
    merge_shard_records,
    require_shard,
    shard_items,
)
from monai_avsm.handlers import RegistrationEvaluation

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"
INFER = str(BUNDLE / "configs" / "inference.json")
EVAL = str(BUNDLE / "configs" / "evaluate.json")
MULTI_INFER = str(BUNDLE / "configs" / "multi_gpu_inference.json")
MULTI_EVAL = str(BUNDLE / "configs" / "multi_gpu_evaluate.json")
PAIRS = {"icbm2009c_asym_to_mni152_nlin6_asym": "0", "mni152_nlin6_asym_to_icbm2009c_asym": "1",
         "icbm2009c_asym_to_icbm2009c_asym_mirrored": "0"}  # fmt: skip  # datalist items 0, 2 on rank 0; 1 on rank 1


def _fake_pair(root: str, name: str, moving: str, fixed: str) -> str:
    """A pair folder as RegistrationWriter leaves it (a registration.json with the record's keys)."""
    folder = os.path.join(root, name)
    os.makedirs(folder)
    record = {
        "moving": moving,
        "fixed": fixed,
        "moving_label": None,
        "fixed_label": None,
        "files": {"warped": "warped.nii.gz", "preview": "preview.png"},
        "working_grid": {"shape": [4, 4, 4]},
        "affine_world_ras": [[1.0, 0.0], [0.0, 1.0]],
        "jacobian": {"grid": "fixed native", "folds": 0, "mean": 1.0},
        "inverse_consistency": {"forward_inverse_mean_mm": 0.01, "margin_voxels": 4},
        "write_seconds": 0.5,
    }
    with open(os.path.join(folder, "registration.json"), "x") as f:
        json.dump(record, f)
    return folder


def _stem(path: str) -> str:
    return os.path.basename(path).split(".")[0]


def _two_ranks(rank: int, world_size: int, store: str, root: str, pairs: list, results: str) -> None:
    """One of two gloo processes: the shared output folder, this rank's shard, its fake pair folders, the merge."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    try:
        out = distributed_output_dir(root)
        shard = shard_items(pairs)
        names = [f"{_stem(p['moving'])}_to_{_stem(p['fixed'])}" for p in shard]
        written = [_fake_pair(out, name, p["moving"], p["fixed"]) for name, p in zip(names, shard)]
        summary = merge_shard_records(out, written, expected=pairs, seconds=1.0 + rank)
        with open(os.path.join(results, f"rank{rank}.json"), "x") as f:
            json.dump({"out": out, "shard": shard, "summary": summary}, f)
    finally:
        dist.destroy_process_group()


class TestShardHelpers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_shards_are_disjoint_complete_and_unpadded(self):
        for n in range(0, 8):
            items = [f"pair{i}" for i in range(n)]
            for k in range(1, 5):
                shards = [shard_items(items, rank=r, world_size=k) for r in range(k)]
                flat = [x for s in shards for x in s]
                self.assertEqual(sorted(flat), sorted(items), (n, k))  # every pair, none twice, none added
                self.assertLessEqual(max(map(len, shards)) - min(map(len, shards)), 1)
                if n >= k:  # the split of MONAI's partition_dataset (which refuses n < k)
                    expected = partition_dataset(items, num_partitions=k, shuffle=False, even_divisible=False)
                    self.assertEqual(shards, expected)
        self.assertEqual(shard_items(["a", "b", "c"]), ["a", "b", "c"])  # no process group: one rank

    def test_require_shard(self):
        self.assertEqual(require_shard(["a"], "the evaluation"), ["a"])
        with self.assertRaisesRegex(ValueError, "rank 0 of 1 has no items for the evaluation: use at most as many"):
            require_shard([], "the evaluation")

    def test_dist_info_errors(self):
        self.assertEqual(dist_info(), (0, 1))
        with self.assertRaisesRegex(ValueError, r"'rank' must be in \[0, 2\), got 2"):
            dist_info(2, 2)
        with self.assertRaisesRegex(ValueError, "'world_size' must be >= 1"):
            dist_info(0, 0)

    def test_output_dir_without_process_group(self):
        root = os.path.join(self.tmp, "avsm_inference")
        self.assertEqual(distributed_output_dir(root), root)
        Path(root, "pair").mkdir()
        self.assertEqual(distributed_output_dir(root), root + "_2")

    def test_merge_one_process_and_errors(self):
        out = os.path.join(self.tmp, "out")
        os.makedirs(out)
        a = _fake_pair(out, "a_to_b", "/d/a.nii.gz", "/d/b.nii.gz")
        b = _fake_pair(out, "b_to_a", "/d/b.nii.gz", "/d/a.nii.gz")
        ab, ba = ("/d/a.nii.gz", "/d/b.nii.gz"), ("/d/b.nii.gz", "/d/a.nii.gz")
        expected = [{"moving": m, "fixed": f} for m, f in (ab, ba)]
        with self.assertRaisesRegex(RuntimeError, "more than one rank: 'a_to_b' \\(ranks 0 and 0\\)"):
            merge_shard_records(out, [a, a], expected=expected)
        with self.assertRaisesRegex(RuntimeError, "2 pairs expected, 1 written; not written: .*b.nii.gz -> .*a.nii"):
            merge_shard_records(out, [a], expected=expected)
        with self.assertRaisesRegex(ValueError, "is not a sub-folder"):
            merge_shard_records(out, [self.tmp])
        summary = merge_shard_records(out, [{"folder": b}, "a_to_b"], expected=expected, seconds=2.0)
        self.assertEqual(summary["pairs"], 2)
        self.assertEqual(summary["ranks"][0]["pairs"], 2)
        self.assertEqual([r["pair"] for r in summary["records"]], ["a_to_b", "b_to_a"])
        self.assertEqual(summary["records"][0]["files"], 2)
        self.assertEqual(summary["records"][0]["jacobian_folds"], 0)
        self.assertNotIn("jacobian_grid", summary["records"][0])  # text and geometry are not measures
        self.assertNotIn("affine_world_ras", summary["records"][0])
        self.assertEqual(summary["statistics"]["write_seconds"]["mean"], 0.5)
        with open(os.path.join(out, "summary.csv")) as f:
            self.assertEqual(len(list(csv.DictReader(f))), 2)
        with self.assertRaises(FileExistsError):  # a summary is never overwritten
            merge_shard_records(out, [a, b])

    @unittest.skipUnless("fork" in mp.get_all_start_methods(), "forks the two ranks (no re-import of the test module)")
    def test_two_gloo_processes_share_one_folder_and_merge(self):
        root = os.path.join(self.tmp, "avsm_inference")
        os.makedirs(os.path.join(root, "earlier_run"))  # not empty: the run goes to root_2, chosen once
        results = os.path.join(self.tmp, "results")
        os.makedirs(results)
        pairs = [{"moving": f"/d/m{i}.nii.gz", "fixed": f"/d/f{i}.nii.gz"} for i in range(3)]
        args = (2, os.path.join(self.tmp, "store"), root, pairs, results)
        mp.start_processes(_two_ranks, args=args, nprocs=2, join=True, start_method="fork")  # fork: no re-import
        ranks = [json.load(open(os.path.join(results, f"rank{r}.json"))) for r in range(2)]
        self.assertEqual({r["out"] for r in ranks}, {root + "_2"})
        self.assertFalse(os.path.exists(root + "_3"))
        self.assertEqual([len(r["shard"]) for r in ranks], [2, 1])
        self.assertIsNone(ranks[1]["summary"])
        summary = ranks[0]["summary"]
        self.assertEqual(summary["pairs"], 3)
        self.assertEqual([(r["rank"], r["pairs"], r["seconds"]) for r in summary["ranks"]], [(0, 2, 1.0), (1, 1, 2.0)])
        owners = {r["pair"]: r["rank"] for r in summary["records"]}
        self.assertEqual(owners, {"m0_to_f0": 0, "m1_to_f1": 1, "m2_to_f2": 0})

    def test_merge_evaluation_errors(self):
        with self.assertRaisesRegex(TypeError, "expected a RegistrationEvaluation handler, got list"):
            merge_shard_evaluation([])
        evaluation = RegistrationEvaluation(self.tmp, num_classes=3, plots=False)  # summarize=True
        with self.assertRaisesRegex(RuntimeError, "create it with summarize=False"):
            merge_shard_evaluation(evaluation)
        evaluation = RegistrationEvaluation(self.tmp, num_classes=3, plots=False, summarize=False)
        row = {"pair": "a_to_b", "moving": "/d/a.nii.gz", "fixed": "/d/b.nii.gz", "dice_avsm": 0.5, "device": "cpu"}
        evaluation.rows = [row]
        with self.assertRaisesRegex(RuntimeError, "1 pairs expected, 1 evaluated; not evaluated: .*c.nii.gz"):
            merge_shard_evaluation(evaluation, expected=[{"moving": "/d/a.nii.gz", "fixed": "/d/c.nii.gz"}])
        summary = merge_shard_evaluation(evaluation, expected=[{"moving": "/d/a.nii.gz", "fixed": "/d/b.nii.gz"}])
        self.assertEqual(summary["pairs"], 1)
        self.assertNotIn("rank", summary)  # the rank is a column, not a measure
        with open(os.path.join(self.tmp, "metrics.csv")) as f:
            self.assertEqual(next(csv.reader(f))[:2], ["pair", "rank"])


@unittest.skipIf(missing_packages(), f"the sample data needs the demo extra: {missing_packages()}")
class TestMultiGPUInference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.data = os.path.join(cls.tmp, "sample")
        build_sample_dataset(cls.data, spacing=4.0)
        with open(os.path.join(cls.data, "datalist.json")) as f:
            datalist = json.load(f)
        datalist["test"] = datalist["test"] + datalist["validation"][:1]  # 3 pairs: not divisible by 2 ranks
        cls.datalist = os.path.join(cls.data, "three_pairs.json")
        with open(cls.datalist, "w") as f:
            json.dump(datalist, f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _torchrun(self, configs: list[str], root: str) -> str:
        """Run the bundle on 2 gloo processes into ``root`` (already taken, so the ranks must agree on ``root_2``)."""
        os.makedirs(os.path.join(root, "earlier_run"))
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2"]
        cmd = torchrun + ["-m", "monai.bundle", "run", "--config_file", str(configs), "--bundle_root", str(BUNDLE),
               "--dataset_dir", self.data, "--datalist", self.datalist, "--output_root", root,
               "--spatial_size", "[32,32,32]"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.tmp, timeout=300, env=env)
        log = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, log[-4000:])
        self.assertFalse(os.path.exists(root + "_3"))  # one folder for both ranks
        self.assertIn("rank 0 of 2: 2 of 3 items", log)
        self.assertIn("rank 1 of 2: 1 of 3 items", log)
        return log

    def test_three_pairs_on_two_cpu_processes(self):
        root = os.path.join(self.tmp, "avsm_inference")
        log = self._torchrun([INFER, MULTI_INFER], root)
        out = root + "_2"
        self.assertEqual(set(os.listdir(out)), set(PAIRS) | {"summary.csv", "summary.json"})  # no pair twice (_2)
        for p in PAIRS:
            self.assertEqual(log.count(f"wrote {os.path.join(out, p)}:"), 1, p)  # each pair written once
            self.assertTrue(os.path.isfile(os.path.join(out, p, "warped.nii.gz")))
        self.assertEqual(log.count("merged 3 pairs from 2 ranks (rank 0: 2, rank 1: 1)"), 1)  # rank 0 only
        with open(os.path.join(out, "summary.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(sorted(r["pair"] for r in rows), sorted(PAIRS))
        self.assertEqual({r["pair"]: r["rank"] for r in rows}, PAIRS)
        for r in rows:
            self.assertEqual(int(r["files"]), 14)
            self.assertLess(float(r["inverse_consistency_forward_inverse_mean_mm"]), 0.5)
            self.assertGreaterEqual(int(r["jacobian_folds"]), 0)
            self.assertGreater(float(r["write_seconds"]), 0.0)
        summary = json.load(open(os.path.join(out, "summary.json")))
        self.assertEqual((summary["pairs"], summary["world_size"]), (3, 2))
        self.assertEqual([(r["rank"], r["pairs"]) for r in summary["ranks"]], [(0, 2), (1, 1)])
        self.assertTrue(all(r["seconds"] > 0 for r in summary["ranks"]))
        self.assertIn("inverse_consistency_forward_inverse_mean_mm", summary["statistics"])

    def test_sharded_evaluation(self):
        root = os.path.join(self.tmp, "avsm_eval")
        log = self._torchrun([INFER, EVAL, MULTI_INFER, MULTI_EVAL], root)
        out = root + "_2"
        self.assertEqual(sorted(os.listdir(out)), ["dice.png", "dice_per_label.png", "metrics.csv", "summary.json"])
        self.assertEqual(log.count("merged the evaluation of 3 pairs from 2 ranks (rank 0: 2, rank 1: 1)"), 1)
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["pair"] for r in rows], list(PAIRS))  # the datalist's order
        self.assertEqual({r["pair"]: r["rank"] for r in rows}, PAIRS)
        summary = json.load(open(os.path.join(out, "summary.json")))
        self.assertEqual(summary["pairs"], 3)
        self.assertTrue(0.0 <= summary["dice_avsm"]["mean"] <= 1.0)
        self.assertIn("symmetry_log_mse", summary)


if __name__ == "__main__":
    unittest.main()
