"""A small live loss curve drawn with QPainter (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget


def binned(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, means)``: ``values`` averaged over at most ``bins`` equal runs of steps,
    each at the mean step of its run (a long training draws in constant time)."""
    if values.size <= bins:
        return np.arange(values.size, dtype=float), values
    edges = np.linspace(0, values.size, bins + 1).astype(int)
    means = np.add.reduceat(values, edges[:-1]) / np.diff(edges)
    return (edges[:-1] + edges[1:] - 1) / 2, means


class LossPlot(QWidget):
    """Training loss over steps; a dashed line marks where each continued run began."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runs: list[list[float]] = []
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("Training loss (one dashed line per Continue)")

    def set_runs(self, runs: Sequence[Sequence[float]]) -> None:
        """Show the losses of each run, one after the other, and repaint."""
        self._runs = [list(r) for r in runs]
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        painter.fillRect(self.rect(), QColor(30, 33, 38))
        losses = np.array([v for run in self._runs for v in run], dtype=float)
        losses = losses[np.isfinite(losses)]
        painter.setPen(QColor(200, 200, 200))
        if losses.size < 2:
            painter.drawText(self.rect(), Qt.AlignCenter, "loss curve appears while training")
            return
        area = QRectF(self.rect()).adjusted(44, 8, -8, -16)
        steps, curve = binned(losses, max(2, int(area.width())))
        low, high = float(curve.min()), float(curve.max())
        span = high - low or 1.0

        def point(i: float, value: float) -> QPointF:
            x = area.left() + area.width() * i / max(1, losses.size - 1)
            return QPointF(x, area.bottom() - area.height() * (value - low) / span)

        painter.drawText(QRectF(0, area.top() - 6, 40, 14), Qt.AlignRight, f"{high:.2g}")
        painter.drawText(QRectF(0, area.bottom() - 8, 40, 14), Qt.AlignRight, f"{low:.2g}")
        painter.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), 14),
            Qt.AlignRight,
            f"loss {losses[-1]:.3f}",
        )
        dashed = QPen(QColor(150, 150, 150), 1, Qt.DashLine)
        start = 0
        for run in self._runs[:-1]:
            start += len(run)
            painter.setPen(dashed)
            x = point(start, low).x()
            painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()))
        path = QPainterPath(point(steps[0], curve[0]))
        for i, value in zip(steps[1:], curve[1:]):
            path.lineTo(point(i, value))
        painter.setPen(QPen(QColor(80, 180, 255), 1.5))
        painter.drawPath(path)
