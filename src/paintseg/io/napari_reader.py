"""npe2 reader hook: TIFF / OME-TIFF / ImageJ / zarr / OME-Zarr -> napari LayerData tuples.

Plain tuples only; napari itself is never imported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from paintseg.io.images import ImageData, is_tiff_path, is_zarr_path, read_image
from paintseg.io.labels import LabelsData, open_labels
from paintseg.io.prediction_store import is_prediction_store, open_prediction

LayerData = tuple[Any, dict[str, Any], str]
PathOrPaths = str | os.PathLike | Sequence[str | os.PathLike]
CHANNEL_COLORMAPS = ("green", "magenta", "cyan", "yellow", "red", "blue")
OUTPUT_KEY = "paintseg_output"
"""``layer.metadata`` key marking results (predictions, previews, uncertainty, objects): the
dock offers them neither as channels nor as annotations."""


def get_reader(path: PathOrPaths) -> Callable[[PathOrPaths], list[LayerData]] | None:
    """Return :func:`read_layers` if every path is a TIFF file or zarr directory, else None.

    Parameters
    ----------
    path : str or list of str
        What napari was asked to open.
    """
    paths = _as_paths(path)
    if not paths or not all(is_tiff_path(p) or is_zarr_path(p) for p in paths):
        return None
    return read_layers


def read_layers(path: PathOrPaths) -> list[LayerData]:
    """Read each path: labels written by paintseg as a labels layer, else image layers.

    Raises
    ------
    FileFormatError
        If a file is corrupt; napari shows the message.
    """
    layers: list[LayerData] = []
    for one in _as_paths(path):
        if is_prediction_store(one):
            layers.extend(prediction_layers(one))
            continue
        labels = open_labels(one)
        if labels is not None:
            layers.append(labels_layer(labels, str(one)))
        else:
            layers.extend(image_layers(read_image(one), str(one)))
    return layers


def _as_paths(path: PathOrPaths) -> list[str | os.PathLike]:
    return [path] if isinstance(path, (str, os.PathLike)) else list(path)


def image_layers(image: ImageData, source: str) -> list[LayerData]:
    """One napari image layer per channel (additive colours when there are several)."""
    several = len(image.channels) > 1
    layers = []
    for i, (channel, name) in enumerate(zip(image.channels, image.channel_names)):
        meta: dict[str, Any] = {
            "name": f"{image.name} [{name}]" if several else image.name,
            "scale": image.scale,
            "contrast_limits": image.contrast_limits[i],
            "colormap": CHANNEL_COLORMAPS[i % len(CHANNEL_COLORMAPS)] if several else "gray",
            "blending": "additive" if several else "translucent",
            "metadata": {
                "paintseg_channel": i,
                "paintseg_channel_name": name,
                "paintseg_source": source,
            },
        }
        data: Any = channel
        if image.multiscale is not None:
            data, meta["multiscale"] = image.multiscale[i], True
        layers.append((data, meta, "image"))
    return layers


def labels_layer(labels: LabelsData, source: str, name: str | None = None) -> LayerData:
    """A napari labels layer carrying the class table (and its colours) in metadata."""
    meta: dict[str, Any] = {
        "name": name or labels.name,
        "scale": labels.scale,
        "metadata": {"paintseg_classes": labels.classes, "paintseg_source": source},
    }
    if labels.classes:
        meta["colormap"] = label_colors(labels.classes)
    return (labels.data, meta, "labels")


def prediction_layers(path: str | os.PathLike) -> list[LayerData]:
    """A prediction store (``paintseg predict --output x.ome.zarr``): the class map as labels,
    the uncertainty, and each class's probability (hidden), all multiscale."""
    pred = open_prediction(path)
    common = {"scale": pred.scale, "multiscale": True, "metadata": {OUTPUT_KEY: True}}
    labels = (pred.labels, {**common, "name": f"{pred.name} classes",
                            "colormap": label_colors(pred.classes),
                            "metadata": {OUTPUT_KEY: True, "paintseg_classes": pred.classes,
                                         "paintseg_source": str(path)}}, "labels")
    uncertainty = (pred.uncertainty, {**common, "name": f"{pred.name} uncertainty",
                                      "colormap": "inferno", "contrast_limits": (0.0, 1.0),
                                      "visible": False}, "image")
    probabilities = [([level[k] for level in pred.probabilities],
                      {**common, "name": f"{pred.name} p({c['name']})", "visible": False,
                       "contrast_limits": (0.0, 1.0), "colormap": "gray"}, "image")
                     for k, c in enumerate(pred.classes)]
    return [*probabilities, uncertainty, labels]


def label_colors(classes: Sequence[dict[str, Any]]) -> dict[int | None, str]:
    """napari labels colormap dict: value ``i + 1`` gets class ``i``'s colour."""
    colors: dict[int | None, str] = {None: "transparent", 0: "transparent"}
    colors.update({i + 1: c.get("color", "#808080") for i, c in enumerate(classes)})
    return colors
