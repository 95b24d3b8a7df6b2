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

A package states each export once, in the explicit re-export form of PEP 484 and of pyright's rules for a
``py.typed`` package, ``from .module import Name as Name`` (``from . import sub as sub`` for a submodule): lazy ones
inside its ``if TYPE_CHECKING:`` block (type checkers and IDEs see which module defines each name; nothing is imported
at run time), eager ones (light names such as ``__version__`` or the enums of :mod:`monai_avsm.utils`) at top level.
:func:`lazy_package` reads those imports from the package's source at run time and returns ``__all__`` (the names in
source order), ``__getattr__`` and ``__dir__``, so no list repeats them::

    if TYPE_CHECKING:
        from .registration import register as register
        from .registration import register_pairs as register_pairs

    __all__, __getattr__, __dir__ = lazy_package(__name__)

Why this form: type checkers read only a literal ``__all__``, and a package that kept one would name every export a
second time; without one, they take a ``py.typed`` package's public names from the ``X as X`` imports (any other import
is private), so the imports alone state the interface. ``__all__`` is still there at run time, for ``from pkg import
*``, the docs and the tests. A package that imports its names eagerly and has no lazy ones sets ``__all__ =
exported_names(__name__)``. :func:`lazy_exports` is the older form, for a package that lists ``__all__`` itself::

    __getattr__, __dir__ = lazy_exports(__name__, __all__)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["exported_names", "lazy_exports", "lazy_package", "package_modules", "type_checking_imports"]


def package_modules(package: str, packages_only: bool = False) -> tuple[str, ...]:
    """The names of the submodules (or, with ``packages_only``, the subpackages) of the imported ``package`` that do
    not start with ``_``, found on disk without importing them."""
    import pkgutil
    import sys

    path = getattr(sys.modules[package], "__path__", [])
    found = (m for m in pkgutil.iter_modules(path) if not m.name.startswith("_") and (m.ispkg or not packages_only))
    return tuple(sorted(m.name for m in found))


def _is_type_checking_block(node: Any) -> bool:
    import ast

    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _package_source(package: str) -> str:
    import sys

    with open(sys.modules[package].__file__, encoding="utf-8") as f:
        return f.read()


def type_checking_imports(source: str) -> dict[str, str]:
    """Name -> relative module (``".registration"``; ``"."`` for a submodule imported as ``from . import x``) of the
    relative imports inside the ``if TYPE_CHECKING:`` blocks of a module's ``source``."""
    import ast

    found: dict[str, str] = {}
    for node in ast.parse(source).body:
        if not _is_type_checking_block(node):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.level > 0:
                module = "." * stmt.level + (stmt.module or "")
                for alias in stmt.names:
                    found[alias.asname or alias.name] = module
    return found


def exported_names(package: str, source: str | None = None) -> list[str]:
    """The names the imported ``package`` re-exports in the explicit form, ``from .module import Name as Name`` or
    ``from . import sub as sub``, at top level or inside its ``if TYPE_CHECKING:`` blocks, in source order: its
    ``__all__``.

    Args:
        package: the package's ``__name__``.
        source: the package's ``__init__`` source (default: read from its ``__file__``).
    """
    import ast

    if source is None:
        source = _package_source(package)
    names: list[str] = []
    for node in ast.parse(source).body:
        for stmt in node.body if _is_type_checking_block(node) else [node]:
            if isinstance(stmt, ast.ImportFrom) and stmt.level > 0:
                names += [alias.name for alias in stmt.names if alias.asname == alias.name]
    return names


def lazy_package(
    package: str, submodules: Sequence[str] | None = None, source: str | None = None
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` of ``package``: :func:`exported_names` (the ``X as X`` imports of its
    source), each of them that is imported only under ``TYPE_CHECKING`` imported on first access (:func:`lazy_exports`).

    Args:
        package: the package's ``__name__`` (imported: this is called from its ``__init__``).
        submodules: as for :func:`lazy_exports`.
        source: the package's ``__init__`` source (default: read from its ``__file__``).

    Example::

        if TYPE_CHECKING:
            from .mk_lncc import MKLNCCLoss as MKLNCCLoss

        __all__, __getattr__, __dir__ = lazy_package(__name__)
    """
    if source is None:
        source = _package_source(package)
    names = exported_names(package, source)
    return (names, *lazy_exports(package, names, submodules, source))


def lazy_exports(
    package: str, names: Sequence[str], submodules: Sequence[str] | None = None, source: str | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``names`` (its ``__all__``) that the package does not
    define itself is imported, on first access, from the module its ``if TYPE_CHECKING:`` block imports it from.

    Args:
        package: the package's ``__name__`` (imported: this is called from its ``__init__``).
        names: the package's public names (``__all__``).
        submodules: submodule names reachable as attributes (``monai_avsm.engines.native``) before they are imported;
            default: every submodule whose name does not start with ``_`` (found on disk with ``pkgutil``, nothing
            imported). A public name must not equal a submodule's name: importing the submodule would rebind it.
        source: the package's ``__init__`` source (default: read from its ``__file__``).

    Raises:
        ValueError: a name is both an export and a submodule, or a name of ``names`` is neither defined, nor
            imported under ``TYPE_CHECKING``, nor a submodule.

    Example::

        __getattr__, __dir__ = lazy_exports(__name__, __all__)
    """
    import sys

    module_obj = sys.modules.get(package)
    if submodules is None:
        submodules = package_modules(package)
    if source is None:
        source = _package_source(package)
    imported = type_checking_imports(source)
    modules = set(submodules)
    where = {name: imported[name] for name in names if name in imported and imported[name] != "."}
    clash = sorted(set(where) & modules)
    if clash:
        raise ValueError(f"lazy_exports: {package}: the names {clash} are both exports and submodules.")
    defined = set(vars(module_obj)) if module_obj is not None else set()
    unknown = [n for n in names if n not in where and n not in modules and n not in defined]
    if unknown:
        raise ValueError(
            f"lazy_exports: {package}: {unknown} are in __all__ but neither defined, nor imported under TYPE_CHECKING, "
            "nor submodules."
        )

    def __getattr__(name: str) -> Any:
        if name in modules:
            value = importlib.import_module(f".{name}", package)
        elif name in where:
            value = getattr(importlib.import_module(where[name], package), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where) | modules)

    return __getattr__, __dir__
