"""Everything but the dock (paintseg.widgets) must import without Qt or napari: the engine,
the session layer that the training child process imports (and the dock state), the CLI,
the pipelines and the fuzz tests' inputs (paintseg.testing)."""

import subprocess
import sys

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
