"""Opening a big stack must be lazy: time and bytes read to open, then to show one plane.

Writes a BigTIFF OME stack (default 2 x 256 x 2048 x 2048 uint16, 4.3 GB) to a temporary
folder, then, in a fresh process, opens it through the napari reader hook and reads one plane
per channel, counting the bytes read through system calls (/proc/self/io ``rchar``, which
counts page-cache hits too). Prints JSON. Usage::

    python benchmarks/open_big.py [--planes 256] [--size 2048] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from harness import print_report

PROBE = r"""
import json, sys, time
import numpy as np
from paintseg.io.napari_reader import get_reader

def rchar():
    for line in open("/proc/self/io"):
        if line.startswith("rchar"):
            return int(line.split()[1])

path = sys.argv[1]
before, t0 = rchar(), time.perf_counter()
layers = get_reader(path)(path)
open_s, open_bytes = time.perf_counter() - t0, rchar() - before
before, t0 = rchar(), time.perf_counter()
for data, meta, kind in layers:
    np.asarray(data[data.shape[0] // 2])
plane_s, plane_bytes = time.perf_counter() - t0, rchar() - before
print(json.dumps(dict(layers=len(layers), open_s=open_s, open_bytes=open_bytes,
                      show_plane_s=plane_s, show_plane_bytes=plane_bytes)))
"""


def write_stack(path: Path, planes: int, size: int) -> int:
    """Write a (2, planes, size, size) uint16 OME BigTIFF plane by plane; return its bytes."""
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 4000, (size, size), dtype=np.uint16)

    def pages():
        for _ in range(2 * planes):
            yield plane

    tifffile.imwrite(path, pages(), shape=(2, planes, size, size), dtype=np.uint16,
                     bigtiff=True, ome=True, metadata={"axes": "CZYX"})
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=256)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--keep", type=Path, help="folder for the stack (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.keep) as folder:
        path = Path(folder) / "big.ome.tif"
        file_bytes = write_stack(path, args.planes, args.size)
        out = subprocess.run([sys.executable, "-c", PROBE, str(path)], check=True,
                             capture_output=True, text=True)
    result = json.loads(out.stdout)
    plane_bytes = 2 * args.size * args.size * 2
    result.update(file_bytes=file_bytes, one_plane_per_channel_bytes=plane_bytes,
                  open_fraction_of_file=result["open_bytes"] / file_bytes,
                  open_bytes_vs_one_plane=result["open_bytes"] / plane_bytes)
    print_report(result, indent=2)


if __name__ == "__main__":
    main()
