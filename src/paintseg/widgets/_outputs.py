"""Layers the widget makes from engine results (GUI thread only).

Output layers are named after the image: ``"<image> classes"``, ``"<image> uncertainty"``,
``"<image> objects"``, ``"<image> object names"`` and ``"<image> prediction preview"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from napari.layers import Image, Labels, Layer, Points
from napari.utils.colormaps import DirectLabelColormap

from paintseg.io.napari_reader import label_colors
from paintseg.learn.classes import ClassInfo
from paintseg.widgets._jobs import PredictResult
from paintseg.widgets._layers import (
    CLASSES_KEY,
    class_names_features,
    classes_to_metadata,
    object_features,
    object_points,
)


OUTPUT_KEY = "paintseg_output"
"""``layer.metadata`` key marking the layers the widget makes (not inputs, not annotations)."""


def is_output(layer: Layer) -> bool:
    """Whether the widget made this layer (prediction, preview, uncertainty, objects)."""
    return bool(layer.metadata.get(OUTPUT_KEY))


@dataclass
class Geometry:
    """Where an image sits in the world: its spatial shape, scale and translation."""

    name: str
    shape: tuple[int, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]

    @classmethod
    def of(cls, layer: Layer, shape: tuple[int, ...]) -> Geometry:
        """The geometry of an image layer whose spatial shape is ``shape``."""
        n = len(shape)
        return cls(layer.name, tuple(shape), tuple(layer.scale[-n:]), tuple(layer.translate[-n:]))


def apply_classes(layer: Labels, classes: Sequence[ClassInfo]) -> None:
    """Give a Labels layer the class table: colours, names on hover, and metadata to save."""
    layer.colormap = DirectLabelColormap(color_dict=label_colors(classes_to_metadata(classes)))
    layer.metadata[CLASSES_KEY] = classes_to_metadata(classes)
    if layer.features.empty or "class_name" in layer.features.columns:
        layer.features = class_names_features(classes)


def _find(viewer, name: str, kind: type[Layer]) -> Layer | None:
    layer = viewer.layers[name] if name in viewer.layers else None
    return layer if isinstance(layer, kind) else None


def labels_layer(viewer, name: str, geometry: Geometry, dtype, **kwargs) -> Labels:
    """The Labels layer ``name`` of the image's shape, created (zeros) if missing or reshaped."""
    layer = _find(viewer, name, Labels)
    if layer is None or layer.data.shape != geometry.shape or layer.data.dtype != dtype:
        data = np.zeros(geometry.shape, dtype=dtype)
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_labels(
            data, name=name, scale=geometry.scale, translate=geometry.translate,
            metadata={OUTPUT_KEY: True}, **kwargs
        )
    return layer


def new_annotation_layer(viewer, geometry: Geometry, classes: Sequence[ClassInfo]) -> Labels:
    """A new, empty annotation layer bound to the image (0 = not annotated)."""
    dtype = np.uint8 if len(classes) < 255 else np.uint16
    name = f"{geometry.name} annotations"
    data = np.zeros(geometry.shape, dtype=dtype)
    layer = viewer.add_labels(data, name=name, scale=geometry.scale, translate=geometry.translate)
    apply_classes(layer, classes)
    return layer


def _write(layer: Labels | Image, plane: tuple[int, ...] | None, values: np.ndarray) -> None:
    if plane is None:
        layer.data[...] = values
    else:
        layer.data[plane] = values
    layer.refresh()


def label_dtype(classes: Sequence[ClassInfo]) -> type:
    """The engine's class-map dtype for this many classes."""
    return np.uint8 if len(classes) < 256 else np.uint16


def preview_layer(viewer, geometry: Geometry, classes: Sequence[ClassInfo]) -> Labels:
    """The ``"<image> prediction preview"`` layer, made before training starts.

    Making a layer takes a moment on the GUI thread; doing it at the click rather than at
    the first preview keeps the GUI smooth while training runs.
    """
    layer = labels_layer(viewer, f"{geometry.name} prediction preview", geometry,
                         label_dtype(classes), opacity=0.5)
    apply_classes(layer, classes)
    return layer


def show_preview(
    viewer, geometry: Geometry, classes: Sequence[ClassInfo], plane: tuple[int, ...], labels
) -> Labels:
    """Write a live-preview plane into ``"<image> prediction preview"``."""
    layer = _find(viewer, f"{geometry.name} prediction preview", Labels)
    if layer is None or layer.data.shape != geometry.shape:
        layer = preview_layer(viewer, geometry, classes)
    _write(layer, plane, np.asarray(labels))
    return layer


def show_prediction(
    viewer, geometry: Geometry, classes: Sequence[ClassInfo], result: PredictResult
) -> dict[str, Layer]:
    """Make or update the class, uncertainty, objects and object-name layers of a prediction.

    A single-plane result writes its plane into the class and uncertainty layers (other
    planes keep earlier predictions); the objects layers then hold that plane's objects.
    """
    name = geometry.name
    classes_layer = labels_layer(viewer, f"{name} classes", geometry, result.labels.dtype)
    apply_classes(classes_layer, classes)
    _write(classes_layer, result.plane, result.labels)

    uncertainty = _find(viewer, f"{name} uncertainty", Image)
    if uncertainty is None or uncertainty.data.shape != geometry.shape:
        if uncertainty is not None:
            viewer.layers.remove(uncertainty)
        uncertainty = viewer.add_image(
            np.zeros(geometry.shape, np.float32), name=f"{name} uncertainty",
            scale=geometry.scale, translate=geometry.translate, colormap="magma",
            contrast_limits=(0, 1), blending="additive", visible=False,
            metadata={OUTPUT_KEY: True},
        )
    _write(uncertainty, result.plane, result.uncertainty.astype(np.float32))

    objects = labels_layer(viewer, f"{name} objects", geometry, np.int32)
    objects.data[...] = 0
    _write(objects, result.plane, result.objects)
    objects.features = object_features(result.table)
    layers = {"classes": classes_layer, "uncertainty": uncertainty, "objects": objects}
    layers["names"] = show_object_names(viewer, geometry, result.table, result.plane or ())
    return layers


def show_object_names(viewer, geometry: Geometry, table: pd.DataFrame, plane=()) -> Points | None:
    """Class names as text at object centroids (``"<image> object names"``)."""
    name = f"{geometry.name} object names"
    old = _find(viewer, name, Points)
    if old is not None:
        viewer.layers.remove(old)
    if table.empty:
        return None
    coords, features = object_points(table, plane, len(geometry.shape))
    return viewer.add_points(
        coords, name=name, features=features, size=1,
        scale=geometry.scale, translate=geometry.translate,
        face_color="transparent", border_width=0, metadata={OUTPUT_KEY: True},
        text={"string": "{class_name}", "color": "white", "size": 9},
    )
