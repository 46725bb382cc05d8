#!/usr/bin/env bash
# Set up from nothing, then run the whole test suite headless (pytest-xvfb starts Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pyqt5,testing
exec .venv/bin/python -m pytest "$@"
