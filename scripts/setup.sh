#!/usr/bin/env bash
# Set up everything napari-paintseg needs, from nothing: system libraries for Qt/OpenGL
# (Debian/Ubuntu, when run as root or with sudo), a virtual environment in .venv, torch
# (kept if present; else 2.13.0, or $PAINTSEG_TORCH) and the plugin with its extras.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [extras, default pyqt5,testing]
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-pyqt5,testing}"
VENV="${PAINTSEG_VENV:-.venv}"

APT_PACKAGES="xvfb xauth libgl1 libgl1-mesa-dri libglx-mesa0 libegl1 libopengl0 libfontconfig1
 libdbus-1-3 libglib2.0-0 libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb1 libxcb-icccm4
 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0
 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0"

install_system_packages() {
    command -v dpkg-query >/dev/null || { echo "setup: not Debian-like; install Qt/OpenGL libraries yourself"; return; }
    local missing=()
    for p in $APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    [ "$(id -u)" -ne 0 ] && { command -v sudo >/dev/null && sudo="sudo" || { echo "setup: please install: ${missing[*]}"; return; }; }
    echo "setup: installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    local pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
    "$VENV/bin/python" -c "import torch" 2>/dev/null || "${pip[@]}" install "${PAINTSEG_TORCH:-torch==2.13.0}"
    "${pip[@]}" install -e ".[${EXTRAS}]"
}

install_system_packages
install_python_packages
echo "setup: ready ($VENV)"
