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
"""Lazy exports of a package (PEP 562 module ``__getattr__``): a name is imported from its module on first access.

``import monai_avsm`` and its subpackages stay light: the modules that need MONAI, ignite or ``monai.bundle`` (about
3 s of imports on 2 CPU cores) are imported only when one of their names is used, so ``monai-avsm --help`` and the
one-pair path start in well under a second, while ``$import monai_avsm`` followed by
``$monai_avsm.losses.MKLNCCLoss(...)`` in a bundle config works as with eager imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], submodules: Sequence[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose names come from submodules.

    Args:
        package: the package's ``__name__``.
        exports: public name -> relative module that defines it (``{"register": ".registration"}``).
        submodules: submodule names reachable as attributes (``monai_avsm.engines.native``) before they are imported.
            A public name must not equal a submodule's name: importing the submodule would rebind the attribute.

    Example::

        __getattr__, __dir__ = lazy_exports(__name__, {"register": ".registration"}, ("cli", "registration"))
    """
    clash = sorted(set(exports) & set(submodules))
    if clash:
        raise ValueError(f"lazy_exports: {package}: the names {clash} are both exports and submodules.")
    modules = set(submodules)

    def __getattr__(name: str) -> Any:
        if name in modules:
            value = importlib.import_module(f".{name}", package)
        elif name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import sys

        setattr(sys.modules[package], name, value)  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(exports) | modules)

    return __getattr__, __dir__
