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
"""Records to JSON: tensors and numpy values as lists and numbers."""

from __future__ import annotations

from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(x: Any) -> Any:
    """``x`` with every tensor, numpy array or numpy scalar (anything with ``tolist``) replaced by lists and numbers,
    dict keys as strings, tuples as lists (for ``json.dump``)."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, str):
        return x.tolist()
    return x
