"""Localisation results: plain dataclasses in map CRS and lon/lat that serialise to JSON and back.

These are the contract between the pipeline, the exports and the app: the app renders them and never
reaches into the model.
"""
from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from affine import Affine
from shapely import wkt
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

DONE, FAILED, MANUAL = "done", "failed", "manual"
STATUSES = (DONE, FAILED, MANUAL)


@dataclass
class GeoGrid:
    """A georeferenced 2-D array (attention map, score surface): values and the pixel -> map transform."""

    values: np.ndarray          # (rows, cols) float32
    transform: Affine           # rasterio convention: pixel corners at integers
    crs: str

    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.values.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def to_json(self) -> dict:
        values = np.ascontiguousarray(self.values, dtype=np.float32)
        return {"shape": list(values.shape), "values_b64": base64.b64encode(values.tobytes()).decode("ascii"),
                "transform": list(self.transform)[:6], "crs": self.crs}

    @classmethod
    def from_json(cls, data: dict) -> GeoGrid:
        values = np.frombuffer(base64.b64decode(data["values_b64"]), dtype=np.float32).reshape(data["shape"])
        return cls(values.copy(), Affine(*data["transform"]), data["crs"])


@dataclass
class GeoImage:
    """A georeferenced RGBA picture (the photo's bird's-eye view laid on the map): north-up pixels."""

    rgba: np.ndarray            # (rows, cols, 4) uint8; alpha 0 where the photo shows nothing
    transform: Affine
    crs: str

    def bounds(self) -> tuple[float, float, float, float]:
        rows, cols = self.rgba.shape[:2]
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def to_json(self) -> dict:
        rgba = np.ascontiguousarray(self.rgba, dtype=np.uint8)
        return {"shape": list(rgba.shape), "rgba_b64": base64.b64encode(rgba.tobytes()).decode("ascii"),
                "transform": list(self.transform)[:6], "crs": self.crs}

    @classmethod
    def from_json(cls, data: dict) -> GeoImage:
        rgba = np.frombuffer(base64.b64decode(data["rgba_b64"]), dtype=np.uint8).reshape(data["shape"])
        return cls(rgba.copy(), Affine(*data["transform"]), data["crs"])


@dataclass
class Position:
    """A point in the map CRS and in lon/lat (EPSG:4326, lon first)."""

    x: float
    y: float
    lon: float
    lat: float


