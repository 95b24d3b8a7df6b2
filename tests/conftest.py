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
"""Test session set-up: traced networks are cached in a temporary folder of the session (never the user's cache)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile


def pytest_configure(config):
    if "MONAI_AVSM_TEST_KEEP_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="avsm_trace_cache_")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["MONAI_AVSM_CACHE_DIR"] = folder
