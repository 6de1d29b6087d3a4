"""The one API the app and the CLI call: open maps, index them, localise photos, export results.

    localizer = Localizer()                      # shipped default model, or the untrained one (logged)
    gallery = localizer.index_map("map.tif")     # cached per map content + model + tiling
    for result in localizer.localize_many(["a.jpg", "b.jpg"], gallery):
        ...                                      # LocalizationResult: status, candidates, ranked positions
    write_results_geojson(results, "results.geojson")
"""
from engine.data.geometry import lonlat_to_map, map_to_lonlat
from engine.geo.errors import GeoInputError, MapTooLarge, RasterError
from engine.geo.exif import photo_gps_lonlat
from engine.geo.photo import PHOTO_SUFFIXES, PhotoError, find_photos
from engine.geo.plan import IndexRefused
from engine.geo.priors import PriorOverrides, Priors, PriorSettings
from engine.geo.raster import MapRaster
from engine.geo.regions import MapRegion, plan_regions, write_regions
from engine.index.model_source import DEFAULT_MODEL_PATH
from engine.model import CheckpointError
from engine.pipeline.config import LocalizerConfig
from engine.pipeline.export import write_results_csv, write_results_geojson, write_results_html, write_results_json
from engine.pipeline.gallery import Gallery
from engine.pipeline.localizer import Localizer
from engine.pipeline.results import (
                                     DONE,
                                     FAILED,
                                     MANUAL,
                                     Candidate,
                                     GeoGrid,
                                     GeoImage,
                                     LocalizationResult,
                                     PoseEstimate,
                                     Position,
                                     RankedPosition,
)
from engine.pipeline.session import EngineJobs, MapInfo, Session, SessionError, read_map_info, read_project
from engine.progress import Cancelled, CancelToken, ProgressCallback

__all__ = [
    "CancelToken", "Cancelled", "Candidate", "CheckpointError", "DEFAULT_MODEL_PATH", "DONE", "FAILED", "Gallery",
    "GeoGrid", "GeoImage", "GeoInputError", "IndexRefused", "LocalizationResult", "Localizer", "LocalizerConfig",
    "MANUAL", "MapRaster", "MapRegion", "MapTooLarge", "PHOTO_SUFFIXES", "PhotoError", "PoseEstimate", "Position",
    "PriorOverrides", "PriorSettings", "Priors", "ProgressCallback", "RankedPosition", "RasterError", "EngineJobs",
    "MapInfo", "Session", "SessionError", "find_photos", "lonlat_to_map", "map_to_lonlat", "photo_gps_lonlat",
    "plan_regions", "read_map_info", "read_project", "write_regions", "write_results_csv", "write_results_geojson",
    "write_results_html", "write_results_json"
]
