"""CVNAF: narrow-FoV perspective photos with compass and FoV, satellite chips centred on each camera.

Layout: {root}/{City}/img_info_train.csv and img_info_eval.csv, no header, columns name, longitude,
latitude, fov, compass, city, ground path, satellite path (paths relative to the root). The optional
gps_dict_4_cities.pkl is ignored: Viewfinder never unpickles files and computes its own neighbours.
"""
from __future__ import annotations

import math

from engine.data.datasets.base import CityFoldersReader
from engine.data.datasets.records import PERSPECTIVE, CrossViewItem
from engine.data.datasets.registry import register_dataset

CVNAF_CITIES = ("Tuscany", "Salzburg", "Miami", "NewYork")
CVNAF_SPLIT_FILES = {"train": "img_info_train.csv", "eval": "img_info_eval.csv"}
CVNAF_COLUMNS = 8


def parse_float(text: str, name: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{name} is not finite: {text!r}")
    return value


@register_dataset
class CvnafReader(CityFoldersReader):
    """CVNAF pairs of one split ("train" or "eval") over `cities` (default: every city folder with that CSV).

    Every camera sits at its chip centre; heading = compass, FoV = the fov column.
    """

    dataset_name = "CVNAF"
    kind = "cvnaf"
    splits = tuple(CVNAF_SPLIT_FILES)
    train_split, eval_split = "train", "eval"
    signature_files = tuple(f"*/{name}" for name in CVNAF_SPLIT_FILES.values())
    detect_priority = 20

    def city_names(self) -> list[str]:
        if self.requested_cities is not None:
            return self.requested_cities
        csv_name = CVNAF_SPLIT_FILES[self.split]
        return sorted(p.name for p in self.root.iterdir() if (p / csv_name).is_file())

    def _index(self) -> None:
        for city in self.city_names():
            csv_path = self.root / city / CVNAF_SPLIT_FILES[self.split]
            for line_number, row in self._csv_rows(csv_path):
                try:
                    item = self._item(city, row)
                except ValueError as exc:
                    self._malformed(csv_path, line_number, str(exc))
                    continue
                self._add(item)

    def _item(self, city: str, row: list[str]) -> CrossViewItem:
        if len(row) != CVNAF_COLUMNS:
            raise ValueError(f"expected {CVNAF_COLUMNS} columns, got {len(row)}")
        name, lon, lat, fov, compass, row_city, ground, satellite = (cell.strip() for cell in row)
        fov_deg = parse_float(fov, "fov")
        if not 0.0 < fov_deg < 180.0:
            raise ValueError(f"fov {fov_deg} is outside (0, 180) degrees")
        return CrossViewItem(
            item_id=f"{city}/{name}", dataset="cvnaf", split=self.split, city=row_city or city,
            ground_path=self.root / ground, satellite_path=self.root / satellite, ground_kind=PERSPECTIVE,
            fov_deg=fov_deg, heading_deg=parse_float(compass, "compass") % 360.0,
            lon=parse_float(lon, "longitude"), lat=parse_float(lat, "latitude"))
