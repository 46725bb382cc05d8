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
from paintseg.io.napari_reader import image_layers
from paintseg.io.project import Project
from paintseg.learn import Segmenter
from paintseg.session.layers import classes_from_metadata
from paintseg.widgets import _outputs
from paintseg.widgets._run import report_error

AUTOSAVE_SECONDS = 3.0
"""Strokes are saved this long after the first unsaved change (and before training)."""


class ProjectSection:
    """Mixin of :class:`PaintSegWidget`: the image set, its list, moving through it, autosave.

    Needs ``viewer``, ``table_classes``, ``set_table_classes``, ``set_inputs``,
    ``annotation_layer``, ``inputs``, ``model``, ``predict`` and ``busy``, and the object
    edits' ``choose_tool``, ``_kept``, ``_edits_of`` and ``_edits_dirty``; sets ``project``
    and ``project_index``.
    """

    project: Project | None = None
    project_index: int | None = None
    _shown_layers: tuple[str, ...] = ()  # layers of the image on screen, removed on moving
    _strokes_dirty = False
    _watched: tuple | None = None  # (annotation layer, its autosave callback)

    def _build_project(self) -> QGroupBox:
        box = QGroupBox("0. Image set")
        layout = QVBoxLayout(box)
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
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(int(AUTOSAVE_SECONDS * 1000))
        return box

    def _connect_project(self) -> None:
        self.new_set_button.clicked.connect(lambda: self.new_project())
        self.open_set_button.clicked.connect(lambda: self.open_project())
        self.add_folder_button.clicked.connect(lambda: self.add_folder_to_project())
        self.add_open_button.clicked.connect(lambda: self.add_open_image())
        self.previous_button.clicked.connect(lambda: self.move_image(-1))
        self.next_button.clicked.connect(lambda: self.move_image(+1))
        self.project_list.itemActivated.connect(
            lambda item: self.show_image(self.project_list.row(item)))
        self._autosave.timeout.connect(self.save_strokes)
        for key, step in ((QKeySequence.MoveToNextPage, +1),
                          (QKeySequence.MoveToPreviousPage, -1)):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.WindowShortcut)
            shortcut.activated.connect(lambda step=step: self.move_image(step))
        self._refresh_project()

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
        self.project, self.project_index = project, None
        project.set_classes(self.table_classes(default=True))
        self._refresh_project()
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
        self.project, self.project_index = project, None
        if project.classes:
            self.set_table_classes(classes_from_metadata({"paintseg_classes":
                                                                project.classes}), emit=False)
        self.restore_training_settings(project.settings)
        if model is not None:
            self.model = model
            self._set_busy("")
            self._describe_model()
        names = [image.name for image in project.images]
        current = project.settings.get("current")
        if names:
            self.show_image(names.index(current) if current in names else 0)
        self._refresh_project()
        return project

    def add_folder_to_project(self, folder: str | None = None) -> int:
        """Add every image of a folder to the set (a new set beside it if there is none)."""
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder of images to add")
        if not folder:
            return 0
        if self.project is None and self.new_project(str(Path(folder) / "paintseg-set")) is None:
            return 0
        try:
            added, refused = self.project.add_folder(folder)
        except (PaintsegError, OSError) as error:
            report_error(error, "Adding images")
            return 0
        for sentence in refused:
            show_warning(sentence)
        if not added:
            show_info(f"No new TIFF or zarr image in {folder}.")
        self._refresh_project()
        if added and self.project_index is None:
            self.show_image(self.project.index(added[0].name))
        return len(added)

    def add_open_image(self) -> bool:
        """Add the checked image layers (and their annotation layer) to the set; the layers
        stay as they are, now as the set's image on screen."""
        if self.project is None:
            report_error(InputError("Start or open an image set first (New set…)."), "Image set")
            return False
        try:
            inputs = self.inputs()
            layers = [self.viewer.layers[name] for name in self.checked_images()]
            sources = {_source_of(layer) for layer in layers}
            path = next(iter(sources)) if len(sources) == 1 else None
            if path is not None and len(inputs.channels) == len(_channels_in(path)):
                image = self.project.add_file(path)
            else:
                image = self.project.add_array(inputs.geometry.name, inputs.channels,
                                               inputs.channel_names, inputs.geometry.scale)
        except (PaintsegError, OSError) as error:
            report_error(error, "Adding the image")
            return False
        self.save_strokes()
        self.project_index = self.project.index(image.name)
        annotation = self.annotation_layer() or self.new_annotation_layer()
        self._shown_layers = (*[layer.name for layer in layers], annotation.name)
        self._watch(annotation)
        self._strokes_dirty = True
        self.save_strokes()
        self._refresh_project()
        return True

    # -- moving through the set ------------------------------------------------------
    def move_image(self, step: int) -> bool:
        """Show the next (``step=1``) or previous (``-1``) image of the set."""
        if self.project is None or not self.project.images:
            return False
        index = 0 if self.project_index is None else self.project_index + step
        if not 0 <= index < len(self.project.images):
            return False
        return self.show_image(index)

    def show_image(self, index: int) -> bool:
        """Show image ``index`` of the set: its channels, its strokes, its prediction (made
        now, in a worker, when there is a model and nothing else runs)."""
        if self.busy and self._run.kind != "train":  # a prediction lands on its own image
            show_info("Wait for the prediction to finish (or cancel it), then move on.")
            return False
        project = self.project
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
        self.choose_tool("")
        self._remove_shown_layers()
        names = []
        for array, meta, _ in image_layers(data, str(project.path_of(image))):
            names.append(self.viewer.add_image(array, **meta).name)
        classes = self.table_classes(default=True)
        annotation = self.viewer.add_labels(strokes, name=f"{image.name} annotations",
                                            scale=data.scale)
        _outputs.apply_classes(annotation, classes)
        self._shown_layers = (*names, annotation.name)
        self.set_inputs(names, annotation.name)
        self._watch(annotation)
        self.project_index = index
        project.settings["current"] = image.name
        project.save()
        self.viewer.reset_view()
        self.viewer.layers.selection.active = annotation
        self._refresh_project()
        if self.model is not None and not self.busy:
            self.predict(whole=True)
        elif saved_prediction is not None:
            self._show_saved_prediction(saved_prediction, classes)
        return True

    def _show_saved_prediction(self, labels: np.ndarray, classes) -> None:
        geometry = self.inputs().geometry
        layer = _outputs.labels_layer(self.viewer, f"{geometry.name} classes", geometry,
                                      labels.dtype, initial=labels)
        _outputs.apply_classes(layer, classes)

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

    def current_image_name(self) -> str | None:
        """Name of the set's image on screen (None without a set)."""
        if self.project is None or self.project_index is None:
            return None
        return self.project.images[self.project_index].name

    # -- saving --------------------------------------------------------------------
    def _watch(self, annotation) -> None:
        """Autosave the strokes of ``annotation`` (and stop watching any other layer)."""
        self._unwatch()
        run = self._run  # a plain object: safe to ask once the widget is gone (PySide6)

        def changed(*_) -> None:
            if not run.closed:
                self._strokes_changed()

        annotation.events.paint.connect(changed)
        annotation.events.data.connect(changed)
        self._watched = (annotation, changed)

    def _unwatch(self) -> None:
        if self._watched is not None:
            layer, callback = self._watched
            layer.events.paint.disconnect(callback)
            layer.events.data.disconnect(callback)
            self._watched = None

    def _strokes_changed(self, *_) -> None:
        self._strokes_dirty = True
        if not self._autosave.isActive():  # at most AUTOSAVE_SECONDS after the first change
            self._autosave.start()

    def save_strokes(self) -> bool:
        """Save the strokes (and the object edits) of the image on screen now, if they
        changed; False if that failed (the user is told, and they stay on screen)."""
        self._autosave.stop()
        name = self.current_image_name()
        layer = self.strokes_layer()
        if not (self._strokes_dirty or self._edits_dirty) or name is None or layer is None:
            return True
        image = self.project.images[self.project_index]
        try:
            self.project.save_annotations(image, layer.data, tuple(layer.scale))
            if self._edits_dirty and self._edits_of == name and self._kept is not None:
                self.project.save_edits(image, self._kept, tuple(layer.scale))
        except (PaintsegError, OSError) as error:
            report_error(error, f"Saving the strokes of {name}")
            return False
        self._strokes_dirty = self._edits_dirty = False
        self.project_status.setText(f"{self.project.folder}\nstrokes of {name} saved at "
                                    f"{time.strftime('%H:%M:%S')}")
        self._refresh_project()
        return True

    def _project_trained(self, model: Segmenter) -> None:
        """After training: save the set's model and settings, show scores per image."""
        if self.project is None:
            return
        try:
            model.save(self.project.model_path)
        except OSError as error:
            report_error(error, "Saving the image set's model")
        self.project.settings.update(self.training_settings())
        self.project.save()
        self._refresh_project()

    def _project_predicted(self, labels: np.ndarray, scale, places: Sequence = ()) -> None:
        """A whole-image prediction of the set's image on screen: keep it with the set, and
        its places to paint next."""
        name = self.current_image_name()
        if name is None:
            return
        image = self.project.images[self.project_index]
        try:
            self.project.save_prediction(image, labels, scale)
            self.project.save_places(image, [asdict(place) for place in places])
        except (PaintsegError, OSError) as error:
            report_error(error, f"Saving the prediction of {name}")
        self._refresh_project()

    def _enable_project(self, kind: str) -> None:
        has_set = self.project is not None
        for button in (self.previous_button, self.next_button, self.project_list):
            button.setEnabled(has_set and kind != "predict")  # a result lands on its image

    def _refresh_project(self) -> None:
        """Redraw the image list: strokes, prediction, held-out score per image."""
        self.project_list.clear()
        project = self.project
        for button in (self.add_folder_button, self.add_open_button, self.previous_button,
                       self.next_button):
            button.setEnabled(project is not None)
        if project is None:
            return
        scores = self.scores_by_image or {}
        for image in project.images:
            parts = [image.name, f"{image.strokes} strokes"]
            if image.predicted:
                parts.append("predicted")
            if image.name in scores:
                parts.append(f"held-out {scores[image.name]:.2f}")
            self.project_list.addItem(" · ".join(parts))
        if self.project_index is not None:
            self.project_list.setCurrentRow(self.project_index)
        if self.project_status.text().startswith("No image set"):
            self.project_status.setText(str(project.folder))


def _source_of(layer: Image) -> str | None:
    """The file an image layer was read from, if any."""
    return layer.metadata.get("paintseg_source") or layer.source.path


def _channels_in(path: str) -> list:
    from paintseg.io.images import read_image

    return read_image(path).channels
