"""Dock section "0. Image set": click through a folder of images, strokes saved by themselves.

The set itself is :class:`paintseg.io.project.Project` (plain files the CLI reads too); this
section only shows one image of it at a time and saves what is painted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from napari.layers import Image
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QKeySequence, QShortcut
from qtpy.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
)

from paintseg.errors import InputError, PaintsegError
from paintseg.io.images import read_image
from paintseg.io.napari_reader import image_layers
from paintseg.io.project import Project
from paintseg.learn import Segmenter
from paintseg.session.dock import DockState
from paintseg.session.layers import classes_from_metadata
from paintseg.widgets import _outputs
from paintseg.widgets._input_section import InputSection
from paintseg.widgets._run import RunState, report_error

AUTOSAVE_SECONDS = 3.0
"""Strokes are saved this long after the first unsaved change (and before training)."""


class ProjectSection(QGroupBox):
    """The image set, its list, moving through it, autosave.

    Sets the state's ``project`` and ``project_index``; reads and sets the image and the
    classes through ``input``, asks ``runs`` whether it is busy. Says which image it shows
    and leaves by the state's events; saves what the others tell it of (strokes, edits, a
    trained model, a prediction).
    """

    def __init__(self, viewer, state: DockState, input: InputSection, runs: RunState) -> None:
        super().__init__("0. Image set")
        self.viewer, self.state, self.input, self.runs = viewer, state, input, runs
        self._shown_layers: tuple[str, ...] = ()  # the image's layers, removed on moving
        self._strokes_dirty = False
        self._watched: tuple | None = None  # (annotation layer, its autosave callback)
        layout = QVBoxLayout(self)
        self.new_set_button = QPushButton("New set…")
        self.new_set_button.setToolTip("Choose a folder where the set keeps its strokes, "
                                       "predictions and model (your images are never changed)")
        self.open_set_button = QPushButton("Open set…")
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.setToolTip("Add every TIFF or zarr image of a folder")
        self.add_open_button = QPushButton("Add open image")
        self.add_open_button.setToolTip("Add the checked image layers and their annotations")
        self.previous_button = QPushButton("◀ Previous")
        self.previous_button.setToolTip("Previous image of the set (Page Up)")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("Next image of the set (Page Down)")
        grid = QGridLayout()
        for i, button in enumerate((self.new_set_button, self.open_set_button,
                                    self.add_folder_button, self.add_open_button)):
            grid.addWidget(button, i // 2, i % 2)
        self.project_list = QListWidget()
        self.project_list.setMaximumHeight(120)
        self.project_status = QLabel("No image set: strokes are not saved by themselves.")
        self.project_status.setWordWrap(True)
        layout.addLayout(grid)
        layout.addWidget(self.project_list)
        navigation = QGridLayout()
        navigation.addWidget(self.previous_button, 0, 0)
        navigation.addWidget(self.next_button, 0, 1)
        layout.addLayout(navigation)
        layout.addWidget(self.project_status)
        self.autosave = QTimer(self)
        self.autosave.setSingleShot(True)
        self.autosave.setInterval(int(AUTOSAVE_SECONDS * 1000))
        self._connect()
        self._enable(state.busy)

    def _connect(self) -> None:
        self.new_set_button.clicked.connect(lambda: self.new_project())
        self.open_set_button.clicked.connect(lambda: self.open_project())
        self.add_folder_button.clicked.connect(lambda: self.add_folder_to_project())
        self.add_open_button.clicked.connect(lambda: self.add_open_image())
        self.previous_button.clicked.connect(lambda: self.move_image(-1))
        self.next_button.clicked.connect(lambda: self.move_image(+1))
        self.project_list.itemActivated.connect(
            lambda item: self.show_image(self.project_list.row(item)))
        self.autosave.timeout.connect(self.save_strokes)
        for key, step in ((QKeySequence.MoveToNextPage, +1),
                          (QKeySequence.MoveToPreviousPage, -1)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.WindowShortcut)
            shortcut.activated.connect(lambda step=step: self.move_image(step))
        self.state.busy_changed.connect(self._enable)
        self.state.edited.connect(self._strokes_changed)
        self.state.trained.connect(self._trained)
        self.state.image_predicted.connect(self._predicted)
        self.refresh()

    # -- opening and filling a set --------------------------------------------------
    def new_project(self, folder: str | None = None) -> Project | None:
        """Start an image set saved in ``folder`` (a dialog when None); an existing set
        there is opened instead."""
        folder = folder or QFileDialog.getExistingDirectory(
            self, "Folder for the image set (strokes, predictions, model)")
        if not folder:
            return None
        try:
            project = Project.create(folder)
        except (PaintsegError, OSError) as error:
            report_error(error, "Image set")
            return None
        if project.images:
            return self.open_project(folder)
        self.save_strokes()
        self.state.project = project
        project.set_classes(self.input.table_classes(default=True))
        self.refresh()
        return project

    def open_project(self, folder: str | None = None) -> Project | None:
        """Open an image set: its class table, its model and the image last shown."""
        folder = folder or QFileDialog.getExistingDirectory(self, "Image set folder")
        if not folder:
            return None
        try:
            project = Project.open(folder)
            model = Segmenter.load(project.model_path, device="auto") \
                if project.model_path.exists() else None
        except (PaintsegError, OSError) as error:
            report_error(error, "Opening the image set")
            return None
        self.save_strokes()
        self.state.project = project  # the training settings follow
        if project.classes:
            self.input.set_table_classes(classes_from_metadata({"paintseg_classes":
                                                                project.classes}), emit=False)
        if model is not None:
            self.state.model = model
        names = [image.name for image in project.images]
        current = project.settings.get("current")
        if names:
            self.show_image(names.index(current) if current in names else 0)
        self.refresh()
        return project

    def add_folder_to_project(self, folder: str | None = None) -> int:
        """Add every image of a folder to the set (a new set beside it if there is none)."""
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder of images to add")
        if not folder:
            return 0
        if self.state.project is None and \
                self.new_project(str(Path(folder) / "paintseg-set")) is None:
            return 0
        project = self.state.project
        try:
            added, refused = project.add_folder(folder)
        except (PaintsegError, OSError) as error:
            report_error(error, "Adding images")
            return 0
        for sentence in refused:
            show_warning(sentence)
        if not added:
            show_info(f"No new TIFF or zarr image in {folder}.")
        self.refresh()
        if added and self.state.project_index is None:
            self.show_image(project.index(added[0].name))
        return len(added)

    def add_open_image(self) -> bool:
        """Add the checked image layers (and their annotation layer) to the set; the layers
        stay as they are, now as the set's image on screen."""
        project = self.state.project
        if project is None:
            report_error(InputError("Start or open an image set first (New set…)."), "Image set")
            return False
        try:
            inputs = self.input.inputs()
            layers = [self.viewer.layers[name] for name in self.input.checked_images()]
            sources = {_source_of(layer) for layer in layers}
            path = next(iter(sources)) if len(sources) == 1 else None
            if path is not None and len(inputs.channels) == len(_channels_in(path)):
                image = project.add_file(path)
            else:
                image = project.add_array(inputs.geometry.name, inputs.channels,
                                          inputs.channel_names, inputs.geometry.scale)
        except (PaintsegError, OSError) as error:
            report_error(error, "Adding the image")
            return False
        self.save_strokes()
        self.state.project_index = project.index(image.name)
        annotation = self.input.annotation_layer() or self.input.new_annotation_layer()
        self._shown_layers = (*[layer.name for layer in layers], annotation.name)
        self._watch(annotation)
        self._strokes_dirty = True
        self.save_strokes()
        self.refresh()
        return True

    # -- moving through the set ------------------------------------------------------
    def move_image(self, step: int) -> bool:
        """Show the next (``step=1``) or previous (``-1``) image of the set."""
        project, shown = self.state.project, self.state.project_index
        if project is None or not project.images:
            return False
        index = 0 if shown is None else shown + step
        if not 0 <= index < len(project.images):
            return False
        return self.show_image(index)

    def show_image(self, index: int) -> bool:
        """Show image ``index`` of the set: its channels, its strokes, its prediction (made
        now, in a worker, when there is a model and nothing else runs)."""
        if self.runs.busy and self.runs.kind != "train":  # a prediction lands on its image
            show_info("Wait for the prediction to finish (or cancel it), then move on.")
            return False
        project = self.state.project
        image = project.images[index]
        try:
            data = project.read(image)
            shape = tuple(data.channels[0].shape)
            strokes = project.load_annotations(image, shape)
            saved_prediction = project.load_prediction(image, shape)
        except (PaintsegError, OSError) as error:
            report_error(error, f"Opening {image.name}")
            return False
        if not self.save_strokes():
            return False  # the strokes on screen could not be saved: stay with them
        self.state.leaving_image.emit()
        self._remove_shown_layers()
        names = []
        for array, meta, _ in image_layers(data, str(project.path_of(image))):
            names.append(self.viewer.add_image(array, **meta).name)
        classes = self.input.table_classes(default=True)
        annotation = self.viewer.add_labels(strokes, name=f"{image.name} annotations",
                                            scale=data.scale)
        _outputs.apply_classes(annotation, classes)
        self._shown_layers = (*names, annotation.name)
        self.input.set_inputs(names, annotation.name)
        self._watch(annotation)
        self.state.project_index = index
        project.settings["current"] = image.name
        project.save()
        self.viewer.reset_view()
        self.viewer.layers.selection.active = annotation
        self.refresh()
        self.state.image_shown.emit(saved_prediction)  # predicted now, or the saved one shown
        return True

    def _remove_shown_layers(self) -> None:
        """Remove the image on screen and the layers made from it (all of it is saved).

        In one batch: napari collects garbage after each removal (~0.25 s), once per batch.
        """
        self._unwatch()
        layers = self.viewer.layers
        with getattr(layers, "batched_update", contextlib.nullcontext)():
            for layer in list(layers):
                if layer.name in self._shown_layers or _outputs.is_output(layer):
                    layers.remove(layer)
        self._shown_layers = ()

    def strokes_layer(self):
        """The annotation layer of the set's image on screen (the one autosaved), even when
        another Labels layer is chosen in the dock; None without a set."""
        return self._watched[0] if self._watched is not None else None

    # -- saving --------------------------------------------------------------------
    def _watch(self, annotation) -> None:
        """Autosave the strokes of ``annotation`` (and stop watching any other layer)."""
        self._unwatch()
        runs = self.runs  # a plain object: safe to ask once the widget is gone (PySide6)

        def changed(*_) -> None:
            if not runs.closed:
                self._strokes_changed()

        annotation.events.paint.connect(changed)
        annotation.events.data.connect(changed)
        self._watched = (annotation, changed)

    def stop_autosave(self) -> None:
        """Save the strokes on screen now and stop watching them (the dock closes)."""
        self.save_strokes()
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watched is not None:
            layer, callback = self._watched
            layer.events.paint.disconnect(callback)
            layer.events.data.disconnect(callback)
            self._watched = None

    def _strokes_changed(self, *_) -> None:
        self._strokes_dirty = True
        if not self.autosave.isActive():  # at most AUTOSAVE_SECONDS after the first change
            self.autosave.start()

    def save_strokes(self) -> bool:
        """Save the strokes (and the object edits) of the image on screen now, if they
        changed; False if that failed (the user is told, and they stay on screen)."""
        self.autosave.stop()
        state, project = self.state, self.state.project
        name, image = state.current_image_name(), state.current_image()
        layer = self.strokes_layer()
        if not (self._strokes_dirty or state.edits_dirty) or name is None or layer is None:
            return True
        try:
            project.save_annotations(image, layer.data, tuple(layer.scale))
            if state.edits_dirty and state.edits_of == name and state.kept is not None:
                project.save_edits(image, state.kept, tuple(layer.scale))
        except (PaintsegError, OSError) as error:
            report_error(error, f"Saving the strokes of {name}")
            return False
        self._strokes_dirty = state.edits_dirty = False
        self.project_status.setText(f"{project.folder}\nstrokes of {name} saved at "
                                    f"{time.strftime('%H:%M:%S')}")
        self.refresh()
        return True

    def _trained(self, model: Segmenter, settings: dict) -> None:
        """After training: save the set's model and settings, show scores per image."""
        project = self.state.project
        if project is None:
            return
        try:
            model.save(project.model_path)
        except OSError as error:
            report_error(error, "Saving the image set's model")
        project.settings.update(settings)
        project.save()
        self.refresh()

    def _predicted(self, labels: np.ndarray, scale, places: Sequence = ()) -> None:
        """A whole-image prediction of the set's image on screen: keep it with the set, and
        its places to paint next."""
        name, image = self.state.current_image_name(), self.state.current_image()
        if name is None:
            return
        try:
            self.state.project.save_prediction(image, labels, scale)
            self.state.project.save_places(image, [asdict(place) for place in places])
        except (PaintsegError, OSError) as error:
            report_error(error, f"Saving the prediction of {name}")
        self.refresh()

    def _enable(self, kind: str) -> None:
        has_set = self.state.project is not None
        for button in (self.previous_button, self.next_button, self.project_list):
            button.setEnabled(has_set and kind != "predict")  # a result lands on its image

    def refresh(self) -> None:
        """Redraw the image list: strokes, prediction, held-out score per image."""
        self.project_list.clear()
        project = self.state.project
        for button in (self.add_folder_button, self.add_open_button, self.previous_button,
                       self.next_button):
            button.setEnabled(project is not None)
        if project is None:
            return
        scores = self.state.scores_by_image or {}
        for image in project.images:
            parts = [image.name, f"{image.strokes} strokes"]
            if image.predicted:
                parts.append("predicted")
            if image.name in scores:
                parts.append(f"held-out {scores[image.name]:.2f}")
            self.project_list.addItem(" · ".join(parts))
        if self.state.project_index is not None:
            self.project_list.setCurrentRow(self.state.project_index)
        if self.project_status.text().startswith("No image set"):
            self.project_status.setText(str(project.folder))


def _source_of(layer: Image) -> str | None:
    """The file an image layer was read from, if any."""
    return layer.metadata.get("paintseg_source") or layer.source.path


def _channels_in(path: str) -> list:
    return read_image(path).channels
