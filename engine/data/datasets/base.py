"""Reader base: indexes a dataset folder into CrossViewItems, reporting missing/corrupt files by name."""
from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from PIL import Image, UnidentifiedImageError

from engine.data.datasets.records import CrossViewItem
from engine.data.errors import DatasetError, EmptyDatasetError, SkippedFile

logger = logging.getLogger(__name__)

#: Skipped files logged one by one; beyond this only the summary line names the count.
MAX_LOGGED_SKIPS = 20
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)


def image_problem(path: Path) -> str | None:
    """None when the file decodes as an image, else the reason."""
    try:
        with Image.open(path) as image:
            image.load()
    except IMAGE_ERRORS as exc:
        return f"unreadable image ({type(exc).__name__}: {exc})"
    return None


class CrossViewReader(Sequence[CrossViewItem]):
    """Base of every reader: `items` (usable pairs), `skipped` ((path, reason) for each file left out),
    `dropped_items` (pairs not yielded because of them) and `gallery` (satellite images to retrieve from).

    Readers check that files exist; with `check_images=True` they also decode every image once (slow on a
    full dataset) so that corrupt files are skipped here rather than when a Dataset loads them.
    An existing folder without a single usable item raises EmptyDatasetError naming the folder.
    """

    dataset_name: ClassVar[str] = "dataset"

    def __init__(self, root: str | Path, *, check_images: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: {self.dataset_name} folder not found")
        self.check_images = check_images
        self.items: list[CrossViewItem] = []
        self.skipped: list[SkippedFile] = []
        self.dropped_items = 0
        self.gallery: list[Path] = []
        self._file_ok: dict[Path, bool] = {}
        self._index()
        if not self.items:
            examples = "; ".join(str(s) for s in self.skipped[:3])
            detail = f": {examples}" if examples else ""
            raise EmptyDatasetError(f"{self.root}: no usable {self.dataset_name} items "
                                    f"({len(self.skipped)} files skipped{detail})")
        if not self.gallery:
            self.gallery = list(dict.fromkeys(item.satellite_path for item in self.items))
        if self.skipped:
            logger.warning("%s %s: %d files skipped, %d items dropped, %d items kept", self.dataset_name,
                           self.root, len(self.skipped), self.dropped_items, len(self.items))

    @abstractmethod
    def _index(self) -> None:
        """Fill self.items (via _add), self.skipped and, where the layout lists one, self.gallery."""

    # ------------------------------------------------------------ Sequence
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def __iter__(self) -> Iterator[CrossViewItem]:
        return iter(self.items)

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    # ------------------------------------------------------------ helpers for subclasses
    def _skip(self, path: Path | str, reason: str) -> None:
        entry = SkippedFile(Path(path), reason)
        self.skipped.append(entry)
        if len(self.skipped) <= MAX_LOGGED_SKIPS:
            logger.warning("%s: skipped %s", self.dataset_name, entry)

    def _file_usable(self, path: Path) -> bool:
        """Whether a file exists (and decodes, with check_images); each bad file is reported once."""
        known = self._file_ok.get(path)
        if known is not None:
            return known
        problem = None if path.is_file() else "missing"
        if problem is None and self.check_images:
            problem = image_problem(path)
        if problem is not None:
            self._skip(path, problem)
        self._file_ok[path] = problem is None
        return problem is None

    def _files_usable(self, paths: Sequence[Path]) -> bool:
        results = [self._file_usable(p) for p in paths]   # every path, so each bad one is reported
        return all(results)

    def _add(self, item: CrossViewItem) -> None:
        """Keep the item if its ground and satellite files are usable, else count it as dropped."""
        if self._files_usable([item.ground_path, item.satellite_path]):
            self.items.append(item)
        else:
            self.dropped_items += 1

    def _read_text(self, path: Path, *, required: bool = True) -> str | None:
        """An index file's text; a missing or undecodable one is reported (when required) and gives None."""
        if not path.is_file():
            if required:
                self._skip(path, "missing")
            return None
        try:
            return path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self._skip(path, f"unreadable index file ({type(exc).__name__}: {exc})")
            return None

    def _malformed(self, path: Path, line_number: int, problem: str) -> None:
        self._skip(path, f"malformed line {line_number}: {problem}")
        self.dropped_items += 1
