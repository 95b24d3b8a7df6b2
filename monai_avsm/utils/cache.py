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
"""The per-user cache folder of monai_avsm (traced networks, label maps resampled onto the working grid)."""

from __future__ import annotations

import os

__all__ = ["cache_dir"]


def cache_dir() -> str:
    """``$MONAI_AVSM_CACHE_DIR``, else ``$XDG_CACHE_HOME/monai_avsm`` (default ``~/.cache/monai_avsm``); not created
    here."""
    if os.environ.get("MONAI_AVSM_CACHE_DIR"):
        return os.environ["MONAI_AVSM_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "monai_avsm")
