"""Dock section "2. Train": preset, budget, train / continue / stop, live loss and preview."""

from __future__ import annotations

import time

import numpy as np
from napari.utils.notifications import show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
)

from paintseg.classes import ClassInfo
from paintseg.errors import InputError, PaintsegError
from paintseg.learn import PRESETS, Segmenter
from paintseg.learn.device import describe_device, pick_device
from paintseg.learn.train import CONTINUE_SECONDS, Preview, TrainEvent
from paintseg.session import jobs
from paintseg.session.dock import DockState
from paintseg.session.layers import (
    check_annotations,
    format_eta,
    format_scores,
    model_mismatch,
    progress_fraction,
)
from paintseg.session.process import process_train_job
from paintseg.widgets import _outputs
from paintseg.widgets._input_section import InputSection
from paintseg.widgets._progress import set_progress
from paintseg.widgets._project_section import ProjectSection
from paintseg.widgets._run import RunState, report_error
from paintseg.widgets.loss_plot import LossPlot

PLOT_INTERVAL = 3.0
"""Most seconds between two repaints of the progress, loss curve and labels while training.
They are also repainted with each live preview, in the same window update: each repaint of
the dock composes napari's whole window again (see ``_progress``)."""


BROWSING_PAUSE = 1.0
"""Seconds after the view last moved to another plane during which live previews are skipped:
the user is moving through the stack, and each preview would redraw a plane already left
behind (the last preview, with the final weights, is always shown)."""


def fixed_label(lines: int) -> QLabel:
    """A label whose text changes never resize the dock (a resize redraws the whole canvas)."""
    label = QLabel("")
    label.setAlignment(Qt.AlignLeft | Qt.AlignTop)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + 4)
    return label


