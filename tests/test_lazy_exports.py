"""The exports of a package are stated once, as ``X as X`` imports, and :mod:`monai_avsm.utils.lazy` derives
``__all__`` (and the lazy ``__getattr__``) from them."""

from __future__ import annotations

import ast
import sys
import types
import unittest
from pathlib import Path

from monai_avsm.utils.lazy import exported_names, lazy_exports, lazy_package

PACKAGE = Path(__file__).resolve().parents[1] / "monai_avsm"

SOURCE = """
from typing import TYPE_CHECKING
from ._version import __version__ as __version__
from .helpers import private_helper
if TYPE_CHECKING:
    from . import sub as sub
    from .a import B as B
    from .a import only_for_annotations
    from .c import A as A
"""


class TestLazyExports(unittest.TestCase):
    def test_exported_names_are_the_x_as_x_imports_in_source_order(self):
        self.assertEqual(exported_names("pkg", SOURCE), ["__version__", "sub", "B", "A"])

    def test_lazy_package_and_the_listed_form(self):
        pkg = types.ModuleType("avsm_fake_pkg")
        pkg.__version__ = "1"
        sys.modules[pkg.__name__] = pkg
        a = types.ModuleType("avsm_fake_pkg.a")
        a.B = "b"
        sys.modules[a.__name__] = a
        self.addCleanup(sys.modules.pop, pkg.__name__)
        self.addCleanup(sys.modules.pop, a.__name__)
        source = "if TYPE_CHECKING:\n    from .a import B as B\n"
        names, getattr_, dir_ = lazy_package(pkg.__name__, submodules=(), source=source)
        self.assertEqual(names, ["B"])
        self.assertEqual(getattr_("B"), "b")
        self.assertIn("B", dir_())
        with self.assertRaises(AttributeError):
            getattr_("C")
        # the older form, with the names listed, reads the same imports
        getattr_, _ = lazy_exports(pkg.__name__, ["B"], (), source="if TYPE_CHECKING:\n    from .a import B\n")
        self.assertEqual(getattr_("B"), "b")

    def test_each_package_states_its_exports_in_one_form(self):
        """A relative import of a package's ``__init__`` is an export (``X as X``); one without the alias would be
        neither in ``__all__`` nor public to type checkers, so it is caught here."""
        wrong = []
        for path in sorted(PACKAGE.rglob("__init__.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            blocks = [n.body if isinstance(n, ast.If) else [n] for n in tree.body]
            for stmt in (s for block in blocks for s in block):
                if isinstance(stmt, ast.ImportFrom) and stmt.level and stmt.module != "utils.lazy":
                    if stmt.module == "lazy" and path.parent.name == "utils":
                        continue
                    wrong += [f"{path}:{stmt.lineno} {a.name}" for a in stmt.names if a.asname != a.name]
        self.assertEqual(wrong, [], "\n".join(wrong))


if __name__ == "__main__":
    unittest.main()
