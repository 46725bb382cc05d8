"""Dock section "4. Model": save and load model files, describe the current model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from paintseg.errors import InputError
from paintseg.learn import Segmenter
from paintseg.model_files import open_model
from paintseg.widgets._run import report_error

MODEL_FILTER = "PaintSeg model (*.safetensors)"


class ModelSection:
    """Mixin of :class:`PaintSegWidget`: the model file buttons and the model's summary.

    Needs ``model``, ``busy``, ``annotation_layer``, ``class_table`` and ``_set_busy``.
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
        self.model_label = QLabel("No model yet.")
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        return box

    def _connect_model(self) -> None:
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())

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
        path = path or QFileDialog.getOpenFileName(self, "Load model", "", MODEL_FILTER)[0]
        if not path:
            return None
        try:
            model = open_model(path)
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
