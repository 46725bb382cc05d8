"""The PaintSeg dock widget: classes, training with live preview, prediction, model files.

The widget is thin: it gathers arrays from layers, runs the engine's generators in napari
workers (see ``paintseg.session.jobs`` and ``_run``) and turns their events into layers (see
``_outputs``) on the GUI thread. A worker never sees a widget or a layer.

The dock is six sections, each its own widget built from one Qt-free
:class:`~paintseg.session.dock.DockState`: ``_project_section`` (the image set),
``_input_section`` (image, strokes, classes), ``_train_section``, ``_predict_section``,
``_edit_section`` (object edits) and ``_model_section``. A section changes the state and
listens to its events (each enables its own buttons when the state's ``busy`` changes); where
it must ask another for an action (the image, save the strokes, show another image) it calls
the public methods of the section it was given; none reads another's widgets.
"""

from __future__ import annotations

from qtpy.QtWidgets import QApplication, QVBoxLayout, QWidget

from paintseg.session.dock import DockState
from paintseg.widgets._edit_section import EditSection
from paintseg.widgets._glyphs import GlyphLoader
from paintseg.widgets._input_section import Inputs, InputSection
from paintseg.widgets._model_section import ModelSection
from paintseg.widgets._predict_section import PredictSection
from paintseg.widgets._project_section import ProjectSection
from paintseg.widgets._run import RunState
from paintseg.widgets._train_section import TrainSection

__all__ = ["Inputs", "PaintSegWidget"]


class PaintSegWidget(QWidget):
    """Paint a few strokes, train a U-Net live, predict and correct (napari dock widget).

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer whose layers the widget uses.
    """

    def __init__(self, napari_viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = DockState()
        self.runs = RunState(self.state)
        viewer, state, runs = napari_viewer, self.state, self.runs
        self.input = InputSection(viewer, state)
        self.edits = EditSection(viewer, state, self.input)
        self.image_set = ProjectSection(viewer, state, self.input, runs)
        self.training = TrainSection(viewer, state, self.input, self.image_set, runs)
        self.prediction = PredictSection(viewer, state, self.input, self.image_set, self.edits,
                                         runs)
        self.model_files = ModelSection(state, self.input, runs)
        layout = QVBoxLayout(self)
        for section in (self.image_set, self.input, self.training, self.prediction, self.edits,
                        self.model_files):
            layout.addWidget(section)
        layout.addStretch(1)
        self._glyphs = GlyphLoader(napari_viewer, parent=self)  # text drawn later won't freeze
        # Closures, not bound methods: PySide6 may call a bound method of a freed object.
        # The sections outlive this signal (Qt frees children after it).
        inputs = self.input
        self.destroyed.connect(lambda *_: (runs.shutdown(), inputs.disconnect_viewer()))
        QApplication.instance().aboutToQuit.connect(lambda: runs.shutdown())

    @property
    def busy(self) -> bool:
        """Whether a training or prediction is running (or its layers are being made)."""
        return self.runs.busy

    def stop(self) -> None:
        """Stop the training or prediction that is running (the model keeps what it learnt)."""
        self.runs.stop.set()

    def closeEvent(self, event) -> None:
        self.image_set.stop_autosave()
        self.runs.shutdown()
        super().closeEvent(event)
