"""The PaintSeg dock widget: classes, training with live preview, prediction, model files.

The widget is thin: it gathers arrays from layers, runs the engine's generators in napari
workers (see ``paintseg.session.jobs`` and ``_run``) and turns their events into layers (see
``_outputs``) on the GUI thread. A worker never sees a widget or a layer. Each dock section
is a mixin: ``_project_section`` (the image set), ``_input_section``, ``_train_section``,
``_predict_section``, ``_edit_section`` (object edits) and ``_model_section``; each enables
its own buttons.
"""

from __future__ import annotations

import pandas as pd
from qtpy.QtWidgets import QApplication, QVBoxLayout, QWidget

from paintseg.classes import ClassInfo
from paintseg.learn import Segmenter
from paintseg.learn.train import TrainEvent
from paintseg.widgets import _outputs
from paintseg.widgets._edit_section import EditSection
from paintseg.widgets._glyphs import GlyphLoader
from paintseg.widgets._input_section import Inputs, InputSection
from paintseg.widgets._model_section import ModelSection
from paintseg.widgets._predict_section import PredictSection
from paintseg.widgets._project_section import ProjectSection
from paintseg.widgets._run import RunState
from paintseg.widgets._train_section import TrainSection

__all__ = ["Inputs", "PaintSegWidget"]


class PaintSegWidget(ProjectSection, InputSection, TrainSection, PredictSection, EditSection,
                     ModelSection, QWidget):
    """Paint a few strokes, train a U-Net live, predict and correct (napari dock widget).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers the widget uses.
    """

    def __init__(self, napari_viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model: Segmenter | None = None
        self.loss_runs: list[list[float]] = []
        self.last_scores: dict | None = None
        self.objects_table: pd.DataFrame | None = None
        self.last_event: TrainEvent | None = None
        self._run = RunState()
        self._run_geometry: _outputs.Geometry | None = None
        self._run_classes: list[ClassInfo] = []
        self._last_paint = 0.0
        self._build()
        self._connect()
        self._refresh_layers()
        self._glyphs = GlyphLoader(napari_viewer, parent=self)  # text drawn later won't freeze
        # Closures, not bound methods: PySide6 may call a bound method of a freed object.
        run = self._run
        self.destroyed.connect(lambda *_: run.shutdown())
        QApplication.instance().aboutToQuit.connect(lambda: run.shutdown())

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        for section in (self._build_project(), self._build_input(), self._build_train(),
                        self._build_predict(), self._build_edit(), self._build_model()):
            layout.addWidget(section)
        layout.addStretch(1)
        self._set_busy("")

    def _connect(self) -> None:
        self._connect_project()
        self._connect_input()
        self._connect_train()
        self._connect_predict()
        self._connect_edit()
        self._connect_model()

    def _set_busy(self, kind: str) -> None:
        """Each section enables its own buttons for ``kind`` ("" when idle, "train", ...)."""
        for enable in (self._enable_project, self._enable_input, self._enable_train,
                       self._enable_predict, self._enable_edit, self._enable_model):
            enable(kind)

    @property
    def busy(self) -> bool:
        """Whether a training or prediction is running (or its layers are being made)."""
        return self._run.busy

    def _start(self, kind: str, job, *args, on_yielded, on_returned, **kwargs) -> None:
        """Run ``job(*args, stop, **kwargs)`` in a napari worker (see ``RunState.start``)."""
        self._set_busy(kind)
        self._run.start(kind, job, *args, on_yielded=on_yielded, on_returned=on_returned,
                        on_finished=self._on_finished, **kwargs)

    def _on_finished(self) -> None:
        self._run.finish()
        self._when_idle()

    def _when_idle(self) -> None:
        """Enable the buttons again once the run and its layer steps are all done."""
        if self._run.closed or self._run.busy:
            return
        self._run.idle()
        self._set_busy("")
        self.loss_plot.set_runs(self.loss_runs)
        self._describe_model()

    def stop(self) -> None:
        """Stop the training or prediction that is running (the model keeps what it learnt)."""
        self._run.stop.set()

    def closeEvent(self, event) -> None:
        self.save_strokes()
        self._unwatch()
        self._run.shutdown()
        super().closeEvent(event)
