"""Results as GeoJSON features with a fixed property schema (RFC 7946: WGS84 lon/lat, 7 decimals,
counter-clockwise exterior rings).

Every feature carries every property of PROPERTIES, each of one JSON type or null, so a GIS reading the file
gets the same column types whatever the batch held (a FoV is never a string, a missing number is null,
never NaN). One photo gives:
- kind "position": a Point per ranked position. rank 1 is the answer: the manual position when corrected
  (method "manual"; the engine's positions follow as rank 2, 3, ...), else the engine's best.
- kind "credible_region": the pose's 95 % region (Polygon), rank 1.
- kind "overlap" / "footprint": per retrieved tile, what the photo sees and the tile, rank = tile rank.
- kind "failed": a failed photo, geometry null, with its error.
Polygons are clipped to the map when the map's bounds are given.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pyproj import Transformer
from shapely import ops
from shapely.geometry import Point, box, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

if TYPE_CHECKING:
    from engine.pipeline.results import LocalizationResult

POSITION, CREDIBLE, OVERLAP, FOOTPRINT, FAILED_KIND = "position", "credible_region", "overlap", "footprint", "failed"
COORDINATE_DECIMALS = 7

#: property -> JSON type ("string", "integer", "number"); every feature has every property (null allowed)
PROPERTIES: dict[str, str] = {
    "kind": "string", "photo": "string", "status": "string", "rank": "integer", "method": "string",
    "score": "number", "confidence": "number", "heading_deg": "number", "heading_sigma_deg": "number",
    "error_radius_m": "number", "fov_deg": "number", "fov_source": "string", "warnings": "string",
    "error": "string", "photo_sha256": "string", "model_id": "string", "map_id": "string", "time": "string",
}
DECIMALS = {"score": 6, "confidence": 6, "heading_deg": 2, "heading_sigma_deg": 2, "error_radius_m": 2,
            "fov_deg": 2}

Bounds = tuple[float, float, float, float]


def result_warnings(result: LocalizationResult) -> list[str]:
    """Every doubt recorded about a result: prior warnings, unused priors, photo warnings."""
    priors = result.priors or {}
    found = [str(w) for w in priors.get("warnings", []) or []]
    found += [str(v) for k, v in priors.items() if k.endswith("_unused") and v]
    found += [str(w) for w in getattr(result, "warnings", None) or [] if str(w) not in found]
    return found


def pose_is_rank1(result: LocalizationResult) -> bool:
    """The engine's rank-1 position is the pose volume's answer (not a retrieval tile's fine position)."""
    pose = result.pose
    if pose is None or not result.positions:
        return False
    first = result.positions[0].position
    return math.isclose(first.x, pose.position.x, abs_tol=1e-6) and math.isclose(first.y, pose.position.y,
                                                                                 abs_tol=1e-6)


def _clean(name: str, value):
    """A property value of its schema type: None for missing / non-finite, rounded numbers."""
    if value is None:
        return None
    kind = PROPERTIES[name]
    if kind == "string":
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if kind == "integer":
        return int(round(number))
    return round(number, DECIMALS.get(name, 6))


def _properties(**values) -> dict:
    return {name: _clean(name, values.get(name)) for name in PROPERTIES}


def _common(result: LocalizationResult) -> dict:
    warnings = result_warnings(result)
    return {"photo": result.photo_name, "status": result.status, "fov_deg": result.fov_deg,
            "fov_source": (result.priors or {}).get("fov_source"), "photo_sha256": result.photo_sha256 or None,
            "model_id": result.model_id or None, "map_id": result.map_id or None, "time": result.created or None,
            "warnings": "; ".join(warnings) if warnings else None}


def result_features(result: LocalizationResult, map_bounds: Bounds | None = None
                    ) -> list[tuple[dict, BaseGeometry | None]]:
    """(properties, geometry in the result's map CRS or None) for one photo, in the order documented above."""
    common = _common(result)
    if result.status == "failed" or not (result.positions or result.manual_position is not None):
        return [(_properties(kind=FAILED_KIND, error=result.error or "no position found", **common), None)]
    clip = box(*map_bounds) if map_bounds is not None else None
    features: list[tuple[dict, BaseGeometry | None]] = []
    offset = 0
    if result.manual_position is not None:
        p = result.manual_position
        heading = result.positions[0].heading_deg if result.positions else None
        features.append((_properties(kind=POSITION, rank=1, method="manual", heading_deg=heading, **common),
                         Point(p.x, p.y)))
        offset = 1
    pose_first = pose_is_rank1(result)
    for index, ranked in enumerate(result.positions):
        pose = result.pose if index == 0 and pose_first else None
        features.append((_properties(
            kind=POSITION, rank=ranked.rank + offset, method=pose.method if pose else "cafr", score=ranked.score,
            confidence=ranked.confidence, heading_deg=ranked.heading_deg,
            heading_sigma_deg=pose.heading_sigma_deg if pose else None,
            error_radius_m=pose.error_radius_m if pose else None, **common),
            Point(ranked.position.x, ranked.position.y)))
    pose = result.pose
    if pose is not None and pose.credible_region is not None and not pose.credible_region.is_empty:
        region = _clipped(pose.credible_region, clip)
        if region is not None:
            features.append((_properties(kind=CREDIBLE, rank=1 + offset, method=pose.method,
                                         confidence=pose.credible_level, heading_deg=pose.heading_deg,
                                         heading_sigma_deg=pose.heading_sigma_deg,
                                         error_radius_m=pose.error_radius_m, **common), region))
    for candidate in result.candidates:
        values = {"rank": candidate.rank, "method": "cafr", "score": candidate.score,
                  "confidence": candidate.confidence, "heading_deg": candidate.heading_deg, **common}
        if candidate.overlap_region is not None:
            region = _clipped(candidate.overlap_region, clip)
            if region is not None:
                features.append((_properties(kind=OVERLAP, **values), region))
        footprint = _clipped(candidate.footprint, clip)
        if footprint is not None:
            features.append((_properties(kind=FOOTPRINT, **values), footprint))
    return features


def _clipped(geometry: BaseGeometry, clip) -> BaseGeometry | None:
    if clip is None:
        return geometry
    part = geometry.intersection(clip)
    if part.is_empty:
        return None
    polygons = [g for g in getattr(part, "geoms", [part]) if g.geom_type == "Polygon" and g.area > 0]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else ops.unary_union(polygons)


def _to_lonlat(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return ops.transform(transformer.transform, geometry)


def _rfc7946(geometry: BaseGeometry) -> dict:
    """GeoJSON geometry: counter-clockwise exteriors, clockwise holes, 7 decimals (about 1 cm)."""
    if geometry.geom_type == "Polygon":
        geometry = orient(geometry, 1.0)
    elif geometry.geom_type == "MultiPolygon":
        geometry = type(geometry)([orient(g, 1.0) for g in geometry.geoms])
    shape = dict(mapping(geometry))
    shape["coordinates"] = _round(shape["coordinates"])
    return shape


def _round(value):
    if isinstance(value, float):
        return round(value, COORDINATE_DECIMALS)
    if isinstance(value, (list, tuple)):
        return [_round(v) for v in value]
    return value


def feature_collection(results: Iterable[LocalizationResult], map_bounds: Bounds | None = None) -> dict:
    """The RFC 7946 FeatureCollection of every result (failed photos included, geometry null)."""
    features = []
    for result in results:
        for properties, geometry in result_features(result, map_bounds):
            shape = None if geometry is None else _rfc7946(_to_lonlat(geometry, result.crs))
            features.append({"type": "Feature", "properties": properties, "geometry": shape})
    return {"type": "FeatureCollection", "features": features}


def geojson_bytes(results: Sequence[LocalizationResult], map_bounds: Bounds | None = None) -> bytes:
    return json.dumps(feature_collection(results, map_bounds), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")
