"""Reader base: indexes a dataset folder into CrossViewItems, reporting missing/corrupt files by name."""
from __future__ import annotations

import csv
import io
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
    #: What the registry (registry.py) knows a reader by: its dataset kind, its `--layout` name (None: the
    #: kind), every split it reads and the ones training and evaluation read by default.
    kind: ClassVar[str]
    layout: ClassVar[str | None] = None
    splits: ClassVar[tuple[str, ...]] = ()
    train_split: ClassVar[str]
    eval_split: ClassVar[str]
    #: Files (glob patterns under the root) that mark a folder of this layout: detect() looks for any of them.
    signature_files: ClassVar[tuple[str, ...]] = ()
    #: Folder detection asks readers of higher priority first: a layout whose signature can sit in another
    #: layout's folder (a synthetic CVNAF export is a CVNAF folder too) must outrank that layout.
    detect_priority: ClassVar[int] = 0

    def __init__(self, root: str | Path, split: str | None = None, *, check_images: bool = False) -> None:
        split = self.train_split if split is None else split
        if split not in self.splits:
            raise ValueError(f"{self.dataset_name} split must be one of {', '.join(self.splits)}, got {split!r}")
        self.split = split
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

    @classmethod
    def detect(cls, root: Path) -> bool:
        """Whether `root` (an existing folder) looks like this layout, from its file names alone."""
        return any(path.is_file() for pattern in cls.signature_files for path in root.glob(pattern))

    @classmethod
    def open_split(cls, root: Path, split: str, *, cities: Sequence[str] | None = None,
                   vigor_mode: str = "same_area", check_images: bool = False) -> CrossViewReader:
        """The reader of `split` over `root`, for the registry; options the layout has no use for are ignored."""
        return cls(root, split, check_images=check_images)

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

    def _csv_rows(self, path: Path) -> list[tuple[int, list[str]]]:
        """(line number, cells) of each non-blank row of a CSV index file; none when it is missing (reported)."""
        text = self._read_text(path)
        if text is None:
            return []
        return [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)
                if row and any(cell.strip() for cell in row)]

    def _malformed(self, path: Path, line_number: int, problem: str) -> None:
        self._skip(path, f"malformed line {line_number}: {problem}")
        self.dropped_items += 1


class CityFoldersReader(CrossViewReader):
    """A reader of a layout with one folder per city: `cities` picks some (default: every city of the split)."""

    def __init__(self, root: str | Path, split: str | None = None, cities: Sequence[str] | None = None, *,
                 check_images: bool = False) -> None:
        self.requested_cities = None if cities is None else list(cities)
        super().__init__(root, split, check_images=check_images)

    @classmethod
    def open_split(cls, root: Path, split: str, *, cities: Sequence[str] | None = None,
                   vigor_mode: str = "same_area", check_images: bool = False) -> CityFoldersReader:
        return cls(root, split, cities, check_images=check_images)
