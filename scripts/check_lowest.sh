#!/usr/bin/env bash
# The declared minimum versions are true, and installing into a napari environment downgrades
# nothing. 1) A venv with the lowest versions pyproject.toml allows (.ci/lowest.txt; torch is
# the local 2.13 build) runs the file, model-file and CLI tests, then the dock's main tests.
# 2) A venv with today's napari gets the plugin; napari, numpy and pydantic keep their versions.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${PAINTSEG_TORCH:-torch==2.13.0}"

fresh_venv() {
    rm -rf "$1"
    python3 -m venv "$1"
    "$1/bin/python" -m pip -q --disable-pip-version-check install "$TORCH"
}

# The existing-napari venv installs (mostly network and disk) while the lowest one installs
# and runs its tests.
existing_napari() {
    fresh_venv .venv-existing
    .venv-existing/bin/python -m pip -q --disable-pip-version-check install napari
}
existing_napari > .existing-napari.log 2>&1 &
existing_pid=$!
trap 'kill "$existing_pid" 2>/dev/null || true' EXIT

echo "== lowest allowed versions"
fresh_venv .venv-lowest
.venv-lowest/bin/python -m pip -q --disable-pip-version-check install -c .ci/lowest.txt \
    -e . "pytest>=8" "hypothesis>=6"
.venv-lowest/bin/python -m pip list 2>/dev/null | grep -i -E "^(napari|numpy|scikit-learn|zarr|tifffile|bioimageio.spec) "
.venv-lowest/bin/python -m pytest -p no:cacheprovider -p no:xvfb -W ignore::DeprecationWarning \
    -k "not dock" tests/test_saved_forest.py tests/test_crafted_files.py \
    tests/test_model_file.py tests/test_io_images.py tests/test_io_labels.py \
    tests/test_io_project.py tests/test_cli.py tests/test_prediction_store.py \
    tests/test_learn_forest.py tests/test_bioimageio.py
# the dock on the lowest napari: open, train (child process and thread), stop, predict
.venv-lowest/bin/python -m pip -q --disable-pip-version-check install -c .ci/lowest.txt \
    pyqt5 pytest-qt pytest-xvfb
.venv-lowest/bin/python -m pytest -p no:cacheprovider -W ignore::DeprecationWarning \
    tests/test_widgets.py -k "sample_opens or trains_and_predicts or stop_mid_run or readme_run"

echo "== installing into an existing napari environment"
wait "$existing_pid" || { cat .existing-napari.log; echo "check_lowest: napari did not install"; exit 1; }
versions() { .venv-existing/bin/python -m pip list 2>/dev/null | grep -i -E "^(napari|numpy|pydantic) "; }
before="$(versions)"
.venv-existing/bin/python -m pip -q --disable-pip-version-check install -e .
after="$(versions)"
echo "$after"
if [ "$before" != "$after" ]; then
    echo "check_lowest: installing the plugin changed the environment:"; diff <(echo "$before") <(echo "$after") || true
    exit 1
fi
rm -rf .venv-lowest .venv-existing .existing-napari.log
echo "check_lowest: ok"
