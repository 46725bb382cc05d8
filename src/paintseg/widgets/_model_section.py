"""Dock section "4. Model": save and load model files, export to the BioImage Model Zoo,
describe the current model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from paintseg.bioimageio import export_bioimageio, import_bioimageio
from paintseg.errors import InputError, PaintsegError
from paintseg.learn import Segmenter
from paintseg.model_files import open_model
from paintseg.widgets._run import report_error

MODEL_FILTER = "PaintSeg model (*.safetensors)"
ZOO_FILTER = "BioImage Model Zoo package (*.zip)"


class ModelSection:
    """Mixin of :class:`PaintSegWidget`: the model file buttons and the model's summary.

    Needs ``model``, ``busy``, ``annotation_layer``, ``class_table``, ``_set_busy``,
    ``inputs`` and ``visible_plane``.
    """

    def _build_model(self) -> QGroupBox:
        box = QGroupBox("4. Model")
        layout = QVBoxLayout(box)
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
        return box

    def _connect_model(self) -> None:
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())
        self.zoo_button.clicked.connect(lambda: self.export_bioimageio())

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

    def save_model(self, path: str | None = None) -> Path | None:
        """Save the model to a safe model file (a dialog when no path)."""
        if self.model is None:
            report_error(InputError("There is no model to save yet."), "Saving the model")
            return None
        path = path or QFileDialog.getSaveFileName(
            self, "Save model", "model.paintseg.safetensors", MODEL_FILTER)[0]
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
        path = path or QFileDialog.getOpenFileName(self, "Load model", "",
                                                   f"{MODEL_FILTER};;{ZOO_FILTER}")[0]
        if not path:
            return None
        try:
            zoo = str(path).lower().endswith(".zip")
            model = import_bioimageio(path) if zoo else open_model(path)
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

    def export_bioimageio(self, path: str | None = None,
                          authors: list[str] | None = None) -> Path | None:
        """Export the model as a BioImage Model Zoo package (a dialog when no path); the test
        tile comes from the image's plane on screen when it has the model's channels."""
        if self.busy:
            report_error(InputError("Wait until the training or prediction has finished."),
                         "Exporting the model")
            return None
        if self.model is None:
            report_error(InputError("There is no model to export yet."), "Exporting the model")
            return None
        path = path or QFileDialog.getSaveFileName(
            self, "Export to BioImage Model Zoo", "model.bioimageio.zip", ZOO_FILTER)[0]
        if not path:
            return None
        try:
            export_bioimageio(self.model, path, authors=authors, image=self._export_image())
        except Exception as error:  # noqa: BLE001 (shown to the user)
            report_error(error, "Exporting the model")
            return None
        show_info(f"BioImage Model Zoo package saved to {path}")
        return Path(path)

    def _export_image(self) -> list | None:
        """The checked channels' plane on screen, if they fit the model (else None)."""
        try:
            channels = self.inputs().channels
        except PaintsegError:
            return None
        if len(channels) != len(self.model.config.channels):
            return None
        plane = self.visible_plane()
        return [channel[plane] for channel in channels]
