"""Dock section "4. Correct objects": split, merge, delete and draw objects on the objects
layer; each edit shows at once, teaches the next Continue by strokes (in the annotation
layer) and is kept through new predictions (`paintseg.learn.edits`)."""

from __future__ import annotations

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton

from paintseg.errors import InputError, PaintsegError
from paintseg.learn import edits
from paintseg.session.dock import DockState
from paintseg.session.layers import object_points
from paintseg.widgets import _outputs
from paintseg.widgets._input_section import InputSection
from paintseg.widgets._run import report_error

TOOLS = {  # tool: (button text, what to do)
    "split": ("Split", "Drag a line across a merged object, along where it should be cut."),
    "merge": ("Merge", "Click one object, then the object to join to it."),
    "delete": ("Delete", "Click a false object."),
    "new": ("Draw new", "Paint a missing object with the brush, in one stroke."),
}


class EditSection(QGroupBox):
    """Object edits and their undo and redo.

    Reads the image, the strokes and the classes through ``input``; keeps the kept map in
    the state (``kept``, ``edits_of``, ``edits_dirty``) and says when it changed by its
    ``edited`` event; lets go of the objects layer when the state says the image leaves.
    """

    def __init__(self, viewer, state: DockState, input: InputSection) -> None:
        super().__init__("4. Correct objects")
        self.viewer, self.state, self.input = viewer, state, input
        self._tool = ""
        self._first = 0  # merge: the object clicked first
        self._tool_layer: Labels | None = None
        self._applying = False  # our own writes into the objects layer are not the user's brush
        layout = QGridLayout(self)
        self.tool_buttons: dict[str, QPushButton] = {}
        for column, (tool, (text, tip)) in enumerate(TOOLS.items()):
            button = QPushButton(text)
            button.setCheckable(True)
            button.setToolTip(tip + " The next Continue learns from it.")
            self.tool_buttons[tool] = button
            layout.addWidget(button, 0, column)
        self.undo_edit_button = QPushButton("Undo edit")
        self.redo_edit_button = QPushButton("Redo edit")
        self.forget_edits_button = QPushButton("Forget edits")
        self.forget_edits_button.setToolTip(
            "New predictions of this image stop keeping your edited objects (the strokes "
            "they taught stay in the annotation layer)")
        for column, button in enumerate((self.undo_edit_button, self.redo_edit_button,
                                         self.forget_edits_button)):
            layout.addWidget(button, 1, column)
        self.edit_label = QLabel("Predict, then choose a tool to correct the objects.")
        self.edit_label.setWordWrap(True)
        layout.addWidget(self.edit_label, 2, 0, 1, len(TOOLS))
        self._undo: list[edits.Edit] = []
        self._redo: list[edits.Edit] = []
        self._object_classes: dict[int, int] = {}  # every object's class seen, for undo
        self._connect()
        self._enable(state.busy)

    def _enable(self, kind: str) -> None:
        for button in (*self.tool_buttons.values(), self.forget_edits_button):
            button.setEnabled(kind in ("", "train"))
        self.undo_edit_button.setEnabled(kind in ("", "train") and bool(self._undo))
        self.redo_edit_button.setEnabled(kind in ("", "train") and bool(self._redo))
        if kind not in ("", "train"):
            self.choose_tool("")

    def _connect(self) -> None:
        for tool, button in self.tool_buttons.items():
            button.clicked.connect(lambda checked, t=tool: self.choose_tool(t if checked else ""))
        self.undo_edit_button.clicked.connect(lambda: self.undo_edit())
        self.redo_edit_button.clicked.connect(lambda: self.redo_edit())
        self.forget_edits_button.clicked.connect(lambda: self.forget_edits())
        self.state.busy_changed.connect(self._enable)
        self.state.leaving_image.connect(lambda: self.choose_tool(""))

    # -- the layers an edit works on --------------------------------------------------
    def objects_layer(self) -> Labels | None:
        """The ``"<image> objects"`` layer of the checked image, if it is predicted."""
        try:
            name = f"{self.input.inputs().geometry.name} objects"
        except PaintsegError:
            return None
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        return layer if isinstance(layer, Labels) else None

    def kept_map(self, create: bool = True) -> np.ndarray | None:
        """The kept map of object edits of the image on screen (an image set's from its
        file): what a prediction keeps. None without an image, or (``create`` False) while
        the image has no edits: a large stack gets no array it does not need."""
        try:
            geometry = self.input.inputs().geometry
        except PaintsegError:
            return None
        state = self.state
        image = state.current_image_name()  # an image set's image, else the layer's
        key = image or geometry.name
        if state.edits_of != key or (state.kept is not None
                                     and state.kept.shape != geometry.shape):
            state.kept, state.edits_of = None, key
            self._undo.clear()
            self._redo.clear()
            if image is not None:
                try:
                    state.kept = state.project.load_edits(state.current_image(), geometry.shape)
                except (PaintsegError, OSError) as error:  # told; the file stays as it is
                    report_error(error, f"Reading the object edits of {image}")
        if state.kept is None and create:
            state.kept = np.zeros(geometry.shape, np.int32)
        return state.kept

    def _edit_arrays(self) -> tuple[Labels, Labels, np.ndarray]:
        objects = self.objects_layer()
        if objects is None:
            raise InputError("Predict first: the edits work on the objects layer.")
        strokes = self.input.annotation_layer()
        if strokes is None or strokes.data.shape != objects.data.shape:
            raise InputError("Choose or make the annotation layer of this image: edits teach "
                             "the next training through strokes.")
        return objects, strokes, self.kept_map()

    # -- tools -----------------------------------------------------------------------
    def choose_tool(self, tool: str) -> bool:
        """Turn an edit tool on (``"split"``, ``"merge"``, ``"delete"``, ``"new"``) or all
        off (``""``). The objects layer becomes the active layer and takes the clicks."""
        layer = self.objects_layer()
        if tool and layer is None:
            report_error(InputError("Predict first: the edits work on the objects layer."),
                         "Correcting objects")
            tool = ""
        for name, button in self.tool_buttons.items():
            button.setChecked(name == tool)
        self._release_layer()
        self._tool, self._first = tool, 0
        if not tool:
            self.edit_label.setText("Choose a tool to correct the objects.")
            return False
        self._tool_layer = layer
        self.viewer.layers.selection.active = layer
        if tool == "new":
            layer.preserve_labels = True  # draw over background only
            layer.selected_label = int(layer.data.max()) + 1
            layer.mode = "paint"
            layer.events.paint.connect(self._on_drawn)
        else:
            layer.mode = "pan_zoom"
            layer.mouse_pan = False
            layer.mouse_drag_callbacks.append(self._on_mouse)
        self.edit_label.setText(TOOLS[tool][1])
        return True

    def _release_layer(self) -> None:
        layer = self._tool_layer
        if layer is None:
            return
        if self._on_mouse in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._on_mouse)
        if self._tool == "new":
            layer.events.paint.disconnect(self._on_drawn)
        layer.mouse_pan, layer.preserve_labels = True, False
        if layer.mode == "paint":
            layer.mode = "pan_zoom"
        self._tool_layer = None

    def _on_mouse(self, layer: Labels, event):
        """Mouse drag on the objects layer: a click deletes or merges; a drag splits."""
        start = np.asarray(layer.world_to_data(event.position))
        yield
        end = start
        while event.type == "mouse_move":
            end = np.asarray(layer.world_to_data(event.position))
            yield
        if self._tool == "split":
            self.split_at(start, end)
        else:
            self.click_at(start)

    # -- edits ------------------------------------------------------------------------
    def click_at(self, position) -> bool:
        """Delete the object at a data position, or (merge) join it to the one clicked
        before."""
        try:
            objects, strokes, kept = self._edit_arrays()
            object_id = edits.object_at(objects.data, position)
            if self._tool == "delete":
                return self._apply(edits.delete(objects.data, strokes.data, kept, object_id,
                                                self.input.table_classes()))
            if not self._first:
                if object_id <= 0:
                    raise InputError("Click inside the first object to merge.")
                self._first = object_id
                self.edit_label.setText(f"Object {object_id} chosen: click the object to "
                                        "join to it.")
                return False
            first, self._first = self._first, 0
            return self._apply(edits.merge(objects.data, strokes.data, kept, first,
                                           object_id, self.input.table_classes(),
                                           self._class_of(first)))
        except PaintsegError as error:
            report_error(error, "Correcting objects")
            return False

    def split_at(self, start, end) -> bool:
        """Split the object under the line from ``start`` to ``end`` (data positions)."""
        try:
            objects, strokes, kept = self._edit_arrays()
            plane = tuple(round(float(p)) for p in start[:-2])
            channels = [np.asarray(c[plane]) for c in self.input.inputs().channels]
            edit = edits.split(objects.data[plane], strokes.data[plane], kept[plane],
                               start[-2:], end[-2:], self.input.table_classes(), channels)
        except PaintsegError as error:
            report_error(error, "Splitting")
            return False
        return self._apply(edit.offset(plane, (0, 0)))

    def _on_drawn(self, event) -> None:
        """The brush painted: once napari has written it (after this event), take the new
        object back and apply it as an edit, so that it teaches and undoes with the others."""
        if not self._applying:
            QTimer.singleShot(0, self._take_drawn)

    def _take_drawn(self) -> None:
        layer = self._tool_layer
        if layer is None or self._tool != "new":
            return
        new_id = layer.selected_label
        mask = layer.data == new_id
        layer.data[mask] = 0
        try:
            objects, strokes, kept = self._edit_arrays()
            classes = self.input.table_classes()
            value = strokes.selected_label
            if not 0 < value <= len(classes) or classes[value - 1].role != "object":
                value = edits.first_object_class(classes)
            self._apply(edits.new_object(objects.data, strokes.data, kept, mask, classes,
                                         value))
        except PaintsegError as error:
            objects_layer = self.objects_layer()
            if objects_layer is not None:
                objects_layer.refresh()
            report_error(error, "Drawing an object")
            return
        layer.selected_label = int(layer.data.max()) + 1

    def _class_of(self, object_id: int) -> int:
        """The class (label value) of an object: as in the objects table, else the first
        object class."""
        table = self.objects_layer().features
        row = table[table["label"] == object_id] if "label" in table else table.iloc[:0]
        return int(row["class_id"].iat[0]) if len(row) else \
            edits.first_object_class(self.input.table_classes())

    def _apply(self, edit: edits.Edit, undo: bool = False, redo: bool = False) -> bool:
        """Write an edit (or its undo) into the layers and the kept map; the objects table
        follows."""
        objects, strokes, kept = self._edit_arrays()
        first_object = edits.first_object_class(self.input.table_classes())
        table = objects.features
        self._applying = True
        if "label" in table:
            self._object_classes.update(zip(table["label"].tolist(),
                                            table["class_id"].tolist(), strict=True))
        try:
            for writes, layer in ((edit.objects, objects), (edit.strokes, strokes)):
                if writes.before.size:
                    layer.data_setitem(writes.indices, writes.before if undo else writes.after)
        finally:
            self._applying = False
        kept[edit.kept.indices] = edit.kept.before if undo else edit.kept.after
        class_of = dict(self._object_classes)
        if edit.class_value and not undo:
            class_of.update(dict.fromkeys(edit.ids, edit.class_value))
        for object_id in edit.touched - class_of.keys():
            class_of[object_id] = first_object
        objects.features = edits.edited_table(table, objects.data, edit.touched,
                                              self.input.table_classes(), class_of)
        self.state.objects_table = objects.features
        self._show_names(objects)
        (self._redo if undo else self._undo).append(edit)
        if not (undo or redo):
            self._redo.clear()
        self.state.edits_dirty = True
        self.state.edited.emit()
        self.edit_label.setText(f"{edit.kind.capitalize()}{' undone' if undo else ' done'}; "
                                f"{len(self._undo)} edit(s) to undo. Continue training to "
                                "learn from them.")
        self._enable("train" if self.state.busy else "")
        return True

    def _show_names(self, objects: Labels) -> None:
        """Move the class names to the edited objects: now when the names layer is shown,
        else once it is (drawing thousands of names would slow every edit)."""
        name = f"{self.input.inputs().geometry.name} object names"
        names = self.viewer.layers[name] if name in self.viewer.layers else None
        if names is None:
            return
        if not names.visible:
            names.events.visible.connect(self._names_shown)
            return
        table = objects.features
        try:
            points = object_points(table, (), objects.ndim) if len(table) else None
        except (InputError, KeyError):  # a table of one plane of a stack: left as it was
            return
        _outputs.show_object_names(self.viewer, self.input.inputs().geometry, points)

    def _names_shown(self, event) -> None:
        event.source.events.visible.disconnect(self._names_shown)
        objects = self.objects_layer()
        if event.source.visible and objects is not None:
            self._show_names(objects)

    def predicted(self) -> None:
        """A new prediction replaced the objects: earlier edits can no longer be undone
        (the kept map keeps them)."""
        self._undo.clear()
        self._redo.clear()
        self._enable("train" if self.state.busy else "")

    def undo_edit(self) -> bool:
        """Undo the last object edit (objects, strokes and kept map together)."""
        return self._step_history(self._undo, undo=True)

    def redo_edit(self) -> bool:
        return self._step_history(self._redo, redo=True)

    def _step_history(self, history: list[edits.Edit], **how) -> bool:
        if not history:
            return False
        edit = history.pop()
        try:
            return self._apply(edit, **how)
        except PaintsegError as error:  # nothing was written: the edit stays in the history
            history.append(edit)
            report_error(error, "Undo" if how.get("undo") else "Redo")
            return False

    def forget_edits(self) -> None:
        """New predictions of this image no longer keep the edited objects."""
        kept = self.kept_map(create=False)
        if kept is not None:
            kept[...] = 0
            self._undo.clear()
            self._redo.clear()
            self.state.edits_dirty = True
            self.state.edited.emit()
            self.edit_label.setText("Edits forgotten: the next prediction is the model's own.")
