"""Dataset readers: each indexes one public (or synthetic) layout into CrossViewItem records and registers
itself by kind (registry.py); importing this package registers every built-in reader."""
from engine.data.datasets.base import CrossViewReader
from engine.data.datasets.cvact import CvactReader
from engine.data.datasets.cvcities import CvCitiesReader
from engine.data.datasets.cvnaf import CvnafReader
from engine.data.datasets.cvusa import CvusaReader
from engine.data.datasets.panorama import BENCHMARK_FOVS, PanoramaCrop, choose_panorama_crop, crop_panorama
from engine.data.datasets.records import PANORAMA, PERSPECTIVE, CrossViewItem, SatelliteRef, stable_item_key
from engine.data.datasets.registry import (
    dataset_kinds,
    dataset_layouts,
    default_split,
    detect_kind,
    open_dataset,
    reader_class,
    register_dataset,
)
from engine.data.datasets.synthetic import SyntheticCvnafReader, SyntheticVigorReader
from engine.data.datasets.vigor import VIGOR_METRES_PER_PX, VigorReader

__all__ = [
    "BENCHMARK_FOVS",
    "PANORAMA",
    "PERSPECTIVE",
    "VIGOR_METRES_PER_PX",
    "CrossViewItem",
    "CrossViewReader",
    "CvCitiesReader",
    "CvactReader",
    "CvnafReader",
    "CvusaReader",
    "PanoramaCrop",
    "SatelliteRef",
    "SyntheticCvnafReader",
    "SyntheticVigorReader",
    "VigorReader",
    "choose_panorama_crop",
    "crop_panorama",
    "dataset_kinds",
    "dataset_layouts",
    "default_split",
    "detect_kind",
    "open_dataset",
    "reader_class",
    "register_dataset",
    "stable_item_key",
]
