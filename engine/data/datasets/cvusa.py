"""CVUSA: north-aligned 360-degree street-view panoramas (1232 x 224) and aerial images centred on them.

Layout: splits/train-19zl.csv and splits/val-19zl.csv, no header: satellite path, ground panorama path,
annotation path (relative to the root; annotations are not used). The item id is the number in the satellite
file name; optional split_locations/all.csv (no header: satellite lat, lon, ground lat, lon, ...) holds the
GPS of item n on row n (1-based).
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from engine.data.datasets.base import CrossViewReader
from engine.data.datasets.cvnaf import parse_float
from engine.data.datasets.records import PANORAMA, CrossViewItem
from engine.data.datasets.registry import register_dataset

CVUSA_SPLIT_FILES = {"train": "splits/train-19zl.csv", "val": "splits/val-19zl.csv"}
CVUSA_LOCATIONS = "split_locations/all.csv"
#: CVUSA panoramas are north-aligned with north at the centre column (see panorama.py).
CVUSA_NORTH_X_FRACTION = 0.5


@register_dataset
class CvusaReader(CrossViewReader):
    """CVUSA pairs of split "train" or "val". Ground images are panoramas: narrow-FoV queries are crops."""

    dataset_name = "CVUSA"
    kind = "cvusa"
    splits = tuple(CVUSA_SPLIT_FILES)
    train_split, eval_split = "train", "val"
    signature_files = tuple(CVUSA_SPLIT_FILES.values())
    detect_priority = 30

    def _locations(self) -> list[tuple[float, float] | None]:
        """(lon, lat) of the ground camera per 1-based item number; empty when the optional file is absent."""
        text = self._read_text(self.root / CVUSA_LOCATIONS, required=False)
        if text is None:
            return []
        locations: list[tuple[float, float] | None] = []
        for row in csv.reader(io.StringIO(text)):
            try:
                locations.append((parse_float(row[3], "ground lon"), parse_float(row[2], "ground lat")))
            except (ValueError, IndexError):
                locations.append(None)   # keeps the row numbering; this item just has no GPS
        return locations

    def _index(self) -> None:
        split_path = self.root / CVUSA_SPLIT_FILES[self.split]
        rows = self._csv_rows(split_path)
        if not rows:
            return
        locations = self._locations()
        for line_number, row in rows:
            if len(row) < 2:
                self._malformed(split_path, line_number, f"expected satellite and ground paths, got {row}")
                continue
            satellite, ground = row[0].strip(), row[1].strip()
            digits = re.findall(r"\d+", Path(satellite).stem)
            if not digits:
                self._malformed(split_path, line_number, f"no item number in {satellite!r}")
                continue
            number = int(digits[-1])
            lonlat = locations[number - 1] if 0 < number <= len(locations) else None
            self._add(CrossViewItem(
                item_id=digits[-1], dataset="cvusa", split=self.split, city=None,
                ground_path=self.root / ground, satellite_path=self.root / satellite, ground_kind=PANORAMA,
                fov_deg=360.0, north_x_fraction=CVUSA_NORTH_X_FRACTION,
                lon=lonlat[0] if lonlat else None, lat=lonlat[1] if lonlat else None))
