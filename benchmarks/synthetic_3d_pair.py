"""Write a synthetic 3D pair (a two-channel anisotropic Z stack of touching nuclei and its
instance truth) in the layout of ``../shared/data/real2``, so the 3D path of the real-data
benchmarks can run where no real 3D pair is at hand. Its scores say that path works, not how
well the product does on real stacks. Run::

    .venv/bin/python benchmarks/synthetic_3d_pair.py /tmp/pairs
    .venv/bin/python benchmarks/quality_real.py --data /tmp/pairs --datasets synthetic_cells_3d
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tifffile

from paintseg.io.samples import synthetic_cells

NAME = "synthetic_cells_3d"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--shape", type=int, nargs=3, default=(20, 256, 256), metavar="ZYX")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    cells = synthetic_cells(shape=tuple(args.shape), seed=args.seed)
    args.folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(args.folder / f"{NAME}_image.tif", cells["image"])
    tifffile.imwrite(args.folder / f"{NAME}_gt.tif", cells["instances"].astype(np.uint16))
    summary = {NAME: {"kind": "instance", "axes": "CZYX",
                      "voxel_size": [float(s) for s in cells["scale"]],
                      "channels": list(cells["channel_names"]),
                      "note": f"paintseg.io.samples.synthetic_cells, seed {args.seed}"}}
    (args.folder / "summary.json").write_text(json.dumps(summary, indent=1))
    print(args.folder / f"{NAME}_image.tif")


if __name__ == "__main__":
    main()
