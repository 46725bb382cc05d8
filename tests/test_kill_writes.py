"""Kill -9 in the middle of every kind of save: the file is the old one or the new one."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "kill_writes.py"


def test_no_save_leaves_a_broken_file_when_killed():
    done = subprocess.run([sys.executable, str(SCRIPT), "--kills", "1", "--seed", "1"],
                          capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout)
    assert report["total_kills"] == 8  # 8 writers, the CLI's predict (TIFF, zarr, store)
    assert report["total_broken"] == 0, report
