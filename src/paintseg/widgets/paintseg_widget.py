"""The PaintSeg dock widget: classes, training with live preview, prediction, model files.

The widget is thin: it gathers arrays from layers, runs the engine's generators in napari
workers (see ``_jobs``) and turns their events into layers (see ``_outputs``) on the GUI
thread. A worker never sees a widget or a layer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from napari.layers import Image, Labels
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QThreadPool, Qt
from qtpy.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from paintseg.errors import InputError, PaintsegError
from paintseg.learn import PRESETS, Segmenter
from paintseg.learn.classes import ClassInfo
from paintseg.learn.device import describe_device, pick_device
from paintseg.learn.train import Preview, TrainEvent
from paintseg.widgets import _jobs, _outputs
from paintseg.widgets._process import new_stop_event, process_train_job
from paintseg.widgets._layers import (
    CLASSES_KEY,
    check_annotations,
    check_channels,
    classes_from_metadata,
    default_classes,
    format_eta,
    format_scores,
    merge_into_annotations,
    model_mismatch,
    plane_at,
    progress_fraction,
    rgb_channels,
)
from paintseg.widgets.class_table import ClassTable
from paintseg.widgets.loss_plot import LossPlot

logger = logging.getLogger(__name__)

PLOT_INTERVAL = 0.2
"""Seconds between two repaints of the loss curve and labels (at most 5 per second)."""


def report_error(error: BaseException, action: str) -> None:
    """Show an error as a napari notification: the engine's sentence, or a short summary."""
    if isinstance(error, PaintsegError):
        show_error(str(error))
    else:
        logger.error("%s failed", action, exc_info=error)
        detail = error if isinstance(error, _jobs.JobError) else f"{type(error).__name__}: {error}"
        show_error(f"{action} failed: {detail}")


def fixed_label(lines: int) -> QLabel:
    """A label whose text changes never resize the dock (a resize redraws the whole canvas)."""
    label = QLabel("")
    label.setAlignment(Qt.AlignLeft | Qt.AlignTop)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + 4)
    return label


def relay(events: Generator) -> Generator:
    """Yield the events of a job's generator, return its value (the worker's function).

    The widget keeps the job's generator, so that it can close it (running its clean-up,
    e.g. stopping a child process) when napari aborts the worker without closing it.
    """
    try:
        return (yield from events)
    except Exception as error:  # noqa: BLE001 - reported by the widget, not napari's errored
        failure = Failed(error)  # (napari's errored handler breaks on PySide6)
        yield failure
        return failure


@dataclass
class Failed:
    """A job's exception, relayed as an event so the widget reports it on the GUI thread."""

    error: Exception


class VisiblePlane:
    """The plane on screen, written on the GUI thread and read by the training worker.

    Calling it returns ``(image_index, plane)`` as the engine's ``preview`` argument expects.
    """

    def __init__(self) -> None:
        self.value: tuple[int, tuple[int, ...]] | None = None

    def __call__(self) -> tuple[int, tuple[int, ...]] | None:
        return self.value


class RunState:
    """The running worker and its stop flag; stops it when the widget or the app goes away.

    Plain Python (no Qt parent), so it can be called after the widget is deleted.
    """

    def __init__(self) -> None:
        self.stop = new_stop_event()
        self.worker = None
        self.events: Generator | None = None
        self.kind = ""
        self.closed = False  # the widget is gone: late events are dropped

    def shutdown(self, *_: Any, wait_ms: int = 5000) -> None:
        """Stop the run, wait briefly for its thread, then let the job clean up."""
        self.closed = True
        self.stop.set()
        if self.worker is None:
            return
        self.worker.quit()
        QThreadPool.globalInstance().waitForDone(wait_ms)
        with contextlib.suppress(ValueError):  # still running: it stops at its next step
            self.events.close()


@dataclass
class Inputs:
    """The image chosen as input: its channels (arrays) and geometry."""

    channel_names: list[str]
    channels: list[Any]
    geometry: _outputs.Geometry