class TrainSection(QGroupBox):
    """Train a new model or continue it, with live feedback.

    Reads the image and the classes through ``input``; saves the set's strokes through
    ``image_set`` before training. Sets the state's ``model``, ``training_names`` and
    ``scores_by_image``; tells the others of a finished training and of places to paint next
    by the state's events.
    """

    train_in_process = True
    """Train in a child process (keeps the GUI smooth); False trains in a thread."""

    def __init__(self, viewer, state: DockState, input: InputSection,
                 image_set: ProjectSection, runs: RunState) -> None:
        super().__init__("2. Train")
        self.viewer, self.state, self.input, self.image_set, self.runs = \
            viewer, state, input, image_set, runs
        self.loss_runs: list[list[float]] = []
        self.last_scores: dict | None = None
        self.last_event: TrainEvent | None = None
        self._last_paint = 0.0
        self._geometry: _outputs.Geometry | None = None  # of the image trained on
        self._classes: list[ClassInfo] = []
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_settings())
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
        self.scores_label = fixed_label(lines=7)
        self.scores_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        for widget in (self.train_progress, self.train_status, self.loss_plot, self.scores_label):
            layout.addWidget(widget)
        self.train_button.clicked.connect(lambda: self.start_training(continue_training=False))
        self.continue_button.clicked.connect(lambda: self.start_training(continue_training=True))
        self.stop_button.clicked.connect(lambda: runs.stop.set())
        state.busy_changed.connect(self._on_busy)
        state.model_changed.connect(lambda _: self._enable(state.busy))
        state.project_changed.connect(self._restore_settings)
        self._enable(state.busy)

    def _build_settings(self) -> QFormLayout:
        form = QFormLayout()
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(["auto", *[p for p in PRESETS if p != "auto"]])
        self.budget_spin = QSpinBox()
        self.budget_spin.setRange(1, 1_000_000)
        self.budget_spin.setValue(30)
        self.budget_unit = QComboBox()
        self.budget_unit.addItems(["seconds", "steps"])
        self.continue_spin = QSpinBox()
        self.continue_spin.setRange(1, 1_000_000)
        self.continue_spin.setValue(round(CONTINUE_SECONDS))
        self.continue_spin.setToolTip("Budget of Continue, in the same unit: short rounds "
                                      "of correct, continue, look")
        budget = QHBoxLayout()
        budget.addWidget(self.budget_spin, 1)
        budget.addWidget(QLabel("continue"))
        budget.addWidget(self.continue_spin, 1)
        budget.addWidget(self.budget_unit)
        self.device_label = QLabel(describe_device(pick_device("auto")))
        form.addRow("Preset:", self.preset_combo)
        form.addRow("Budget:", budget)
        form.addRow("Device:", self.device_label)
        return form

    def training_settings(self) -> dict:
        """The preset and budgets, as an image set keeps them."""
        return {"preset": self.preset_combo.currentText(), "budget": self.budget_spin.value(),
                "continue": self.continue_spin.value(), "unit": self.budget_unit.currentText()}

    def _restore_settings(self, project) -> None:
        """Those a set kept (a new set has none: those shown stay)."""
        settings = project.settings
        for combo, key in ((self.preset_combo, "preset"), (self.budget_unit, "unit")):
            if settings.get(key):
                combo.setCurrentText(str(settings[key]))
        for spin, key in ((self.budget_spin, "budget"), (self.continue_spin, "continue")):
            if isinstance(settings.get(key), int):
                spin.setValue(settings[key])

    def _enable(self, kind: str) -> None:
        self.train_button.setEnabled(not kind)
        self.continue_button.setEnabled(not kind and self.state.model is not None)
        self.stop_button.setEnabled(kind == "train")

    def _on_busy(self, kind: str) -> None:
        self._enable(kind)
        if not kind:
            self.loss_plot.set_runs(self.loss_runs)

    def start_training(self, continue_training: bool = False) -> bool:
        """Train a new model, or continue the current one, on the painted strokes.

        Returns ``False`` (after a notification) when the inputs are not usable.
        """
        if self.runs.busy:
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
        # Made at the click, not when the first round ends: a new layer holds napari's event
        # loop for a few hundred ms, which would freeze a user browsing slices meanwhile.
        _outputs.preview_layer(self.viewer, self._geometry, self._classes)
        _outputs.places_layer(self.viewer, self._geometry)
        self.input.update_plane()  # the image on screen, indexed among this run's images
        job = process_train_job if self.train_in_process else jobs.train_job
        self.runs.start("train", job, request, on_yielded=self._on_train_event,
                        on_returned=self._on_trained, preview=self.state.plane,
                        threads=jobs.gui_threads())
        return True

    def _train_request(self, continue_training: bool) -> jobs.TrainRequest:
        model = self.state.model
        if continue_training and model is None:
            raise InputError("There is no model to continue; press Train new model.")
        inputs = self.input.inputs()
        layer = self.input.annotation_layer()
        if layer is None:
            raise InputError("Choose an annotation layer, or press New to make one and paint.")
        check_annotations(layer.data.shape, inputs.geometry.shape)
        classes = self.input.table_classes()
        if continue_training:
            reason = model_mismatch(model.config.channels, model.config.classes,
                                    len(inputs.channels), classes)
            if reason:
                raise InputError(reason)
        else:
            model = None
        self._geometry, self._classes = inputs.geometry, classes
        budget = (self.continue_spin if continue_training else self.budget_spin).value()
        seconds = budget if self.budget_unit.currentText() == "seconds" else None
        steps = budget if seconds is None else None
        names, images, annotations = self._training_images(inputs, layer)
        self.state.training_names = names
        project = self.state.project
        channel_names = project.channels if project else inputs.channel_names
        return jobs.TrainRequest(
            model=model, channel_names=channel_names, classes=classes,
            preset=self.preset_combo.currentText(), images=images,
            annotations=annotations, seconds=seconds, steps=steps,
        )

    def _training_images(self, inputs, layer) -> tuple[list[str], list, list[np.ndarray]]:
        """Names, channels and strokes to train on: every image of the set that has strokes
        (saved first), else the image on screen."""
        name = self.state.current_image_name()
        if name is None:
            return [layer.name], [inputs.channels], [np.array(layer.data, copy=True)]
        strokes = np.array((self.image_set.strokes_layer() or layer).data, copy=True)
        if not self.image_set.save_strokes():
            raise InputError(f"The strokes of {name} could not be saved, so training did not "
                             "start; free some disk space or choose another set folder.")
        chosen, images, annotations = self.state.project.training_set({name: strokes})
        if not chosen:
            raise InputError("No image of the set has strokes yet: paint a few first.")
        return [image.name for image in chosen], images, annotations

    def _on_train_event(self, event: TrainEvent | Preview) -> None:
        if isinstance(event, Preview):  # the last preview, with the final weights
            # its layer, then its places: one per event-loop turn, as a prediction's layers
            self.runs.run_steps([lambda: self._show_preview(event, last=True),
                                 lambda: self._list_last_places(event)])
            return
        if event.loss is not None and np.isfinite(event.loss):
            self.loss_runs[-1].append(float(event.loss))
        if event.val:
            self.last_scores = event.val
        names = self.state.training_names
        if event.val_by_image and names:
            self.state.scores_by_image = {names[i]: score
                                          for i, score in event.val_by_image.items()}
        if event.preview is not None:
            self._show_preview(event.preview, last=False)
        self.last_event = event
        if event.done or event.preview is not None or \
                time.monotonic() - self._last_paint > PLOT_INTERVAL:
            self._paint_training()

    def _show_preview(self, preview: Preview, last: bool) -> None:
        if not last and (time.monotonic() - self.state.browsed_at < BROWSING_PAUSE or
                         self.state.plane.value != (preview.image_index, tuple(preview.plane))):
            return
        geometry = self._preview_geometry(preview)
        if geometry is None:
            return
        _outputs.show_preview(self.viewer, geometry, self._classes,
                              tuple(preview.plane), preview.labels, last)

    def _preview_geometry(self, preview: Preview) -> _outputs.Geometry | None:
        """The geometry of the image shown, if the preview is of it (else ``None``)."""
        name = self.state.current_image_name()
        if name is None:
            return self._geometry
        if self.state.training_names[preview.image_index] != name:
            return None  # an image set: only onto the image shown
        return self.input.inputs().geometry

    def _list_last_places(self, preview: Preview) -> None:
        """Where to paint next, after each training round (on the image the preview shows)."""
        geometry = self._preview_geometry(preview)
        if geometry is not None and preview.suggestions:
            self.state.suggested.emit(preview.suggestions, geometry)

    def _paint_training(self) -> None:
        """Repaint progress, loss curve and scores (throttled to keep the GUI responsive)."""
        self._last_paint = time.monotonic()
        event = self.last_event
        if event is None:
            return
        fraction = progress_fraction(event.step, event.total_steps, event.elapsed, event.eta)
        set_progress(self.train_progress, int(1000 * fraction))
        loss = f"  loss {event.loss:.3f}" if event.loss is not None else ""
        self.train_status.setText(f"step {event.step}{loss}  {format_eta(event.eta)}")
        self.loss_plot.set_runs(self.loss_runs)
        text = format_scores(self.last_scores)
        scores = self.state.scores_by_image
        if scores and len(scores) > 1:
            worst = min(scores, key=scores.get)
            text += f"\nworst image: {worst} ({scores[worst]:.2f} held-out)"
        self.scores_label.setText(text)

    def _on_trained(self, model: Segmenter | None) -> None:
        steps = model.config.history[-1].get("steps", 0) if model and model.config.history \
            else 0
        if not steps:  # stopped before the first step: a new model would have learnt nothing
            show_info("Stopped before the first training step: the model is unchanged.")
            return
        self.state.model = model
        self.state.trained.emit(model, self.training_settings())
        self._paint_training()
        set_progress(self.train_progress, 1000)
        show_info(f"Training finished ({steps} steps); press Continue to train further.")
