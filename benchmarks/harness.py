"""What every benchmark's JSON records, and how it is printed: the commit it measured and the
machine (CPU model, cores, and its load when the script started and when it ended), because
these machines are noisy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOAD_AT_START = os.getloadavg()[0]


def machine_info() -> dict:
    """The git commit of the working tree (and whether it has uncommitted changes), the CPU
    model and the number of cores, for a report."""
    def git(*command: str) -> str:
        try:
            return subprocess.run(["git", *command], cwd=HERE, capture_output=True, text=True,
                                  timeout=30, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return {"git_commit": git("rev-parse", "--short", "HEAD") or None,
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "cpu": cpu or None, "cores": os.cpu_count()}


def print_report(report: dict, indent: int | None = 1, file=None) -> None:
    """Print ``report`` as JSON, after a ``"run"`` entry: the command, the commit, the machine
    and its 1-minute load average at the script's start and end."""
    run = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), **machine_info(),
           "load_at_start": round(LOAD_AT_START, 2), "load_at_end": round(os.getloadavg()[0], 2)}
    print(json.dumps({"run": run, **report}, indent=indent), file=file or sys.stdout)
