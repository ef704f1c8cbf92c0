"""The image view: the X-ray with zoom, pan, fit and window/level, the heat-map overlay, its colour bar.

Widgets only: they draw what they are given and emit what the user did; the window (``window.py``)
decides what to show.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QSizePolicy, QWidget

from desktop_app.ui.heatmap import LUT

ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 0.02, 40.0


def qimage(arr: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 (H, W) gray or (H, W, 4) RGBA array (the copy owns its pixels)."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if arr.ndim == 2 else QImage.Format.Format_RGBA8888
    return QImage(arr.data, w, h, arr.strides[0], fmt).copy()


class ImageView(QGraphicsView):
    """Graphics view with Ctrl+wheel zoom, drag to pan, and fit-to-window that survives resizes."""

    zoomChanged = Signal(float)
    windowDragged = Signal(float, float)  # (dx, dy) in view pixels while the right button drags

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None):
        super().__init__(scene, parent)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor(16, 16, 16))
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Drops go to the main window, which knows how to open files.
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.fit_mode = True
        self._wl_drag = None

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self._wl_drag = event.position()
            event.accept()
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._wl_drag is not None:
            d = event.position() - self._wl_drag
            self._wl_drag = event.position()
            self.windowDragged.emit(d.x(), d.y())
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton and self._wl_drag is not None:
            self._wl_drag = None
            event.accept()
        else:
            super().mouseReleaseEvent(event)

    def scale_factor(self) -> float:
        return self.transform().m11()

    def zoom(self, factor: float) -> None:
        target = min(MAX_SCALE, max(MIN_SCALE, self.scale_factor() * factor))
        factor = target / self.scale_factor()
        self.fit_mode = False
        self.scale(factor, factor)
        self.zoomChanged.emit(self.scale_factor())

    def fit(self) -> None:
        self.fit_mode = True
        rect = self.sceneRect()
        if not rect.isEmpty():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomChanged.emit(self.scale_factor())

    def actual_size(self) -> None:
        self.fit_mode = False
        self.resetTransform()
        self.zoomChanged.emit(1.0)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)
            event.accept()
        else:
            super().wheelEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fit_mode:
            self.fit()


class ColourBar(QWidget):
    """The heat map's colour scale (the same LUT as the overlay), low on the left, high on the right."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lut = np.ascontiguousarray(np.concatenate([LUT, np.full((len(LUT), 1), 255, np.uint8)], axis=1)[None])
        self._image = QImage(lut.data, len(LUT), 1, lut.strides[0], QImage.Format.Format_RGBA8888).copy()
        self.setMinimumHeight(14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(200, 16)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(QRectF(self.rect().adjusted(0, 0, -1, -1)), self._image)
        p.setPen(QColor(90, 90, 90))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        p.end()
