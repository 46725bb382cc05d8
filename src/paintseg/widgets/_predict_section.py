"""Dock section "3. Predict and correct": predict, go to the places to paint next, accept
into annotations, export objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from paintseg.errors import InputError, PaintsegError
from paintseg.io.labels import atomic_file
from paintseg.learn.suggest import Suggestion
from paintseg.session import jobs
from paintseg.session.dock import DockState
from paintseg.session.layers import merge_into_annotations
from paintseg.widgets import _outputs
from paintseg.widgets._edit_section import EditSection
from paintseg.widgets._input_section import Inputs, InputSection
from paintseg.widgets._progress import set_progress
from paintseg.widgets._project_section import ProjectSection
from paintseg.widgets._run import RunState, report_error

FOLDER_FORMATS = {"as TIFF": ".tif", "as OME-Zarr": ".ome.zarr"}  # folder results: suffix
CLOSE_UP = 4  # going to a place zooms in to at least this many times the whole-image view


def _key(item: tuple) -> tuple:
    """What identifies a listed place across re-listings: its image, plane and pixel."""
    image, place = item
    return image, tuple(place.plane), place.y, place.x


class PredictSection(QGroupBox):
    """Predict the slice, the image or a folder; go to the places to paint next; accept.

    Reads the image through ``input``, the kept object edits through ``edits``, and moves to
    another image of the set through ``image_set``. Sets the state's ``objects_table``;
    lists the places to paint next that the state's ``suggested`` event brings, and
    predicts (or shows the saved prediction of) each image of the set shown.
    """

    def __init__(self, viewer, state: DockState, input: InputSection,
                 image_set: ProjectSection, edits: EditSection, runs: RunState) -> None:
        super().__init__("3. Predict and correct")
        self.viewer, self.state, self.input, self.image_set, self.edits, self.runs = \
            viewer, state, input, image_set, edits, runs
        self.suggestions: tuple = ()  # the places to paint next on the image on screen
        self.places: tuple = ()  # (image set index or None, Suggestion): what Next goes through
        self.place_index = -1  # the place shown last
        self._place_key = None
        self._places_geometry: _outputs.Geometry | None = None
        layout = QVBoxLayout(self)
        self.predict_slice_button = QPushButton("Slice")
        self.predict_slice_button.setToolTip("Predict the slice on screen")
        self.predict_stack_button = QPushButton("Whole image")
        self.predict_folder_button = QPushButton("Folder…")
        self.predict_folder_button.setToolTip("Predict every image of a folder into files")
        self.folder_format = QComboBox()
        self.folder_format.addItems(list(FOLDER_FORMATS))
        self.folder_format.setToolTip(
            "TIFF: a class map and its uncertainty per image. OME-Zarr: one store per image "
            "with the class map (classes and colours), the probabilities and the uncertainty, "
            "as a pyramid that napari opens at once")
        self.cancel_button = QPushButton("Cancel")
        row = QHBoxLayout()
        for button in (self.predict_slice_button, self.predict_stack_button,
                       self.predict_folder_button, self.folder_format, self.cancel_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.cluster_address = QLineEdit()
        self.cluster_address.setPlaceholderText("Folder… on dask: scheduler (empty: here)")
        self.cluster_address.setToolTip(
            "e.g. tcp://10.0.0.5:8786. The cluster's workers must see the folders; each "
            "image is predicted by a worker and written there (docs/distributed.md).")
        layout.addWidget(self.cluster_address)
        self.predict_progress = QProgressBar()
        self.predict_progress.setTextVisible(False)
        layout.addWidget(self.predict_progress)
        self.previous_place_button = QPushButton("◀ Previous place")
        self.next_place_button = QPushButton("Next place to paint ▶")
        self.next_place_button.setToolTip(
            "Go to where the last prediction is least sure, away from your strokes: "
            "a stroke there likely helps most")
        row = QHBoxLayout()
        row.addWidget(self.previous_place_button)
        row.addWidget(self.next_place_button)
        layout.addLayout(row)
        self.place_label = QLabel("")
        self.place_label.setWordWrap(True)
        layout.addWidget(self.place_label)
        self.accept_button = QPushButton("Accept prediction of this slice into annotations")
        self.accept_button.setToolTip(
            "Copy the predicted classes of the slice on screen into its unannotated pixels; "
            "your strokes are kept. Fix mistakes, then press Continue."
        )
        self.export_button = QPushButton("Export object table (CSV)…")
        layout.addWidget(self.accept_button)
        layout.addWidget(self.export_button)
        self._connect()
        self._enable(state.busy)

    def _enable(self, kind: str) -> None:
        for button in (self.predict_slice_button, self.predict_stack_button,
                       self.predict_folder_button, self.accept_button, self.export_button):
            button.setEnabled(not kind)
        self.cancel_button.setEnabled(kind == "predict")

    def _connect(self) -> None:
        self.cancel_button.clicked.connect(lambda: self.runs.stop.set())
        self.predict_slice_button.clicked.connect(lambda: self.predict(whole=False))
        self.predict_stack_button.clicked.connect(lambda: self.predict(whole=True))
        self.predict_folder_button.clicked.connect(lambda: self.predict_folder())
        self.accept_button.clicked.connect(self.accept_prediction)
        self.next_place_button.clicked.connect(lambda: self.go_to_place(1))
        self.previous_place_button.clicked.connect(lambda: self.go_to_place(-1))
        self.export_button.clicked.connect(lambda: self.export_objects())
        self.state.busy_changed.connect(self._enable)
        self.state.suggested.connect(self._list_places)
        self.state.image_shown.connect(self._on_image_shown)

    def _predict_inputs(self) -> Inputs:
        model = self.state.model
        if model is None:
            raise InputError("Train or load a model first.")
        inputs = self.input.inputs()
        if len(inputs.channels) != len(model.config.channels):
            raise InputError(
                f"The model needs {len(model.config.channels)} channel(s) "
                f"({', '.join(model.config.channels)}) but {len(inputs.channels)} "
                "are checked."
            )
        return inputs

    def predict(self, whole: bool = False) -> bool:
        """Predict the slice on screen (or the whole image) into output layers."""
        if self.runs.busy:
            return False
        try:
            inputs = self._predict_inputs()
        except PaintsegError as error:
            report_error(error, "Prediction")
            return False
        plane = None if whole else self.input.visible_plane()
        layer = self.input.annotation_layer()
        strokes = layer.data if layer is not None and \
            tuple(layer.data.shape) == inputs.geometry.shape else None
        kept = self.edits.kept_map(create=False)  # read-only while it runs: edits wait for it
        self.predict_progress.setRange(0, 0)
        self.runs.start("predict", jobs.predict_job, self.state.model, inputs.channels, plane,
                        on_yielded=self._on_predict_event,
                        on_returned=lambda result: self._on_predicted(inputs.geometry, result),
                        threads=jobs.gui_threads(), strokes=strokes,
                        spacing=inputs.geometry.scale,
                        kept=kept if kept is not None and kept.any() else None)
        return True

    def _on_image_shown(self, saved_prediction: np.ndarray | None) -> None:
        """An image of the set is on screen: predict it with the model, else show the
        prediction it kept."""
        if self.state.model is not None and not self.runs.busy:
            self.predict(whole=True)
        elif saved_prediction is not None:
            geometry = self.input.inputs().geometry
            layer = _outputs.labels_layer(self.viewer, f"{geometry.name} classes", geometry,
                                          saved_prediction.dtype, initial=saved_prediction)
            _outputs.apply_classes(layer, self.input.table_classes(default=True))

    def _on_predict_event(self, event) -> None:
        self.predict_progress.setRange(0, max(1, event.total))
        set_progress(self.predict_progress, event.done)

    def _on_predicted(self, geometry: _outputs.Geometry, result: jobs.PredictResult) -> None:
        """Make the output layers, one per event-loop turn (the widget stays busy meanwhile)."""
        if result is None:
            show_info("Prediction cancelled.")
            return
        layers: dict = {}
        steps = _outputs.prediction_steps(self.viewer, geometry,
                                          self.state.model.config.classes, result, layers)
        steps.append(lambda: setattr(self.state, "objects_table", layers["objects"].features))
        steps.append(self.edits.predicted)
        if result.plane is None:  # a whole image: an image set keeps it, and its places
            steps.append(lambda: self.state.image_predicted.emit(
                result.labels, geometry.scale, result.suggestions))
        steps.append(lambda: self._list_places(result.suggestions, geometry))
        self.runs.run_steps(steps)

    def _list_places(self, suggestions: list, geometry: _outputs.Geometry) -> None:
        """Show the places to paint next (after a prediction or a training round) and list
        them for Next / Previous, best first: in an image set, those of every image (each
        from its last prediction; this image's from now). Next goes on from the place shown
        last when it is still listed, else from the first."""
        _outputs.show_places(self.viewer, geometry, suggestions)
        self.suggestions, self._places_geometry = tuple(suggestions), geometry
        project = self.state.project
        here = self.state.project_index if project is not None else None
        places = [(here, place) for place in suggestions]
        if project is not None:
            places += [(i, Suggestion(**{**p, "plane": tuple(p["plane"])}))
                       for i, p in project.places() if i != here]
        self.places = tuple(sorted(places, key=lambda item: -item[1].score))
        keys = [_key(item) for item in self.places]
        self.place_index = keys.index(self._place_key) if self._place_key in keys else -1
        images = len({i for i, _ in self.places})
        spread = f" on {images} images" if images > 1 else ""
        self.place_label.setText(
            self._place_text() if self.place_index >= 0 else
            f"{len(self.places)} places to paint next{spread}: press Next." if self.places
            else "No unsure place left away from your strokes.")

    def _place_text(self) -> str:
        """The place shown last: its rank, its image in a set, and why it was chosen."""
        image, place = self.places[self.place_index]
        where = f" ({self.state.project.images[image].name})" if image is not None else ""
        return f"{self.place_index + 1} of {len(self.places)}{where}: {place.reason}"

    def go_to_place(self, step: int = 1) -> bool:
        """Centre the view on the next (``step`` 1) or previous (-1) place to paint, on its
        slice, close enough to paint; its reason goes under the buttons."""
        if not self.places:
            report_error(InputError("Predict first: the places to paint next come with a "
                                    "prediction."), "Where to paint next")
            return False
        n = len(self.places)
        index = (self.place_index + step) % n if self.place_index >= 0 \
            else (0 if step > 0 else n - 1)  # the first press: the first, or the last
        image, place = self.places[index]
        if image is not None and image != self.state.project_index and \
                not self.image_set.show_image(image):
            return False  # the image set's other image could not be shown now
        self.place_index, self._place_key = index, _key(self.places[index])
        geometry = self.input.inputs().geometry if image is not None else self._places_geometry
        world = np.add(np.multiply((*place.plane, place.y, place.x), geometry.scale),
                       geometry.translate)
        first_axis = self.viewer.dims.ndim - len(world)
        for axis, value in enumerate(world[:-2]):
            self.viewer.dims.set_point(first_axis + axis, value)
        camera = self.viewer.camera
        zoom = max(camera.zoom, CLOSE_UP * self._whole_image_zoom())
        camera.center, camera.zoom = tuple(world[-2:]), zoom
        self.place_label.setText(self._place_text())
        return True

    def _whole_image_zoom(self) -> float:
        """The zoom that shows the whole image (napari's home view), the camera unchanged."""
        camera = self.viewer.camera
        center, zoom = camera.center, camera.zoom
        self.viewer.reset_view()
        whole = camera.zoom
        camera.center, camera.zoom = center, zoom
        return whole

    def predict_folder(self, folder: str | None = None, out_dir: str | None = None) -> bool:
        """Predict every image in ``folder`` into class maps in ``out_dir`` (dialogs if None)."""
        if self.runs.busy:
            return False
        model = self.state.model
        if model is None:
            report_error(InputError("Train or load a model first."), "Prediction")
            return False
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder of images to predict")
        if not folder:
            return False
        out_dir = out_dir or QFileDialog.getExistingDirectory(self, "Folder for the results")
        if not out_dir:
            return False
        files = jobs.image_files(folder)
        if not files:
            report_error(InputError(f"No TIFF or zarr images in {folder}."), "Prediction")
            return False
        if Path(folder).resolve() == Path(out_dir).resolve():
            report_error(InputError("Choose another folder for the results: they would "
                                    "write over the images."), "Prediction")
            return False
        suffix = FOLDER_FORMATS[self.folder_format.currentText()]
        address = self.cluster_address.text().strip()
        self.predict_progress.setRange(0, len(files))
        if address:
            self.runs.start("predict", jobs.cluster_folder_job, model, folder, out_dir,
                            address=address, suffix=suffix, on_yielded=self._on_predict_event,
                            on_returned=lambda report: (show_warning if report.failed else
                                                        show_info)(report.summary()))
            return True
        self.runs.start("predict", jobs.folder_job, model, files, out_dir,
                        on_yielded=self._on_predict_event,
                        on_returned=lambda written: show_info(
                            f"Wrote {len(written)} of {len(files)} results to {out_dir}."),
                        threads=jobs.gui_threads(), suffix=suffix)
        return True

    def accept_prediction(self) -> int:
        """Copy the predicted classes of the slice on screen into its unannotated pixels.

        Painted strokes are kept; the change can be undone in the annotation layer.
        Returns the number of pixels added.
        """
        try:
            layer = self.input.annotation_layer()
            inputs = self.input.inputs()
            name = f"{inputs.geometry.name} classes"
            if layer is None or name not in self.viewer.layers:
                raise InputError("Predict this slice first, with an annotation layer chosen.")
            names = [c.name for c in self.input.table_classes()]
            model = self.state.model
            if model is not None and [c.name for c in model.config.classes] != names:
                raise InputError("The prediction's classes differ from the class table.")
            plane = self.input.visible_plane()
            indices, values = merge_into_annotations(
                np.asarray(layer.data[plane]), np.asarray(self.viewer.layers[name].data[plane])
            )
        except PaintsegError as error:
            report_error(error, "Accepting the prediction")
            return 0
        full = tuple(np.full(values.size, p) for p in plane) + indices
        layer.data_setitem(full, values.astype(layer.data.dtype))
        return int(values.size)

    def export_objects(self, path: str | None = None) -> Path | None:
        """Write the object table of the last prediction to CSV (a dialog when no path)."""
        table = self.state.objects_table
        if table is None or table.empty:
            report_error(InputError("Predict first: there is no object table yet."), "Export")
            return None
        path = path or QFileDialog.getSaveFileName(self, "Export objects", "objects.csv",
                                                   "CSV (*.csv)")[0]
        if not path:
            return None
        try:
            atomic_file(Path(path), lambda tmp: table.to_csv(tmp, index=False))
        except OSError as error:
            report_error(error, "Export")
            return None
        return Path(path)