class PaintSegWidget(QWidget):
    """Paint a few strokes, train a U-Net live, predict and correct (napari dock widget).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers the widget uses.
    """

    train_in_process = True
    """Train in a child process (keeps the GUI smooth); False trains in a thread."""

    def __init__(self, napari_viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model: Segmenter | None = None
        self.loss_runs: list[list[float]] = []
        self.last_scores: dict | None = None
        self.objects_table: pd.DataFrame | None = None
        self._run = RunState()
        self._plane = VisiblePlane()
        self._run_geometry: _outputs.Geometry | None = None
        self._run_classes: list[ClassInfo] = []
        self._last_paint = 0.0
        self.last_event: TrainEvent | None = None
        self._build()
        self._connect()
        self._refresh_layers()
        # Closures, not bound methods: PySide6 may call a bound method of a freed object.
        run = self._run
        self.destroyed.connect(lambda *_: run.shutdown())
        QApplication.instance().aboutToQuit.connect(lambda: run.shutdown())

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_input())
        layout.addWidget(self._build_train())
        layout.addWidget(self._build_predict())
        layout.addWidget(self._build_model())
        layout.addStretch(1)
        self._set_busy("")

    def _build_input(self) -> QGroupBox:
        box = QGroupBox("1. Image and classes")
        form = QVBoxLayout(box)
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
        return box

    def _build_train(self) -> QGroupBox:
        box = QGroupBox("2. Train")
        layout = QVBoxLayout(box)
        form = QFormLayout()
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(["auto", *[p for p in PRESETS if p != "auto"]])
        self.budget_spin = QSpinBox()
        self.budget_spin.setRange(1, 1_000_000)
        self.budget_spin.setValue(30)
        self.budget_unit = QComboBox()
        self.budget_unit.addItems(["seconds", "steps"])
        budget = QHBoxLayout()
        budget.addWidget(self.budget_spin, 1)
        budget.addWidget(self.budget_unit)
        self.device_label = QLabel(describe_device(pick_device("auto")))
        form.addRow("Preset:", self.preset_combo)
        form.addRow("Budget:", budget)
        form.addRow("Device:", self.device_label)
        layout.addLayout(form)
        self.train_button = QPushButton("Train new model")
        self.train_button.setToolTip("Start a new model from the painted strokes")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Continue from the current weights, old and new strokes")
        self.stop_button = QPushButton("Stop")
        buttons = QHBoxLayout()
        for button in (self.train_button, self.continue_button, self.stop_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.train_progress = QProgressBar()
        self.train_progress.setRange(0, 1000)
        self.train_progress.setTextVisible(False)
        self.train_status = fixed_label(lines=1)
        self.loss_plot = LossPlot()
        self.scores_label = fixed_label(lines=6)
        self.scores_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        for widget in (self.train_progress, self.train_status, self.loss_plot, self.scores_label):
            layout.addWidget(widget)
        return box

    def _build_predict(self) -> QGroupBox:
        box = QGroupBox("3. Predict and correct")
        layout = QVBoxLayout(box)
        self.predict_slice_button = QPushButton("Slice")
        self.predict_slice_button.setToolTip("Predict the slice on screen")
        self.predict_stack_button = QPushButton("Whole image")
        self.predict_folder_button = QPushButton("Folder…")
        self.predict_folder_button.setToolTip("Predict every image of a folder into files")
        self.cancel_button = QPushButton("Cancel")
        row = QHBoxLayout()
        for button in (self.predict_slice_button, self.predict_stack_button,
                       self.predict_folder_button, self.cancel_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.predict_progress = QProgressBar()
        self.predict_progress.setTextVisible(False)
        layout.addWidget(self.predict_progress)
        self.accept_button = QPushButton("Accept prediction of this slice into annotations")
        self.accept_button.setToolTip(
            "Copy the predicted classes of the slice on screen into its unannotated pixels; "
            "your strokes are kept. Fix mistakes, then press Continue."
        )
        self.export_button = QPushButton("Export object table (CSV)…")
        layout.addWidget(self.accept_button)
        layout.addWidget(self.export_button)
        return box

    def _build_model(self) -> QGroupBox:
        box = QGroupBox("4. Model")
        layout = QVBoxLayout(box)
        self.save_button = QPushButton("Save…")
        self.load_button = QPushButton("Load…")
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        layout.addLayout(row)
        self.model_label = QLabel("No model yet.")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        return box

    def _connect(self) -> None:
        layers = self.viewer.layers
        for event in (layers.events.inserted, layers.events.removed, layers.events.moved):
            event.connect(self._refresh_layers)
        self.viewer.dims.events.current_step.connect(self._update_plane)
        self.image_list.itemChanged.connect(self._update_plane)
        self.annotation_combo.currentTextChanged.connect(self._adopt_annotations)
        self.new_annotation_button.clicked.connect(self.new_annotation_layer)
        self.class_table.classes_changed.connect(self._on_classes_changed)
        self.class_table.class_picked.connect(self._on_class_picked)
        self.train_button.clicked.connect(lambda: self.start_training(continue_training=False))
        self.continue_button.clicked.connect(lambda: self.start_training(continue_training=True))
        self.stop_button.clicked.connect(self.stop)
        self.cancel_button.clicked.connect(self.stop)
        self.predict_slice_button.clicked.connect(lambda: self.predict(whole=False))
        self.predict_stack_button.clicked.connect(lambda: self.predict(whole=True))
        self.predict_folder_button.clicked.connect(lambda: self.predict_folder())
        self.accept_button.clicked.connect(self.accept_prediction)
        self.export_button.clicked.connect(lambda: self.export_objects())
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())

    # ---------------------------------------------------------------- layers
    def _refresh_layers(self, event=None) -> None:
        """Keep the image list and the annotation choice in step with the viewer."""
        checked = set(self.checked_images())
        layers = [layer for layer in self.viewer.layers if not _outputs.is_output(layer)]
        images = [layer for layer in layers if isinstance(layer, Image)]
        first = next((layer for layer in images if layer.name in checked), None)
        self.image_list.blockSignals(True)
        self.image_list.clear()
        for layer in images:
            layer.events.name.connect(self._refresh_layers)  # skipped when connected
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

        current = self.annotation_combo.currentText()
        names = [layer.name for layer in layers if isinstance(layer, Labels)]
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
        self._update_plane()

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

    def _on_class_picked(self, label: int) -> None:
        layer = self.annotation_layer()
        if layer is None:
            return
        self.viewer.layers.selection.active = layer
        layer.selected_label = label
        layer.mode = "paint"

    def _update_plane(self, *_: Any) -> None:
        """Remember the plane on screen for the live preview (GUI thread)."""
        names = self.checked_images()
        if not names or names[0] not in self.viewer.layers:
            self._plane.value = None
            return
        layer = self.viewer.layers[names[0]]
        shape = tuple(layer.data.shape[:-1] if layer.rgb else layer.data.shape)
        if layer.multiscale:
            shape = tuple(layer.data[0].shape[: layer.ndim])
        position = layer.world_to_data(self.viewer.dims.point)
        self._plane.value = (0, plane_at(position, shape))

    def visible_plane(self) -> tuple[int, ...]:
        """The plane index of the checked image on screen (``()`` for a 2D image)."""
        self._update_plane()
        return self._plane.value[1] if self._plane.value else ()

    # ---------------------------------------------------------------- workers
    def _set_busy(self, kind: str) -> None:
        idle = not kind
        for button in (self.train_button, self.predict_slice_button, self.predict_stack_button,
                       self.predict_folder_button, self.load_button, self.accept_button,
                       self.new_annotation_button, self.export_button):
            button.setEnabled(idle)
        has_model = self.model is not None
        self.continue_button.setEnabled(idle and has_model)
        self.save_button.setEnabled(idle and has_model)
        self.stop_button.setEnabled(kind == "train")
        self.cancel_button.setEnabled(kind == "predict")

    @property
    def busy(self) -> bool:
        """Whether a training or prediction is running."""
        return self._run.worker is not None

    def _start(self, kind: str, job, *args, on_yielded, on_returned, **kwargs) -> None:
        """Run ``job(*args, stop, **kwargs)`` in a napari worker.

        Signals are connected before the worker starts.
        """
        self._run.stop = new_stop_event()
        events = job(*args, self._run.stop, **kwargs)
        worker = create_worker(relay, events, _start_thread=False, _ignore_errors=True)
        action = {"train": "Training", "predict": "Prediction"}[kind]

        def route(event) -> None:
            if self._run.closed:
                return
            if isinstance(event, Failed):
                report_error(event.error, action)
            else:
                on_yielded(event)

        worker.yielded.connect(route)
        worker.returned.connect(
            lambda value: self._run.closed or isinstance(value, Failed) or on_returned(value)
        )
        worker.errored.connect(lambda error: report_error(error, action))
        worker.finished.connect(self._on_finished)
        stop = self._run.stop
        worker.aborted.connect(lambda: stop.set())  # napari aborts workers on close
        worker.finished.connect(lambda: events.close())  # after an abort: clean-up runs now
        self._run.worker, self._run.events, self._run.kind = worker, events, kind
        self._set_busy(kind)
        worker.start()

    def _on_finished(self) -> None:
        self._run.worker, self._run.kind = None, ""
        if self._run.closed:
            return
        self._set_busy("")
        self.loss_plot.set_runs(self.loss_runs)
        self._describe_model()

    def stop(self) -> None:
        """Stop the training or prediction that is running (the model keeps what it learnt)."""
        self._run.stop.set()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._run.shutdown()
        super().closeEvent(event)

    # ---------------------------------------------------------------- training
    def start_training(self, continue_training: bool = False) -> bool:
        """Train a new model, or continue the current one, on the painted strokes.

        Returns ``False`` (after a notification) when the inputs are not usable.
        """
        if self.busy:
            show_info("Wait for the running job to finish, or stop it.")
            return False
        try:
            request = self._train_request(continue_training)
        except PaintsegError as error:
            report_error(error, "Training")
            return False
        if continue_training:
            self.loss_runs.append([])
        else:
            self.loss_runs = [[]]
        self.last_event = None
        self.train_status.setText("Starting…")
        _outputs.preview_layer(self.viewer, self._run_geometry, self._run_classes)
        job = process_train_job if self.train_in_process else _jobs.train_job
        self._start("train", job, request, on_yielded=self._on_train_event,
                    on_returned=self._on_trained, preview=self._plane,
                    threads=_jobs.gui_threads())
        return True

    def _train_request(self, continue_training: bool) -> _jobs.TrainRequest:
        if continue_training and self.model is None:
            raise InputError("There is no model to continue; press Train new model.")
        inputs = self.inputs()
        layer = self.annotation_layer()
        if layer is None:
            raise InputError("Choose an annotation layer, or press New to make one and paint.")
        check_annotations(layer.data.shape, inputs.geometry.shape)
        classes = self.class_table.classes()
        model = None
        if continue_training:
            reason = model_mismatch(self.model.config.channels, self.model.config.classes,
                                    len(inputs.channels), classes)
            if reason:
                raise InputError(reason)
            model = self.model
        self._run_geometry, self._run_classes = inputs.geometry, classes
        seconds = self.budget_spin.value() if self.budget_unit.currentText() == "seconds" else None
        steps = self.budget_spin.value() if seconds is None else None
        return _jobs.TrainRequest(
            model=model, channel_names=inputs.channel_names, classes=classes,
            preset=self.preset_combo.currentText(), images=[inputs.channels],
            annotations=[np.array(layer.data, copy=True)], seconds=seconds, steps=steps,
        )

    def _on_train_event(self, event: TrainEvent | Preview) -> None:
        if isinstance(event, Preview):  # the last preview, with the final weights
            self._show_preview(event)
            return
        if event.loss is not None and np.isfinite(event.loss):
            self.loss_runs[-1].append(float(event.loss))
        if event.val:
            self.last_scores = event.val
        if event.preview is not None:
            self._show_preview(event.preview)
        self.last_event = event
        if event.done or time.monotonic() - self._last_paint > PLOT_INTERVAL:
            self._paint_training()

    def _show_preview(self, preview: Preview) -> None:
        _outputs.show_preview(self.viewer, self._run_geometry, self._run_classes,
                              tuple(preview.plane), preview.labels)

    def _paint_training(self) -> None:
        """Repaint progress, loss curve and scores (throttled to keep the GUI responsive)."""
        self._last_paint = time.monotonic()
        event = self.last_event
        if event is None:
            return
        fraction = progress_fraction(event.step, event.total_steps, event.elapsed, event.eta)
        self.train_progress.setValue(int(1000 * fraction))
        loss = f"  loss {event.loss:.3f}" if event.loss is not None else ""
        self.train_status.setText(f"step {event.step}{loss}  {format_eta(event.eta)}")
        self.loss_plot.set_runs(self.loss_runs)
        self.scores_label.setText(format_scores(self.last_scores))

    def _on_trained(self, model: Segmenter) -> None:
        self.model = model
        self._paint_training()
        self.train_progress.setValue(1000)
        steps = self.last_event.step if self.last_event else 0
        show_info(f"Training finished ({steps} steps); press Continue to train further.")

    def _describe_model(self) -> None:
        if self.model is None:
            self.model_label.setText("No model yet.")
            return
        config = self.model.config
        classes = ", ".join(c.name for c in config.classes)
        runs = len(getattr(config, "history", []) or [])
        self.model_label.setText(
            f"{len(config.channels)} channel(s): {', '.join(config.channels)}\n"
            f"classes: {classes}\ntraining runs: {runs}"
        )

    # ---------------------------------------------------------------- prediction
    def _predict_inputs(self) -> Inputs:
        if self.model is None:
            raise InputError("Train or load a model first.")
        inputs = self.inputs()
        if len(inputs.channels) != len(self.model.config.channels):
            raise InputError(
                f"The model needs {len(self.model.config.channels)} channel(s) "
                f"({', '.join(self.model.config.channels)}) but {len(inputs.channels)} "
                "are checked."
            )
        return inputs

    def predict(self, whole: bool = False) -> bool:
        """Predict the slice on screen (or the whole image) into output layers."""
        if self.busy:
            return False
        try:
            inputs = self._predict_inputs()
        except PaintsegError as error:
            report_error(error, "Prediction")
            return False
        plane = None if whole else self.visible_plane()
        self.predict_progress.setRange(0, 0)
        self._start("predict", _jobs.predict_job, self.model, inputs.channels, plane,
                    on_yielded=self._on_predict_event,
                    on_returned=lambda result: self._on_predicted(inputs.geometry, result),
                    threads=_jobs.gui_threads())
        return True

    def _on_predict_event(self, event) -> None:
        self.predict_progress.setRange(0, max(1, event.total))
        self.predict_progress.setValue(event.done)

    def _on_predicted(self, geometry: _outputs.Geometry, result) -> None:
        if result is None:
            show_info("Prediction cancelled.")
            return
        layers = _outputs.show_prediction(self.viewer, geometry, self.model.config.classes,
                                          result)
        self.objects_table = layers["objects"].features

    def predict_folder(self, folder: str | None = None, out_dir: str | None = None) -> bool:
        """Predict every image in ``folder`` into class maps in ``out_dir`` (dialogs if None)."""
        if self.busy:
            return False
        if self.model is None:
            report_error(InputError("Train or load a model first."), "Prediction")
            return False
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder of images to predict")
        if not folder:
            return False
        out_dir = out_dir or QFileDialog.getExistingDirectory(self, "Folder for the results")
        if not out_dir:
            return False
        files = _jobs.image_files(folder)
        if not files:
            report_error(InputError(f"No TIFF or zarr images in {folder}."), "Prediction")
            return False
        self.predict_progress.setRange(0, len(files))
        self._start("predict", _jobs.folder_job, self.model, files, out_dir,
                    on_yielded=self._on_predict_event,
                    on_returned=lambda written: show_info(
                        f"Wrote {len(written)} of {len(files)} class maps to {out_dir}."),
                    threads=_jobs.gui_threads())
        return True

    # ---------------------------------------------------------------- correction
    def accept_prediction(self) -> int:
        """Copy the predicted classes of the slice on screen into its unannotated pixels.

        Painted strokes are kept; the change can be undone in the annotation layer.
        Returns the number of pixels added.
        """
        try:
            layer = self.annotation_layer()
            inputs = self.inputs()
            name = f"{inputs.geometry.name} classes"
            if layer is None or name not in self.viewer.layers:
                raise InputError("Predict this slice first, with an annotation layer chosen.")
            names = [c.name for c in self.class_table.classes()]
            if self.model is not None and [c.name for c in self.model.config.classes] != names:
                raise InputError("The prediction's classes differ from the class table.")
            plane = self.visible_plane()
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
        if self.objects_table is None or self.objects_table.empty:
            report_error(InputError("Predict first: there is no object table yet."), "Export")
            return None
        path = path or QFileDialog.getSaveFileName(self, "Export objects", "objects.csv",
                                                   "CSV (*.csv)")[0]
        if not path:
            return None
        try:
            self.objects_table.to_csv(path, index=False)
        except OSError as error:
            report_error(error, "Export")
            return None
        return Path(path)

    # ---------------------------------------------------------------- model files
    def save_model(self, path: str | None = None) -> Path | None:
        """Save the model to a safe model file (a dialog when no path)."""
        if self.model is None:
            report_error(InputError("There is no model to save yet."), "Saving the model")
            return None
        path = path or QFileDialog.getSaveFileName(
            self, "Save model", "model.paintseg.safetensors", "PaintSeg model (*.safetensors)"
        )[0]
        if not path:
            return None
        try:
            self.model.save(path)
        except Exception as error:  # noqa: BLE001 (shown to the user)
            report_error(error, "Saving the model")
            return None
        show_info(f"Model saved to {path}")
        return Path(path)

    def load_model(self, path: str | None = None) -> Segmenter | None:
        """Load a model file; it predicts at once and trains further if channels match."""
        if self.busy:
            return None
        path = path or QFileDialog.getOpenFileName(
            self, "Load model", "", "PaintSeg model (*.safetensors)")[0]
        if not path:
            return None
        try:
            model = Segmenter.load(path, device="auto")
        except Exception as error:  # noqa: BLE001 (shown to the user)
            report_error(error, "Loading the model")
            return None
        self.model = model
        classes = list(model.config.classes)
        layer = self.annotation_layer()
        if layer is None or not np.any(layer.data):
            self.class_table.set_classes(classes)
        elif [c.name for c in classes] != [c.name for c in self.class_table.classes()]:
            show_warning("The model's classes differ from the class table: it can predict, "
                         "but Continue needs the same classes.")
        self._set_busy("")
        self._describe_model()
        return model