@dataclass
class Candidate:
    """One retrieved map tile and what the model says about the photo inside it."""

    rank: int                              # 1 = best
    tile_index: int
    score: float                           # cosine similarity of the global descriptors
    footprint: Polygon                     # tile extent, map CRS
    position: Position                     # fine-head camera position
    heading_deg: float                     # fine-head heading estimate (compass)
    confidence: float                      # in [0, 1]
    overlap_region: BaseGeometry | None = None     # thresholded attention, map CRS (the SRS region)
    cwr_points: list[Position] = field(default_factory=list)   # per attention level, finest first
    attention: list[GeoGrid] = field(default_factory=list)     # per attention level, finest first
    fine_probabilities: GeoGrid | None = None                   # grid-cell probabilities over the tile

    def to_json(self) -> dict:
        return {
            "rank": self.rank, "tile_index": self.tile_index, "score": self.score,
            "footprint": self.footprint.wkt, "position": asdict(self.position), "heading_deg": self.heading_deg,
            "confidence": self.confidence,
            "overlap_region": self.overlap_region.wkt if self.overlap_region is not None else None,
            "cwr_points": [asdict(p) for p in self.cwr_points],
            "attention": [g.to_json() for g in self.attention],
            "fine_probabilities": self.fine_probabilities.to_json() if self.fine_probabilities else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> Candidate:
        return cls(
            rank=data["rank"], tile_index=data["tile_index"], score=data["score"],
            footprint=wkt.loads(data["footprint"]), position=Position(**data["position"]),
            heading_deg=data["heading_deg"], confidence=data["confidence"],
            overlap_region=wkt.loads(data["overlap_region"]) if data.get("overlap_region") else None,
            cwr_points=[Position(**p) for p in data.get("cwr_points", [])],
            attention=[GeoGrid.from_json(g) for g in data.get("attention", [])],
            fine_probabilities=(GeoGrid.from_json(data["fine_probabilities"])
                                if data.get("fine_probabilities") else None))


@dataclass
class RankedPosition:
    """A camera position after merging candidates from overlapping tiles (best first)."""

    rank: int
    position: Position
    score: float
    confidence: float
    heading_deg: float
    support: list[int] = field(default_factory=list)   # candidate ranks merged into this position


@dataclass
class PoseEstimate:
    """The camera pose from the pose volume (ground-plane matching): position, heading and their spread.

    confidence is P(error <= confidence_radius_m): the volume's probability mass within that radius of the
    position, calibrated on held-out worlds (see docs/localization.md); an analyst can read it as a probability.
    """

    position: Position
    heading_deg: float                     # compass, [0, 360)
    heading_sigma_deg: float               # circular 1-sigma of the heading marginal
    covariance_m2: list[list[float]]       # 2x2 position covariance, map CRS (x east, y north)
    confidence: float                      # P(error <= confidence_radius_m)
    confidence_radius_m: float
    credible_region: BaseGeometry | None   # the 95 % highest-probability region, map CRS
    credible_level: float = 0.95
    surface: GeoGrid | None = None         # probability per map cell (heading marginalised), sums to 1
    bev: GeoImage | None = None            # the photo's colours on the ground plane at this pose
    method: str = "bev-pose"               # which matcher made it (model features or the colour baseline)
    search_region: Polygon | None = None   # where hypotheses were scored, map CRS

    @property
    def error_radius_m(self) -> float:
        """Radius of a circle with the 95 % region's area (a single number for tables)."""
        if self.credible_region is None or self.credible_region.is_empty:
            return float("nan")
        return float(np.sqrt(self.credible_region.area / np.pi))

    def to_json(self) -> dict:
        return {
            "position": asdict(self.position), "heading_deg": self.heading_deg,
            "heading_sigma_deg": self.heading_sigma_deg, "covariance_m2": self.covariance_m2,
            "confidence": self.confidence, "confidence_radius_m": self.confidence_radius_m,
            "credible_region": self.credible_region.wkt if self.credible_region is not None else None,
            "credible_level": self.credible_level,
            "surface": self.surface.to_json() if self.surface is not None else None,
            "bev": self.bev.to_json() if self.bev is not None else None, "method": self.method,
            "search_region": self.search_region.wkt if self.search_region is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> PoseEstimate:
        return cls(
            position=Position(**data["position"]), heading_deg=data["heading_deg"],
            heading_sigma_deg=data["heading_sigma_deg"], covariance_m2=data["covariance_m2"],
            confidence=data["confidence"], confidence_radius_m=data["confidence_radius_m"],
            credible_region=wkt.loads(data["credible_region"]) if data.get("credible_region") else None,
            credible_level=data.get("credible_level", 0.95),
            surface=GeoGrid.from_json(data["surface"]) if data.get("surface") else None,
            bev=GeoImage.from_json(data["bev"]) if data.get("bev") else None, method=data.get("method", "bev-pose"),
            search_region=wkt.loads(data["search_region"]) if data.get("search_region") else None)


@dataclass
class LocalizationResult:
    """Everything known about one photo's localisation. `status` is done, failed (with `error`) or manual."""

    photo: str                       # path of the photo as given
    status: str
    crs: str = ""
    photo_sha256: str = ""
    model_id: str = ""
    map_id: str = ""
    error: str | None = None
    fov_deg: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    positions: list[RankedPosition] = field(default_factory=list)
    priors: dict[str, Any] = field(default_factory=dict)     # what EXIF / the user constrained
    timings_ms: dict[str, float] = field(default_factory=dict)
    created: str = ""                # ISO time the result was made
    manual_position: Position | None = None                  # set by a manual correction
    score_surface: GeoGrid | None = None     # retrieval score of every gallery tile ("where could it be")
    pose: PoseEstimate | None = None         # the answer of the pose volume (None: retrieval only / failed)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def photo_name(self) -> str:
        return self.photo.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def best(self) -> RankedPosition | None:
        """The position to report: the manual one when corrected, else the top merged position.

        A manual position has no model confidence (NaN: shown as "manual", never as a probability of 1)."""
        if self.manual_position is not None:
            top = self.positions[0] if self.positions else None
            return RankedPosition(1, self.manual_position, top.score if top else float("nan"),
                                  float("nan"), top.heading_deg if top else float("nan"))
        return self.positions[0] if self.positions else None

    @property
    def method(self) -> str:
        return "manual" if self.manual_position is not None else "cafr"

    def corrected(self, position: Position) -> LocalizationResult:
        """A copy with a manual position (status manual)."""
        return replace(self, status=MANUAL, manual_position=position)

    def to_json(self) -> dict:
        return {
            "photo": self.photo, "status": self.status, "crs": self.crs, "photo_sha256": self.photo_sha256,
            "model_id": self.model_id, "map_id": self.map_id, "error": self.error, "fov_deg": self.fov_deg,
            "candidates": [c.to_json() for c in self.candidates],
            "positions": [{**asdict(p)} for p in self.positions],
            "priors": self.priors, "timings_ms": self.timings_ms, "created": self.created,
            "manual_position": asdict(self.manual_position) if self.manual_position else None,
            "score_surface": self.score_surface.to_json() if self.score_surface is not None else None,
            "pose": self.pose.to_json() if self.pose is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> LocalizationResult:
        positions = [RankedPosition(p["rank"], Position(**p["position"]), p["score"], p["confidence"],
                                    p["heading_deg"], list(p.get("support", []))) for p in data.get("positions", [])]
        return cls(
            photo=data["photo"], status=data["status"], crs=data.get("crs", ""),
            photo_sha256=data.get("photo_sha256", ""), model_id=data.get("model_id", ""),
            map_id=data.get("map_id", ""), error=data.get("error"), fov_deg=data.get("fov_deg"),
            candidates=[Candidate.from_json(c) for c in data.get("candidates", [])], positions=positions,
            priors=data.get("priors", {}), timings_ms=data.get("timings_ms", {}), created=data.get("created", ""),
            manual_position=Position(**data["manual_position"]) if data.get("manual_position") else None,
            score_surface=GeoGrid.from_json(data["score_surface"]) if data.get("score_surface") else None,
            pose=PoseEstimate.from_json(data["pose"]) if data.get("pose") else None)

    def dumps(self) -> str:
        return json.dumps(self.to_json())

    @classmethod
    def loads(cls, text: str) -> LocalizationResult:
        return cls.from_json(json.loads(text))
