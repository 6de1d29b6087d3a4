"""The dataset kinds Viewfinder reads, after timm's register_model / create_model.

Every reader class registers itself with `@register_dataset`, declaring its `kind`, its `--layout` name, its
splits (and the ones training and evaluation use by default) and a `detect(root)` that recognises its folder.
Opening a dataset, its default splits, the kinds a config may name and folder detection all loop over the
registry, so a new layout is one reader module and nothing else.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from engine.data.errors import DatasetError

if TYPE_CHECKING:
    from engine.data.datasets.base import CrossViewReader

ReaderClass = TypeVar("ReaderClass", bound=type)

_READERS: dict[str, type[CrossViewReader]] = {}


def register_dataset(reader: ReaderClass) -> ReaderClass:
    """Class decorator: make `reader` the reader of its `kind`. A kind is registered once."""
    kind = getattr(reader, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"{reader.__qualname__} declares no dataset kind")
    if kind in _READERS:
        raise ValueError(f"dataset kind {kind!r} is already registered by {_READERS[kind].__qualname__}")
    for purpose, split in (("training", reader.train_split), ("evaluation", reader.eval_split)):
        if split not in reader.splits:
            raise ValueError(f"{reader.__qualname__}: {purpose} split {split!r} is not one of {reader.splits}")
    _READERS[kind] = reader
    return reader


def dataset_kinds() -> tuple[str, ...]:
    """Every registered kind (the `data.kind` values of a training config), sorted."""
    return tuple(sorted(_READERS))


def layout_of(reader: type[CrossViewReader]) -> str:
    return reader.layout or reader.kind


def dataset_layouts() -> tuple[str, ...]:
    """The `viewfinder eval --layout` names, sorted; several kinds may share one ("synthetic")."""
    return tuple(sorted({layout_of(reader) for reader in _READERS.values()}))


def reader_class(kind: str) -> type[CrossViewReader]:
    try:
        return _READERS[kind]
    except KeyError:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose from {', '.join(dataset_kinds())}") from None


def default_split(kind: str, training: bool) -> str:
    reader = reader_class(kind)
    return reader.train_split if training else reader.eval_split


def open_dataset(kind: str, root: str | Path, split: str | None = None, *, training: bool = False,
                 cities: Sequence[str] | None = None, vigor_mode: str = "same_area",
                 check_images: bool = False) -> CrossViewReader:
    """A reader of `kind` over `root`; split None -> the kind's training or evaluation split."""
    reader = reader_class(kind)
    split = split or (reader.train_split if training else reader.eval_split)
    return reader.open_split(Path(root), split, cities=cities, vigor_mode=vigor_mode, check_images=check_images)


def detect_kind(root: str | Path, layout: str | None = None) -> str:
    """The dataset kind of a folder: among the kinds of `layout` where given, else of every layout, the first
    whose detect() recognises it, asking readers of higher detect_priority first."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    readers = sorted(_READERS.values(), key=lambda reader: -reader.detect_priority)   # stable: ties keep order
    if layout is not None:
        readers = [reader for reader in readers if layout_of(reader) == layout]
        if not readers:
            raise DatasetError(f"unknown layout {layout!r}; choose from {', '.join(dataset_layouts())}")
        if len(readers) == 1:
            return readers[0].kind
    for reader in readers:
        if reader.detect(root):
            return reader.kind
    if layout is not None:
        names = " or ".join(reader.dataset_name for reader in readers)
        raise DatasetError(f"{root}: not a {names} dataset (--layout {layout})")
    raise DatasetError(f"{root}: cannot tell the dataset layout; give --layout ({', '.join(dataset_layouts())})")
