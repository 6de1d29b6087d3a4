"""Opening a dataset by kind (or by looking at the folder) for training and evaluation."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from engine.data.datasets import (
    CrossViewReader,
    CvactReader,
    CvCitiesReader,
    CvnafReader,
    CvusaReader,
    SyntheticCvnafReader,
    SyntheticVigorReader,
    VigorReader,
)
from engine.data.errors import DatasetError

#: (training split, evaluation split) of each kind.
DEFAULT_SPLITS = {
    "synthetic-cvnaf": ("train", "eval"), "cvnaf": ("train", "eval"),
    "synthetic-vigor": ("train", "test"), "vigor": ("train", "test"),
    "cvusa": ("train", "val"), "cvact": ("train", "val"), "cvcities": ("train", "test"),
}
#: `viewfinder eval --layout` names: "synthetic" picks the synthetic reader of the export's layout.
LAYOUTS = ("cvnaf", "vigor", "cvusa", "cvact", "cvcities", "synthetic")


def default_split(kind: str, training: bool) -> str:
    if kind not in DEFAULT_SPLITS:
        raise DatasetError(f"unknown dataset kind {kind!r}; choose from {', '.join(DEFAULT_SPLITS)}")
    return DEFAULT_SPLITS[kind][0 if training else 1]


def open_dataset(kind: str, root: str | Path, split: str | None = None, *, training: bool = False,
                 cities: Sequence[str] | None = None, vigor_mode: str = "same_area",
                 check_images: bool = False) -> CrossViewReader:
    """A reader of `kind` over `root`; split None -> the kind's training or evaluation split."""
    split = split or default_split(kind, training)
    root = Path(root)
    if kind == "synthetic-cvnaf":
        return SyntheticCvnafReader(root, split, cities, check_images=check_images)
    if kind == "cvnaf":
        return CvnafReader(root, split, cities, check_images=check_images)
    if kind == "synthetic-vigor":
        return SyntheticVigorReader(root, vigor_mode, split, cities, check_images=check_images)
    if kind == "vigor":
        return VigorReader(root, vigor_mode, split, cities, check_images=check_images)
    if kind == "cvusa":
        return CvusaReader(root, split, check_images=check_images)
    if kind == "cvact":
        return CvactReader(root, split, check_images=check_images)
    if kind == "cvcities":
        return CvCitiesReader(root, split, cities, check_images=check_images)
    raise DatasetError(f"unknown dataset kind {kind!r}; choose from {', '.join(DEFAULT_SPLITS)}")


def detect_kind(root: str | Path, layout: str | None = None) -> str:
    """The dataset kind of a folder: from `layout` (LAYOUTS) where given, else from its files."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found")
    synthetic_layout = None
    try:
        info = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
        synthetic_layout = info.get("layout") if isinstance(info, dict) else None
    except (OSError, ValueError):
        pass
    if layout == "synthetic" or (layout is None and synthetic_layout in ("cvnaf", "vigor")):
        if synthetic_layout not in ("cvnaf", "vigor"):
            raise DatasetError(f"{root}: no dataset.json of a synthetic CVNAF or VIGOR export")
        return f"synthetic-{synthetic_layout}"
    if layout is not None:
        if layout not in LAYOUTS:
            raise DatasetError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
        return layout
    if (root / "ACT_data.mat").is_file():
        return "cvact"
    if (root / "splits" / "train-19zl.csv").is_file() or (root / "splits" / "val-19zl.csv").is_file():
        return "cvusa"
    subfolders = [p for p in root.iterdir() if p.is_dir()]
    if any((p / "img_info_eval.csv").is_file() or (p / "img_info_train.csv").is_file() for p in subfolders):
        return "cvnaf"
    if any((p / "img_info.csv").is_file() for p in subfolders):
        return "cvcities"
    if (root / "splits").is_dir() or (root / "splits_new").is_dir():
        return "vigor"
    raise DatasetError(f"{root}: cannot tell the dataset layout; give --layout "
                       f"({', '.join(LAYOUTS)})")
