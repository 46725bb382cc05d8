"""Dock section "1. Image and classes": input channels, annotation layer, class table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from napari.layers import Image, Labels
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from paintseg.classes import ClassInfo, default_classes
from paintseg.errors import PaintsegError
from paintseg.session.dock import DockState
from paintseg.session.layers import (
    CLASSES_KEY,
    check_channels,
    classes_from_metadata,
    plane_at,
    rgb_channels,
)
from paintseg.widgets import _outputs
from paintseg.widgets._run import report_error
from paintseg.widgets.class_table import ClassTable


@dataclass
class Inputs:
    """The image chosen as input: its channels (arrays) and geometry."""

    channel_names: list[str]
    channels: list[Any]
    geometry: _outputs.Geometry


class InputSection(QGroupBox):
    """Which layers are the image, the strokes, the classes; the plane on screen.

    The other sections read the image and the classes through its public methods.
    """

    def __init__(self, viewer, state: DockState) -> None:
        super().__init__("1. Image and classes")
        self.viewer, self.state = viewer, state
        form = QVBoxLayout(self)
        self.image_list = QListWidget()
        self.image_list.setToolTip("Check one multichannel layer or several layers as channels")
        self.image_list.setMaximumHeight(60)
        self.annotation_combo = QComboBox()
        self.annotation_combo.setToolTip("Labels layer of painted strokes (0 = not annotated)")
        self.new_annotation_button = QPushButton("New")
        self.new_annotation_button.setToolTip("New annotation layer for the checked image")
        row = QHBoxLayout()
        row.addWidget(QLabel("Annotations:"))
        row.addWidget(self.annotation_combo, 1)
        row.addWidget(self.new_annotation_button)
        self.class_table = ClassTable()
        form.addWidget(QLabel("Image layers (channels):"))
        form.addWidget(self.image_list)
        form.addLayout(row)
        form.addWidget(self.class_table)
        self._connect()
        state.busy_changed.connect(self._enable)
        self._enable(state.busy)
        self.refresh_layers()

    def table_classes(self, default: bool = False) -> list[ClassInfo]:
        """The class table as the user set it (with ``default``: the default table when it is
        empty); the other sections read and set classes through these two methods."""
        return self.class_table.classes() or (default_classes() if default else [])

    def set_table_classes(self, classes: list[ClassInfo], emit: bool = True) -> None:
        self.class_table.set_classes(classes, emit=emit)

    def _enable(self, kind: str) -> None:
        self.new_annotation_button.setEnabled(not kind)

    def _connect(self) -> None:
        layers = self.viewer.layers
        for event in (layers.events.inserted, layers.events.removed, layers.events.moved):
            event.connect(self.refresh_layers)
        self.viewer.dims.events.current_step.connect(self._on_view_moved)
        self.image_list.itemChanged.connect(self.update_plane)
        self.annotation_combo.currentTextChanged.connect(self._adopt_annotations)
        self.new_annotation_button.clicked.connect(self.new_annotation_layer)
        self.class_table.classes_changed.connect(self._on_classes_changed)
        self.class_table.class_picked.connect(self._on_class_picked)

    def disconnect_viewer(self) -> None:
        """Stop following the viewer (the dock is going away): older napari keeps calling a
        deleted widget's methods otherwise."""
        layers = self.viewer.layers
        for event in (layers.events.inserted, layers.events.removed, layers.events.moved):
            event.disconnect(self.refresh_layers)
        self.viewer.dims.events.current_step.disconnect(self._on_view_moved)
        for layer in layers:
            layer.events.name.disconnect(self.refresh_layers)

    def refresh_layers(self, event=None) -> None:
        """Keep the image list and the annotation choice in step with the viewer."""
        layers = [layer for layer in self.viewer.layers if not _outputs.is_output(layer)]
        self._refresh_images([layer for layer in layers if isinstance(layer, Image)], event)
        self._refresh_annotations([layer.name for layer in layers if isinstance(layer, Labels)])
        self.update_plane()

    def _refresh_images(self, images: list[Image], event) -> None:
        """List the image layers; keep the checks, check new layers shaped like the input."""
        checked = set(self.checked_images())
        first = next((layer for layer in images if layer.name in checked), None)
        self.image_list.blockSignals(True)
        self.image_list.clear()
        for layer in images:
            layer.events.name.connect(self.refresh_layers)  # skipped when connected
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            new = event is not None and getattr(event, "value", None) is layer
            take = (
                layer.name in checked
                or (event is None and not checked)  # at start: every image is a channel
                or (new and (first is None or layer.data.shape == first.data.shape))
            )
            item.setCheckState(Qt.Checked if take else Qt.Unchecked)
            self.image_list.addItem(item)
        self.image_list.blockSignals(False)

    def _refresh_annotations(self, names: list[str]) -> None:
        """List the Labels layers; keep the choice, else prefer one with a class table."""
        current = self.annotation_combo.currentText()
        tagged = sorted(
            (name for name in names if self.viewer.layers[name].metadata.get(CLASSES_KEY)),
            key=lambda name: "annotation" not in name.lower(),
        )
        self.annotation_combo.blockSignals(True)
        self.annotation_combo.clear()
        self.annotation_combo.addItems(names)
        choice = current if current in names else (tagged[0] if tagged else "")
        self.annotation_combo.setCurrentText(choice)
        self.annotation_combo.blockSignals(False)
        if self.annotation_combo.currentText() != current:
            self._adopt_annotations(self.annotation_combo.currentText())

    def checked_images(self) -> list[str]:
        """Names of the image layers checked as input channels, in list order."""
        items = (self.image_list.item(i) for i in range(self.image_list.count()))
        return [item.text() for item in items if item.checkState() == Qt.Checked]

    def set_inputs(self, images: list[str], annotations: str | None = None) -> None:
        """Check exactly these image layers as channels (and pick the annotation layer)."""
        for i in range(self.image_list.count()):
            item = self.image_list.item(i)
            item.setCheckState(Qt.Checked if item.text() in images else Qt.Unchecked)
        if annotations is not None:
            self.annotation_combo.setCurrentText(annotations)

    def inputs(self) -> Inputs:
        """The checked image layers as channel arrays (an RGB layer gives 3 channels).

        Raises
        ------
        InputError
            When nothing is checked or the shapes differ.
        """
        names, channels, shapes = [], [], []
        layers = [self.viewer.layers[name] for name in self.checked_images()]
        for layer in layers:
            data = layer.data[0] if layer.multiscale else layer.data
            parts = rgb_channels(data) if layer.rgb else [data]
            suffixes = [" R", " G", " B"] if layer.rgb else [""]
            for part, suffix in zip(parts, suffixes):
                names.append(layer.name + suffix)
                channels.append(part)
                shapes.append(tuple(part.shape))
        shape = check_channels(names, shapes)
        return Inputs(names, channels, _outputs.Geometry.of(layers[0], shape))

    def annotation_layer(self) -> Labels | None:
        """The chosen annotation layer, if any."""
        name = self.annotation_combo.currentText()
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        return layer if isinstance(layer, Labels) else None

    def new_annotation_layer(self) -> Labels | None:
        """Make an empty annotation layer for the checked image and choose it."""
        try:
            geometry = self.inputs().geometry
        except PaintsegError as error:
            report_error(error, "New annotation layer")
            return None
        classes = self.class_table.classes() or default_classes()
        layer = _outputs.new_annotation_layer(self.viewer, geometry, classes)
        self.annotation_combo.setCurrentText(layer.name)
        return layer

    def _adopt_annotations(self, name: str) -> None:
        """Bind the class table to the chosen annotation layer (its own table wins)."""
        layer = self.annotation_layer()
        if layer is None:
            return
        stored = classes_from_metadata(layer.metadata)
        classes = stored or self.class_table.classes() or default_classes()
        self.class_table.set_classes(classes, emit=False)
        _outputs.apply_classes(layer, classes)

    def _on_classes_changed(self, classes: list[ClassInfo]) -> None:
        layer = self.annotation_layer()
        if layer is not None:
            _outputs.apply_classes(layer, classes)
        if self.state.project is not None:
            self.state.project.set_classes(classes)

    def _on_class_picked(self, label: int) -> None:
        layer = self.annotation_layer()
        if layer is None:
            return
        self.viewer.layers.selection.active = layer
        layer.selected_label = label
        layer.mode = "paint"

    def _on_view_moved(self, *_: Any) -> None:
        """The view moved to another plane: note when (live previews wait), remember it."""
        self.state.moved_view()
        self.update_plane()

    def update_plane(self, *_: Any) -> None:
        """Remember the plane on screen for the live preview (GUI thread)."""
        plane, index = self._screen_plane(), self._preview_index()
        self.state.plane.value = None if plane is None or index is None else (index, plane)

    def _screen_plane(self) -> tuple[int, ...] | None:
        """Plane index of the checked image on screen; None when no image is checked."""
        names = self.checked_images()
        if not names or names[0] not in self.viewer.layers:
            return None
        layer = self.viewer.layers[names[0]]
        shape = tuple(layer.data.shape[:-1] if layer.rgb else layer.data.shape)
        if layer.multiscale:
            shape = tuple(layer.data[0].shape[: layer.ndim])
        return plane_at(layer.world_to_data(self.viewer.dims.point), shape)

    def _preview_index(self) -> int | None:
        """Index of the image on screen among the images being trained on (None: not one)."""
        name = self.state.current_image_name()
        if name is None:
            return 0
        names = self.state.training_names or []
        return names.index(name) if name in names else None

    def visible_plane(self) -> tuple[int, ...]:
        """The plane index of the checked image on screen (``()`` for a 2D image)."""
        return self._screen_plane() or ()
