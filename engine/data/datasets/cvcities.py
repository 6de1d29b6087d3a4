"""CV-Cities: street-view panoramas and satellite images of 16 cities worldwide.

Layout: one folder per city holding img_info.csv, no header: name, longitude, latitude, city, satellite
path, panorama path (relative to the data folder, i.e. the root holding the city folders).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.data.datasets.base import CityFoldersReader
from engine.data.datasets.cvnaf import parse_float
from engine.data.datasets.records import PANORAMA, CrossViewItem
from engine.data.datasets.registry import register_dataset

CVCITIES_TEST_CITIES = ("Taipei", "Singapore", "London", "Seattle", "Rio", "Sydney")
CVCITIES_CSV = "img_info.csv"
CVCITIES_SPLITS = ("train", "test", "all")
CVCITIES_COLUMNS = 6


@register_dataset
class CvCitiesReader(CityFoldersReader):
    """CV-Cities pairs. split "train" = every city folder but the six test cities, "test" = those six,
    "all" = every city; `cities` overrides the choice. Panoramas are taken as north-aligned with north at
    the centre column (`north_x_fraction`, None when their orientation should be treated as unknown).
    """

    dataset_name = "CV-Cities"
    kind = "cvcities"
    splits = CVCITIES_SPLITS
    train_split, eval_split = "train", "test"
    signature_files = (f"*/{CVCITIES_CSV}",)
    detect_priority = 10

    def __init__(self, root: str | Path, split: str = "train", cities: Sequence[str] | None = None, *,
                 north_x_fraction: float | None = 0.5, check_images: bool = False) -> None:
        self.north_x_fraction = north_x_fraction
        super().__init__(root, split, cities, check_images=check_images)

    def city_names(self) -> list[str]:
        if self.requested_cities is not None:
            return self.requested_cities
        present = sorted(p.name for p in self.root.iterdir() if (p / CVCITIES_CSV).is_file())
        if self.split == "test":
            return [c for c in present if c in CVCITIES_TEST_CITIES]
        if self.split == "train":
            return [c for c in present if c not in CVCITIES_TEST_CITIES]
        return present

    def _index(self) -> None:
        for city in self.city_names():
            csv_path = self.root / city / CVCITIES_CSV
            for line_number, row in self._csv_rows(csv_path):
                if len(row) != CVCITIES_COLUMNS:
                    self._malformed(csv_path, line_number,
                                    f"expected {CVCITIES_COLUMNS} columns, got {len(row)}")
                    continue
                name, lon, lat, row_city, satellite, panorama = (cell.strip() for cell in row)
                try:
                    lon_value, lat_value = parse_float(lon, "longitude"), parse_float(lat, "latitude")
                except ValueError as exc:
                    self._malformed(csv_path, line_number, str(exc))
                    continue
                self._add(CrossViewItem(
                    item_id=f"{city}/{name}", dataset="cvcities", split=self.split, city=row_city or city,
                    ground_path=self.root / panorama, satellite_path=self.root / satellite,
                    ground_kind=PANORAMA, fov_deg=360.0, north_x_fraction=self.north_x_fraction,
                    lon=lon_value, lat=lat_value))
