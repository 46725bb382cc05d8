"""Write the generated sample into sample_data/ (so users can File > Open it).

    python scripts/make_synthetic_sample.py

Writes synthetic_cells.ome.tif (2 channels: nuclei, membrane; Z stack; pixel sizes),
synthetic_cells_truth.tif (semantic ground truth with its class table),
synthetic_cells_instances.tif (nucleus ids) and synthetic_cells_strokes.tif (example strokes,
about 2% of pixels). Deterministic: rerunning gives the same data.
"""

from pathlib import Path

import tifffile

from paintseg.io.labels import write_labels
from paintseg.io.samples import draw_strokes, synthetic_cells

OUT = Path(__file__).resolve().parent.parent / "sample_data"


def main() -> None:
    cells = synthetic_cells()
    scale = cells["scale"]
    tifffile.imwrite(
        OUT / "synthetic_cells.ome.tif",
        cells["image"],
        ome=True,
        photometric="minisblack",
        compression="zlib",
        metadata={
            "axes": "CZYX",
            "Channel": {"Name": cells["channel_names"]},
            "PhysicalSizeZ": scale[0],
            "PhysicalSizeY": scale[1],
            "PhysicalSizeX": scale[2],
            "PhysicalSizeZUnit": "µm",
            "PhysicalSizeYUnit": "µm",
            "PhysicalSizeXUnit": "µm",
        },
    )
    write_labels(OUT / "synthetic_cells_truth.tif", cells["semantic"], cells["classes"], scale)
    write_labels(OUT / "synthetic_cells_instances.tif", cells["instances"], None, scale)
    strokes = draw_strokes(cells["semantic"])
    write_labels(OUT / "synthetic_cells_strokes.tif", strokes, cells["classes"], scale)
    for path in sorted(OUT.glob("synthetic_cells*")):
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
