"""The class table: name, colour and role of each painted class (label value = row + 1)."""

from __future__ import annotations

from collections.abc import Sequence

from qtpy.QtCore import Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from paintseg.classes import ROLES, ClassInfo, new_class


class ClassTable(QWidget):
    """Editable table of classes.

    Signals
    -------
    classes_changed(list)
        The table after any edit, as ``list[ClassInfo]``.
    class_picked(int)
        The label value (row + 1) of the class the user selected to paint with.
    """

    classes_changed = Signal(list)
    class_picked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._updating = False
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Class", "Colour", "Role"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        header.setSectionResizeMode(1, QHeaderView.Fixed)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.table.setColumnWidth(1, 60)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(True)
        self.table.setToolTip("Label value = row number. Select a row to paint that class.")
        self.table.setMinimumHeight(125)  # four classes without scrolling
        self.table.setMaximumHeight(150)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.currentCellChanged.connect(self._on_current_changed)

        self.add_button = QPushButton("Add class")
        self.remove_button = QPushButton("Remove class")
        self.add_button.clicked.connect(self.add_class)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self._classes: list[ClassInfo] = []

    # -- the table as data ------------------------------------------------------------------
    def classes(self) -> list[ClassInfo]:
        """The class table; entry ``i`` is label value ``i + 1``."""
        return [ClassInfo(c.name, c.color, c.role) for c in self._classes]

    def set_classes(self, classes: Sequence[ClassInfo], emit: bool = True) -> None:
        """Replace the whole table."""
        self._classes = [ClassInfo(c.name, c.color, c.role) for c in classes]
        self._rebuild()
        if emit:
            self.classes_changed.emit(self.classes())

    def add_class(self, name: str | None = None, color: str | None = None) -> None:
        """Append a class (a free name and an unused colour unless given)."""
        cls = new_class(self._classes)
        name = name or cls.name
        self._classes.append(ClassInfo(name, color or cls.color, ClassInfo.default_role(name)))
        self._rebuild()
        self.table.selectRow(len(self._classes) - 1)
        self.classes_changed.emit(self.classes())

    def remove_selected(self) -> None:
        """Remove the selected class (painted pixels of later classes keep their values)."""
        row = self.table.currentRow()
        if 0 <= row < len(self._classes):
            del self._classes[row]
            self._rebuild()
            self.classes_changed.emit(self.classes())

    def rename(self, row: int, name: str) -> None:
        """Rename the class in ``row``."""
        self.table.item(row, 0).setText(name)

    def set_color(self, row: int, color: str) -> None:
        """Recolour the class in ``row`` (``"#rrggbb"``)."""
        self._classes[row].color = QColor(color).name()
        self._style_color_button(row)
        self.classes_changed.emit(self.classes())

    def set_role(self, row: int, role: str) -> None:
        """Set the role of the class in ``row``."""
        self.table.cellWidget(row, 2).setCurrentText(role)

    def pick(self, label: int) -> None:
        """Select the class with label value ``label`` for painting."""
        self.table.selectRow(label - 1)

    # -- Qt plumbing -----------------------------------------------------------------------
    def _rebuild(self) -> None:
        self._updating = True
        self.table.setRowCount(len(self._classes))
        for row, cls in enumerate(self._classes):
            self.table.setItem(row, 0, QTableWidgetItem(cls.name))
            button = QPushButton()
            button.setToolTip("Click to change the colour")
            button.clicked.connect(lambda _=False, r=row: self._choose_color(r))
            self._set_cell_widget(row, 1, button)
            self._style_color_button(row)
            roles = QComboBox()
            roles.addItems(list(ROLES))
            roles.setCurrentText(cls.role)
            roles.currentTextChanged.connect(lambda text, r=row: self._on_role(r, text))
            self._set_cell_widget(row, 2, roles)
        self._updating = False

    def _set_cell_widget(self, row: int, column: int, widget: QWidget) -> None:
        """Put ``widget`` in a cell; the one it replaces is hidden at once (Qt deletes it only
        when the event loop next runs, and until then it stays drawn where the cell was)."""
        old = self.table.cellWidget(row, column)
        if old is not None:
            old.hide()
        self.table.setCellWidget(row, column, widget)

    def _style_color_button(self, row: int) -> None:
        color = self._classes[row].color
        self.table.cellWidget(row, 1).setStyleSheet(f"background-color: {color};")

    def _choose_color(self, row: int) -> None:
        color = QColorDialog.getColor(QColor(self._classes[row].color), self, "Class colour")
        if color.isValid():
            self.set_color(row, color.name())

    def _on_role(self, row: int, role: str) -> None:
        self._classes[row].role = role
        self.classes_changed.emit(self.classes())

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating or item.column() != 0:
            return
        name = item.text().strip()
        if not name or name in [c.name for i, c in enumerate(self._classes) if i != item.row()]:
            self._updating = True
            item.setText(self._classes[item.row()].name)  # empty or duplicate: undo
            self._updating = False
            return
        self._classes[item.row()].name = name
        self.classes_changed.emit(self.classes())

    def _on_current_changed(self, row: int, *_: int) -> None:
        if 0 <= row < len(self._classes):
            self.class_picked.emit(row + 1)
