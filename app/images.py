"""Photo thumbnails and previews, decoded at the size they are shown (safe to call in worker threads)."""
from __future__ import annotations

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader

PREVIEW_SIZE = QSize(480, 360)
THUMBNAIL_SIZE = QSize(72, 54)


def load_scaled(path: str, box: QSize) -> QImage:
    """The image at `path` fitted into `box` (EXIF orientation applied); a null QImage if unreadable."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > box.width() or size.height() > box.height()):
        reader.setScaledSize(size.scaled(box, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return image
    if image.width() > box.width() or image.height() > box.height():   # formats that ignore setScaledSize
        image = image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image.convertToFormat(QImage.Format.Format_RGB32)


class _LoadJob(QRunnable):
    def __init__(self, path: str, done: Signal) -> None:
        super().__init__()
        self.path, self.done = path, done

    def run(self) -> None:
        self.done.emit(self.path, load_scaled(self.path, THUMBNAIL_SIZE), load_scaled(self.path, PREVIEW_SIZE))


class ImageLoader(QObject):
    """Decodes thumbnails and previews on the thread pool: `load(path)` -> loaded(path, thumbnail, preview)."""

    loaded = Signal(str, object, object)

    def load(self, path: str) -> None:
        QThreadPool.globalInstance().start(_LoadJob(path, self.loaded))
