"""The engine (paintseg.io, paintseg.learn) must import without Qt or napari."""

import subprocess
import sys

import pytest

FORBIDDEN = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "vispy")


@pytest.mark.parametrize("package", ["paintseg.io", "paintseg.learn", "paintseg.cli",
                                     "paintseg.bioimageio", "paintseg.batch",
                                     "paintseg.predict_files"])
def test_engine_imports_no_gui(package):
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.walk_packages(getattr(pkg, '__path__', []), pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{package} imports GUI modules: {out.stdout.strip()}"
