"""The import graph of monai_avsm runs one way: every ``import`` of the package (top-level, inside functions and under
``TYPE_CHECKING`` alike, read with ``ast`` from the source) goes to a lower layer or stays in its own subpackage.

    utils -> functional -> networks / losses / metrics / transforms / data / visualize -> optimization
          -> engines / handlers -> apps

No module imports the package root (``from monai_avsm import ...``: its ``__init__`` reaches every subpackage, apps
included); ``data`` and ``functional`` in particular never import engines, handlers or apps.
"""

from __future__ import annotations

import ast
import unittest
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "monai_avsm"

#: the layer of each top-level subpackage or module of monai_avsm (0 is the lowest)
LAYERS = {
    "_version": 0,
    "utils": 0,
    "functional": 1,
    "networks": 2,
    "losses": 2,
    "metrics": 2,
    "transforms": 2,
    "data": 2,
    "visualize": 2,
    "optimization": 3,
    "engines": 4,
    "handlers": 4,
    "apps": 5,
    "demo": 5,
    "__main__": 6,
}
#: imports between two subpackages of one layer that are part of the design: (importer, imported)
SAME_LAYER = {
    ("visualize", "data"),  # the preview writes its file with data.files.prepare_output_path
    ("data", "transforms"),  # the pair loading pipeline is built of transforms (monai.data also uses monai.transforms)
    ("handlers", "engines"),  # the handlers run the engines' writer and geometry on each batch
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> list[tuple[str, str, int]]:
    """``(importing module, imported monai_avsm module, line)`` for every import of the package in its source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                targets = [target]
                if target == "monai_avsm":  # ``from monai_avsm import data`` imports a part, any other name the root
                    targets = [f"monai_avsm.{a.name}" if a.name in LAYERS else "monai_avsm" for a in node.names]
                elif node.module is None:  # ``from . import x``: the submodule x
                    targets = [f"{target}.{alias.name}" for alias in node.names]
            else:
                continue
            found += [(module, t, node.lineno) for t in targets if t.split(".")[0] == "monai_avsm"]
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


class TestLayering(unittest.TestCase):
    def test_every_part_has_a_layer(self):
        parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
        parts = {p for p in parts if p not in ("__init__", "__pycache__")}
        self.assertEqual(parts - set(LAYERS), set(), "give each new subpackage a layer in LAYERS")

    def test_imports_run_one_way(self):
        wrong = []
        for module, target, line in package_imports():
            src, dst = _part(module), _part(target)
            if src == "<root>" or src == dst:
                continue
            if dst == "<root>":
                wrong.append(f"{module}:{line} imports the package root ({target})")
            elif LAYERS[dst] > LAYERS[src] or (LAYERS[dst] == LAYERS[src] and (src, dst) not in SAME_LAYER):
                wrong.append(f"{module}:{line} ({src}, layer {LAYERS[src]}) imports {target} (layer {LAYERS[dst]})")
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_data_and_functional_stay_low(self):
        high = {"engines", "handlers", "apps", "demo", "__main__", "<root>"}
        wrong = [
            f"{module}:{line} imports {target}"
            for module, target, line in package_imports()
            if _part(module) in ("data", "functional") and _part(target) in high
        ]
        self.assertEqual(wrong, [], "\n".join(wrong))

    def test_the_checker_sees_imports(self):
        """The parser itself: relative, absolute, in functions, under TYPE_CHECKING."""
        pairs = {(a, b) for a, b, _ in package_imports()}
        for pair in (
            ("monai_avsm.apps.sample", "monai_avsm.data.templates"),  # absolute, top level
            ("monai_avsm", "monai_avsm.apps"),  # relative, under TYPE_CHECKING
            ("monai_avsm.engines.utils", "monai_avsm.data.datalist"),  # inside a function
        ):
            self.assertTrue(pair in pairs, pair)


if __name__ == "__main__":
    unittest.main()
