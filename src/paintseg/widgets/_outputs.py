"""Layers the widget makes from engine results (GUI thread only).

Output layers are named after the image: ``"<image> classes"``, ``"<image> uncertainty"``,
``"<image> objects"``, ``"<image> object names"``, ``"<image> where to paint next"`` and
``"<image> prediction preview"``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from napari.layers import Image, Labels, Layer, Points
from napari.utils.colormaps import DirectLabelColormap

from paintseg.classes import ClassInfo
from paintseg.io.napari_reader import OUTPUT_KEY, label_colors
from paintseg.learn.suggest import Suggestion
from paintseg.session.jobs import PredictResult
from paintseg.session.layers import (
    CLASSES_KEY,
    class_names_features,
    classes_to_metadata,
)

PLACE_SIZE_PX = 24  # the rings of the places to paint next, in image pixels


def is_output(layer: Layer) -> bool:
    """Whether the widget (or the reader, from a saved prediction) made this layer:
    prediction, preview, uncertainty, objects; not an input, not an annotation."""
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


def labels_layer(viewer, name: str, geometry: Geometry, dtype,
                 initial: np.ndarray | None = None, **kwargs) -> Labels:
    """The Labels layer ``name`` of the image's shape, created if missing or reshaped.

    A new layer starts with ``initial`` when it has that dtype (taken as is), else zeros.
    """
    layer = _find(viewer, name, Labels)
    if layer is None or layer.data.shape != geometry.shape or layer.data.dtype != dtype:
        usable = initial is not None and initial.dtype == dtype
        data = initial if usable else np.zeros(geometry.shape, dtype=dtype)
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


def _write(layer: Labels | Image, plane: tuple[int, ...] | None, values: np.ndarray,
           thumbnail: bool = True) -> None:
    """Write ``values`` into a plane (or all) of the layer; nothing if it already holds them.
    ``thumbnail=False`` leaves the layer list's thumbnail (and its repaint) for later."""
    if layer.data is values:
        return
    if plane is None:
        layer.data[...] = values
    else:
        layer.data[plane] = values
    layer.refresh(extent=False, thumbnail=thumbnail)  # same array: the extent holds


def _whole(result: PredictResult, values: np.ndarray) -> np.ndarray | None:
    """``values`` when they cover the whole image (a new layer can start with them)."""
    return values if result.plane is None else None


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
    viewer, geometry: Geometry, classes: Sequence[ClassInfo], plane: tuple[int, ...], labels,
    last: bool = True,
) -> Labels:
    """Write a live-preview plane into ``"<image> prediction preview"``; the layer list's
    thumbnail follows only the ``last`` one (each update repaints the list)."""
    layer = _find(viewer, f"{geometry.name} prediction preview", Labels)
    if layer is None or layer.data.shape != geometry.shape:
        layer = preview_layer(viewer, geometry, classes)
    _write(layer, plane, np.asarray(labels), thumbnail=last)
    return layer


def show_classes(viewer, geometry: Geometry, classes: Sequence[ClassInfo],
                 result: PredictResult) -> Labels:
    """Write the class map of a prediction into ``"<image> classes"``."""
    layer = labels_layer(viewer, f"{geometry.name} classes", geometry, result.labels.dtype,
                         initial=_whole(result, result.labels))
    apply_classes(layer, classes)
    _write(layer, result.plane, result.labels)
    return layer


def show_uncertainty(viewer, geometry: Geometry, result: PredictResult) -> Image:
    """Write the uncertainty (float32, 0 to 1) of a prediction into ``"<image> uncertainty"``."""
    name = f"{geometry.name} uncertainty"
    layer = _find(viewer, name, Image)
    if layer is not None and layer.data.shape == geometry.shape:
        _write(layer, result.plane, result.uncertainty)
        return layer
    if layer is not None:
        viewer.layers.remove(layer)
    data = _whole(result, result.uncertainty)
    layer = viewer.add_image(
        np.zeros(geometry.shape, np.float32) if data is None else data, name=name,
        scale=geometry.scale, translate=geometry.translate, colormap="magma",
        contrast_limits=(0, 1), blending="additive", visible=False,
        metadata={OUTPUT_KEY: True},
    )
    if data is None:
        _write(layer, result.plane, result.uncertainty)
    return layer


def show_objects(viewer, geometry: Geometry, result: PredictResult) -> Labels:
    """Write the objects of a prediction (only) into ``"<image> objects"``, with their table."""
    layer = labels_layer(viewer, f"{geometry.name} objects", geometry, np.int32,
                         initial=_whole(result, result.objects))
    if result.plane is not None:
        layer.data[...] = 0
    _write(layer, result.plane, result.objects)
    layer.features = result.features
    return layer


