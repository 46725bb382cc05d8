"""Results of a dask-cluster prediction, opened in napari as a user would (run under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/screenshot_cluster.py

Trains a model for 20 s on the real Murphy 2009 nuclei image (benchmarks/data, simulated first
strokes), predicts it with ``paintseg predict --workers 2 --output murphy.ome.zarr`` (bands
of 512 rows on a 2-worker LocalCluster), opens the OME-Zarr with File > Open (the plugin's
reader: class map, uncertainty and probabilities, multiscale) and exports the model from the
dock to the BioImage Model Zoo. Writes docs/screenshot_ome_zarr.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import tifffile
from screenshot_loop import run_until, save

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_data  # noqa: E402

from paintseg.cli import main as paintseg  # noqa: E402
from paintseg.io.labels import write_labels  # noqa: E402
from paintseg.pipeline import batch  # noqa: E402

NAME = "murphy2009_NIH3T3_hoechst_ic100_dna0"


def main() -> None:
    import napari
    from napari.settings import get_settings

    get_settings().application.gui_notification_level = "error"
    dataset = real_data.nuclei_datasets([NAME])[0]
    folder = Path(tempfile.mkdtemp())
    image, strokes = folder / "murphy.tif", folder / "strokes.tif"
    tifffile.imwrite(image, dataset.image, metadata={"axes": "YX"})
    write_labels(strokes, real_data.simulate_strokes(dataset.truth, seed=0),
                 [{"name": c.name, "color": c.color} for c in real_data.CLASSES])
    model, store = folder / "murphy.paintseg.safetensors", folder / "murphy.ome.zarr"
    assert paintseg(["train", "--image", str(image), "--labels", str(strokes), "--out",
                     str(model), "--seconds", "20"]) == 0
    with mock.patch.object(batch, "BAND_ROWS", 512):  # show bands on a 1024-row image
        assert paintseg(["predict", "--model", str(model), "--input", str(image), "--output",
                         str(store), "--workers", "2"]) == 0

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1600, 1000)
    viewer.open(str(image), plugin="napari-paintseg")
    viewer.open(str(store), plugin="napari-paintseg")
    print([f"{layer.name} ({type(layer).__name__})" for layer in viewer.layers])
    classes = viewer.layers["murphy classes"]
    classes.opacity = 0.5
    _, widget = viewer.window.add_plugin_dock_widget("napari-paintseg", "PaintSeg")
    widget.model_files.load_model(str(model))
    run_until(lambda: not widget.busy, 60)
    widget.prediction.folder_format.setCurrentText("as OME-Zarr")
    package = folder / "murphy.bioimageio.zip"
    widget.model_files.export_bioimageio(str(package))
    run_until(lambda: not widget.busy, 120)
    print(f"exported {package} ({package.stat().st_size / 1e6:.1f} MB)")
    viewer.layers.selection.active = classes
    assert np.asarray(classes.data[0]).max() == len(real_data.CLASSES)
    run_until(lambda: False, 2)  # let the dock lay itself out
    save(viewer, "screenshot_ome_zarr.png")
    viewer.close()


if __name__ == "__main__":
    main()
