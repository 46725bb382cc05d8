#!/usr/bin/env bash
# Set up from nothing, then open napari with the plugin docked and a sample loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh pyqt5,testing
exec .venv/bin/paintseg gui --sample synthetic "$@"  # later options win