def prediction_steps(
    viewer, geometry: Geometry, classes: Sequence[ClassInfo], result: PredictResult,
    layers: dict[str, Layer | None],
) -> list[Callable[[], None]]:
    """The steps that make or update the layers of a prediction, one layer each.

    Each step stores its layer in ``layers`` (keys ``classes``, ``uncertainty``, ``objects``,
    ``names``). A single-plane result writes its plane into the class and uncertainty layers
    (other planes keep earlier predictions); the objects layers then hold that plane's objects.
    """
    makers = {
        "classes": lambda: show_classes(viewer, geometry, classes, result),
        "uncertainty": lambda: show_uncertainty(viewer, geometry, result),
        "objects": lambda: show_objects(viewer, geometry, result),
        "names": lambda: show_object_names(viewer, geometry, result.points),
    }
    return [functools.partial(_store, layers, key, make) for key, make in makers.items()]


def _store(layers: dict, key: str, make: Callable[[], Layer | None]) -> None:
    layers[key] = make()


def show_prediction(
    viewer, geometry: Geometry, classes: Sequence[ClassInfo], result: PredictResult
) -> dict[str, Layer | None]:
    """Make or update the class, uncertainty, objects and object-name layers at once."""
    layers: dict[str, Layer | None] = {}
    for step in prediction_steps(viewer, geometry, classes, result, layers):
        step()
    return layers


def show_object_names(
    viewer, geometry: Geometry, points: tuple[np.ndarray, pd.DataFrame] | None
) -> Points | None:
    """Class names as text at object centroids (``"<image> object names"``).

    ``points`` are positions and features from :func:`object_points` (``None``: no objects).
    An existing layer is updated in place: removing a layer makes napari collect garbage,
    which blocks the GUI for a few hundred milliseconds. A new layer is shown only when the
    objects have more than one class (one name on every object says nothing); hidden, its
    text is not drawn, which spares the first drawing (~50 ms per glyph set with software
    OpenGL) until the user shows it.
    """
    name = f"{geometry.name} object names"
    ndim = len(geometry.shape)
    coords, features = points if points is not None else (np.empty((0, ndim)), None)
    layer = _find(viewer, name, Points)
    if layer is not None and layer.ndim != ndim:
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        if points is None:
            return None
        return viewer.add_points(
            coords, name=name, features=features, size=1,
            scale=geometry.scale, translate=geometry.translate,
            face_color="transparent", border_width=0, metadata={OUTPUT_KEY: True},
            text={"string": "{class_name}", "color": "white", "size": 9},
            visible=features is not None and features["class_name"].nunique() > 1,
        )
    layer.scale, layer.translate = geometry.scale, geometry.translate
    layer.data = coords
    if features is not None:
        layer.features = features
    return layer


def places_layer(viewer, geometry: Geometry) -> Points:
    """The ``"<image> where to paint next"`` layer: numbered rings, each with its score and
    reason as features; made empty when missing (or of another dimensionality)."""
    name = f"{geometry.name} where to paint next"
    ndim = len(geometry.shape)
    layer = _find(viewer, name, Points)
    if layer is not None and layer.ndim != ndim:
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        layer = viewer.add_points(
            np.empty((0, ndim)), name=name,
            features=pd.DataFrame({"rank": np.zeros(0, int), "score": np.zeros(0),
                                   "reason": np.array([], str)}),
            size=PLACE_SIZE_PX * min(geometry.scale[-2:]),
            scale=geometry.scale, translate=geometry.translate, symbol="ring",
            face_color="#ffd60a", border_width=0, metadata={OUTPUT_KEY: True},
            text={"string": "{rank}", "color": "#ffd60a", "size": 12,
                  "translation": [0] * (ndim - 2) + [-PLACE_SIZE_PX, 0]},
        )
    return layer


def show_places(viewer, geometry: Geometry, suggestions: Sequence[Suggestion]) -> Points:
    """Show the places to paint next in :func:`places_layer`, best first."""
    ndim = len(geometry.shape)
    layer = places_layer(viewer, geometry)
    layer.scale, layer.translate = geometry.scale, geometry.translate
    layer.data = np.array([(*s.plane, s.y, s.x) for s in suggestions], float).reshape(-1, ndim)
    layer.features = pd.DataFrame({"rank": np.arange(1, len(suggestions) + 1),
                                   "score": [s.score for s in suggestions],
                                   "reason": [s.reason for s in suggestions]})
    return layer
