#!/usr/bin/env bash
# Set up from nothing, then run the whole test suite headless (pytest-xvfb starts Xvfb) with
# PyQt5, and the GUI tests again with PyQt6 and PySide6 (but for the three long loops, marked
# long_loop, which repeat what the shorter ones check of Qt). Arguments go to pytest (PyQt5 only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pyqt5,pyqt6,pyside6,testing
.venv/bin/python -m pytest "$@"
[ $# -gt 0 ] && exit 0
for api in pyqt6 pyside6; do
    echo "== GUI tests on $api"
    QT_API=$api PYTEST_QT_API=$api .venv/bin/python -m pytest -p no:cacheprovider -m "not long_loop" \
        tests/test_widgets.py tests/test_widgets_project.py tests/test_widgets_cycles.py \
        tests/test_widgets_edits.py \
        tests/test_manifest.py
done
echo "== lowest versions, and installing into an existing napari"
bash scripts/check_lowest.sh
