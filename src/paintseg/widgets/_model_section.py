"""Dock section "5. Model": save and load model files, export to the BioImage Model Zoo,
describe the current model."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from paintseg.errors import InputError, PaintsegError
from paintseg.learn import Segmenter
from paintseg.learn.blend import not_learnt
from paintseg.learn.model import open_model
from paintseg.session import jobs
from paintseg.session.dock import DockState
from paintseg.widgets._input_section import InputSection
from paintseg.widgets._run import RunState, report_error
from paintseg.zoo.bioimageio import export_bioimageio, import_bioimageio

MODEL_FILTER = "PaintSeg model (*.safetensors)"
ZOO_FILTER = "BioImage Model Zoo package (*.zip)"


class ModelSection(QGroupBox):
    """The model file buttons and the model's summary.

    Sets the state's ``model`` when one is loaded; reads the image and the classes through
    ``input``.
    """

    def __init__(self, state: DockState, input: InputSection, runs: RunState) -> None:
        super().__init__("5. Model")
        self.state, self.input, self.runs = state, input, runs
        layout = QVBoxLayout(self)
        self.save_button = QPushButton("Save…")
        self.load_button = QPushButton("Load…")
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.load_button)
        layout.addLayout(row)
        self.zoo_button = QPushButton("Export to BioImage Model Zoo…")
        self.zoo_button.setToolTip("A bioimage.io package (.zip) that other tools can run "
                                   "(the network, without the random forest)")
        layout.addWidget(self.zoo_button)
        self.model_label = QLabel("No model yet.")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())
        self.zoo_button.clicked.connect(lambda: self.export_bioimageio())
        state.busy_changed.connect(self._on_busy)
        state.model_changed.connect(self._on_model)
        self._enable(state.busy)

    def _enable(self, kind: str) -> None:
        self.load_button.setEnabled(not kind)
        for button in (self.save_button, self.zoo_button):
            button.setEnabled(not kind and self.state.model is not None)

    def _on_busy(self, kind: str) -> None:
        self._enable(kind)
        if not kind:
            self._describe()

    def _on_model(self, _) -> None:
        """A model loaded with an image set is described at once; one trained or loaded by a
        run, once the run is over."""
        self._enable(self.state.busy)
        if not self.state.busy:
            self._describe()

    def _describe(self) -> None:
        model = self.state.model
        if model is None:
            self.model_label.setText("No model yet.")
            return
        config = model.config
        classes = ", ".join(c.name for c in config.classes)
        runs = len(getattr(config, "history", []) or [])
        unlearnt = not_learnt(config.history)
        self.model_label.setText(
            f"{len(config.channels)} channel(s): {', '.join(config.channels)}\n"
            f"classes: {classes}\ntraining runs: {runs}"
            + (f"\nNot learnt by the U-Net yet (the random forest carries them): "
               f"{', '.join(unlearnt)}. Train longer, or paint more of them."
               if unlearnt else "")
        )

    def save_model(self, path: str | None = None) -> Path | None:
        """Save the model to a safe model file (a dialog when no path)."""
        model = self.state.model
        if model is None:
            report_error(InputError("There is no model to save yet."), "Saving the model")
            return None
        path = path or QFileDialog.getSaveFileName(
            self, "Save model", "model.paintseg.safetensors", MODEL_FILTER)[0]
        if not path:
            return None
        try:
            model.save(path)
        except Exception as error:  # noqa: BLE001 (shown to the user)
            report_error(error, "Saving the model")
            return None
        show_info(f"Model saved to {path}")
        return Path(path)

    def load_model(self, path: str | None = None) -> bool:
        """Load a model file or Zoo package, off the GUI thread (a dialog when no path); it
        predicts, and trains further if channels match. Returns whether it started."""
        if self.runs.busy:
            return False
        path = path or QFileDialog.getOpenFileName(self, "Load model", "",
                                                   f"{MODEL_FILTER};;{ZOO_FILTER}")[0]
        if not path:
            return False
        read = import_bioimageio if str(path).lower().endswith(".zip") else open_model
        self.model_label.setText(f"Loading {Path(path).name}…")
        self.runs.start("load", jobs.call_job, partial(read, path), on_yielded=lambda _: None,
                        on_returned=self._use_loaded_model)
        return True

    def _use_loaded_model(self, model: Segmenter) -> None:
        self.state.model = model
        classes = list(model.config.classes)
        layer = self.input.annotation_layer()
        if layer is None or not np.any(layer.data):
            self.input.set_table_classes(classes)
        elif [c.name for c in classes] != [c.name for c in self.input.table_classes()]:
            show_warning("The model's classes differ from the class table: it can predict, "
                         "but Continue needs the same classes.")

    def export_bioimageio(self, path: str | None = None,
                          authors: list[str] | None = None) -> bool:
        """Export the model as a BioImage Model Zoo package, off the GUI thread (a dialog when
        no path); the test tile comes from the image's plane on screen when it has the
        model's channels. Returns whether the export started."""
        if self.runs.busy:
            report_error(InputError("Wait until the training or prediction has finished."),
                         "Exporting the model")
            return False
        model = self.state.model
        if model is None:
            report_error(InputError("There is no model to export yet."), "Exporting the model")
            return False
        path = path or QFileDialog.getSaveFileName(
            self, "Export to BioImage Model Zoo", "model.bioimageio.zip", ZOO_FILTER)[0]
        if not path:
            return False
        self.model_label.setText("Exporting to the BioImage Model Zoo…")
        task = partial(export_bioimageio, model, path, authors=authors,
                       image=self._export_image())
        self.runs.start("export", jobs.call_job, task, on_yielded=lambda _: None,
                        on_returned=lambda saved: show_info(
                            f"BioImage Model Zoo package saved to {saved}"))
        return True

    def _export_image(self) -> list | None:
        """The checked channels' plane on screen, if they fit the model (else None)."""
        try:
            channels = self.input.inputs().channels
        except PaintsegError:
            return None
        if len(channels) != len(self.state.model.config.channels):
            return None
        plane = self.input.visible_plane()
        return [channel[plane] for channel in channels]
