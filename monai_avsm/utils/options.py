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
"""Option look-up without importing MONAI on the common path.

``import monai`` loads every MONAI subpackage (ignite, the engines, the apps: about 3 s on 2 CPU cores), so the
modules on the one-pair path (``functional``, ``networks.blocks``, the readers and writers) do not import it at module
level. :func:`look_up_option` returns at once when the option is valid and hands invalid ones to
:func:`monai.utils.look_up_option`, so the errors (with their spelling suggestions) are MONAI's own.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Hashable, Mapping
from typing import Any

__all__ = ["look_up_option"]


def look_up_option(opt_str: Hashable, supported: Collection | enum.EnumMeta, default: Any = "no_default") -> Any:
    """:func:`monai.utils.look_up_option` with a fast path: the matched item for a valid option (an enum member for
    an enum, the mapped value for a mapping), MONAI's ``ValueError`` (or ``default``) otherwise."""
    key = opt_str.strip() if isinstance(opt_str, str) else opt_str
    if isinstance(supported, enum.EnumMeta):
        if isinstance(key, enum.Enum) and key in supported:  # type: ignore[operator]
            return key
        if isinstance(key, str):
            for item in supported:  # type: ignore[attr-defined]
                if item.value == key:
                    return item
    elif isinstance(key, Hashable):
        if isinstance(supported, Mapping) and key in supported:
            return supported[key]
        if not isinstance(supported, Mapping) and isinstance(supported, Collection) and key in supported:
            return key
    from monai.utils import look_up_option as monai_look_up_option

    return monai_look_up_option(opt_str, supported, default)
