"""Dataset readers: each indexes one public (or synthetic) layout into CrossViewItem records."""
from engine.data.datasets.base import CrossViewReader
from engine.data.datasets.cvact import CvactReader
from engine.data.datasets.cvcities import CvCitiesReader
from engine.data.datasets.cvnaf import CvnafReader
from engine.data.datasets.cvusa import CvusaReader
from engine.data.datasets.panorama import BENCHMARK_FOVS, PanoramaCrop, choose_panorama_crop, crop_panorama
from engine.data.datasets.records import PANORAMA, PERSPECTIVE, CrossViewItem, SatelliteRef, stable_item_key
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
    "stable_item_key",
]
