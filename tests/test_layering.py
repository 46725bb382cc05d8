"""Everything but the dock (paintseg.widgets) must import without Qt or napari: the engine,
the session layer that the training child process imports (and the dock state), the CLI,
the pipelines and the fuzz tests' inputs (paintseg.testing)."""

import ast
import subprocess
import sys
from pathlib import Path

import paintseg

FORBIDDEN = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "vispy")

IMPORT_ALL_BUT_WIDGETS = f"""
import importlib, pkgutil, sys
import paintseg
def check(name):
    before = set(sys.modules)
    module = importlib.import_module(name)
    bad = sorted(n for n in set(sys.modules) - before if n.split(".")[0] in {FORBIDDEN!r})
    if bad:
        print(name, "imports", ", ".join(bad))
    for sub in pkgutil.iter_modules(getattr(module, "__path__", []), name + "."):
        check(sub.name)
for top in pkgutil.iter_modules(paintseg.__path__, "paintseg."):
    if top.name != "paintseg.widgets":
        check(top.name)
print("checked", all(name in sys.modules for name in
                     ("paintseg.session.dock", "paintseg.testing.files", "paintseg.testing.stores",
                      "paintseg.testing.command_lines", "paintseg.testing.crafted")))
"""


def test_nothing_but_the_widgets_imports_a_gui_toolkit():
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL_BUT_WIDGETS], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "checked True", out.stdout


def imports_of(package: Path) -> dict[str, set[str]]:
    """``module -> the paintseg modules it imports``, function-level imports included (a
    circle broken by importing inside a function is still a circle)."""
    modules = {".".join(("paintseg", *p.relative_to(package).with_suffix("").parts))
               .removesuffix(".__init__"): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = imports_of(Path(paintseg.__file__).parent)
    assert len(graph) > 50  # every module was read
    reached: dict[str, set[str]] = {}

    def reach(name: str) -> set[str]:
        if name not in reached:
            reached[name] = set()
            for other in graph[name]:
                reached[name] |= {other} | reach(other)
        return reached[name]

    circles = sorted(name for name in graph if name in reach(name))
    assert not circles, circles
