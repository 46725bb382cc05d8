"""What the dock's sections share, without Qt or napari: the model, the image set and the image
shown, the busy run, the object edits; and the events by which a section tells the others.

Each section of ``paintseg.widgets`` is built from one :class:`DockState`, changes it and
listens to its events; none reads another section's widgets.
"""

from __future__ import annotations

import time
from typing import Any

from psygnal import Signal


class VisiblePlane:
    """The plane on screen, written on the GUI thread and read by the training worker.

    Calling it returns ``(image_index, plane)`` as the engine's ``preview`` argument expects.
    """

    def __init__(self) -> None:
        self.value: tuple[int, tuple[int, ...]] | None = None

    def __call__(self) -> tuple[int, tuple[int, ...]] | None:
        return self.value


class DockState:
    """The dock's shared state. Setting ``busy``, ``model`` or ``project`` emits its event."""

    busy_changed = Signal(str)
    """The run kind the buttons are set for: "" when idle, "train", "predict", "load", ..."""
    model_changed = Signal(object)
    project_changed = Signal(object)
    """Another image set was started or opened."""
    leaving_image = Signal()
    """The image on screen is about to be removed (tools let go of its layers)."""
    image_shown = Signal(object)
    """An image of the set is on screen; the argument is its saved prediction, or None."""
    trained = Signal(object, dict)
    """A training finished with a model: the model and the training settings."""
    image_predicted = Signal(object, object, object)
    """A whole-image prediction: labels, scale and the places to paint next."""
    suggested = Signal(object, object)
    """Places to paint next (a list of ``Suggestion``) on an image of that geometry."""
    edited = Signal()
    """The object edits changed (strokes with them): they are to be saved."""

    def __init__(self) -> None:
        self._busy = ""
        self._model = None  # a paintseg.learn.Segmenter
        self._project = None  # a paintseg.io.project.Project
        self.project_index: int | None = None  # the set's image on screen
        self.training_names: list[str] | None = None  # images of the running or last training
        self.scores_by_image: dict[str, float] | None = None  # held-out accuracy per image
        self.objects_table = None  # the last prediction's objects (a pandas DataFrame)
        self.plane = VisiblePlane()  # for the live preview
        self.browsed_at = -float("inf")  # when the view last moved to another plane
        self.kept: Any = None  # the kept map of object edits (numpy) ...
        self.edits_of = ""  # ... of this image (a set's image, else the layer's name)
        self.edits_dirty = False

    @property
    def busy(self) -> str:
        return self._busy

    @busy.setter
    def busy(self, kind: str) -> None:
        if kind != self._busy:
            self._busy = kind
            self.busy_changed.emit(kind)

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model) -> None:
        self._model = model
        self.model_changed.emit(model)

    @property
    def project(self):
        return self._project

    @project.setter
    def project(self, project) -> None:
        self._project, self.project_index = project, None
        self.project_changed.emit(project)

    def current_image(self):
        """The set's image on screen (None without a set)."""
        if self._project is None or self.project_index is None:
            return None
        return self._project.images[self.project_index]

    def current_image_name(self) -> str | None:
        """Name of the set's image on screen (None without a set)."""
        image = self.current_image()
        return None if image is None else image.name

    def moved_view(self) -> None:
        """The view moved to another plane now (live previews wait)."""
        self.browsed_at = time.monotonic()
