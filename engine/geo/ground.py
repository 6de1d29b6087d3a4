"""True ground scale: which metric CRS a map is read in, and how far that CRS stretches the ground.

A map's CRS units are ground metres only in a conformal projection whose scale factor is close to 1 over
the map (UTM, national grids). Web Mercator at 50 degrees N stretches the ground 1.56 times; a geographic
raster has degrees. Such maps are warped to the local UTM zone (or, off the UTM domain or across zone
edges, a transverse Mercator centred on the map), where a CRS metre is a ground metre to within
`KEEP_DISTORTION`. A map too large for any single projection to hold `MAX_DISTORTION` is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyproj import CRS, Geod, Proj, Transformer

from engine.data.geometry import utm_crs_for_lonlat

EARTH_RADIUS_M = 6_371_008.8
EARTH_TOLERANCE = 0.01        # a body whose ellipsoid differs from Earth's by more than 1 % is not Earth
KEEP_DISTORTION = 0.005       # a map CRS within 0.5 % of true scale everywhere on the map is used as it is
MAX_DISTORTION = 0.02         # beyond 2 % the model's fixed ground resolution no longer holds
_GEOD = Geod(ellps="WGS84")


def body_problem(crs: CRS) -> str | None:
    """Why `crs` is not an Earth CRS (None when it is). Mars or Moon rasters index happily otherwise."""
    ellipsoid = crs.ellipsoid
    if ellipsoid is None:
        return None
    radius = float(ellipsoid.semi_major_metre)
    if abs(radius - 6_378_137.0) / 6_378_137.0 > EARTH_TOLERANCE:
        body = (crs.datum.name if crs.datum is not None else None) or ellipsoid.name or "unknown body"
        return (f"its CRS is not on Earth ({body}, radius {radius / 1000:.0f} km); Viewfinder localises on "
                "Earth maps only")
    return None


@dataclass(frozen=True)
class GroundFrame:
    """How a map is read: the CRS metres are measured in and what that costs."""

    crs: CRS                  # projected, metres
    keep_source: bool         # the map's own CRS is already true to scale
    distortion: float         # max |scale factor - 1| over the map in `crs`
    span_km: float            # geodesic length of the map's diagonal
    reason: str               # why this CRS (shown in the index plan)


def scale_distortion(crs: CRS, lons: np.ndarray, lats: np.ndarray) -> float:
    """Largest |scale - 1| of `crs` at the given points (meridian and parallel scale; inf where undefined)."""
    with np.errstate(all="ignore"):
        factors = Proj(crs).get_factors(np.asarray(lons, float), np.asarray(lats, float), errcheck=False)
        scales = np.concatenate([np.atleast_1d(factors.meridional_scale), np.atleast_1d(factors.parallel_scale)])
    scales = np.where(np.isfinite(scales), scales, np.inf)   # only called for CRSs in metres
    return float(np.max(np.abs(scales - 1.0)))


def local_tmerc(lon: float, lat: float) -> CRS:
    """A transverse Mercator centred on the map: true scale along its central meridian, anywhere on Earth."""
    return CRS.from_proj4(f"+proj=tmerc +lat_0={lat:.6f} +lon_0={lon:.6f} +k=1 +x_0=0 +y_0=0 "
                          "+datum=WGS84 +units=m +no_defs")


def span_km(lons: np.ndarray, lats: np.ndarray) -> float:
    """Geodesic diagonal of the sample grid's bounding corners, km."""
    lons, lats = np.asarray(lons, float).reshape(-1), np.asarray(lats, float).reshape(-1)
    corners = [(lons.min(), lats.min(), lons.max(), lats.max()), (lons.min(), lats.max(), lons.max(), lats.min())]
    return max(_GEOD.inv(a, b, c, d)[2] for a, b, c, d in corners) / 1000.0


def choose_ground_frame(source_crs: CRS | None, lons: np.ndarray, lats: np.ndarray) -> GroundFrame:
    """The metric CRS to read a map in, from its CRS and a grid of its points in lon/lat.

    source_crs None (GCP / RPC georeferencing) always warps."""
    lons, lats = np.asarray(lons, float).reshape(-1), np.asarray(lats, float).reshape(-1)
    span = span_km(lons, lats)
    if source_crs is not None and source_crs.is_projected and _is_metre(source_crs):
        own = scale_distortion(source_crs, lons, lats)
        if own <= KEEP_DISTORTION:
            return GroundFrame(source_crs, True, own, span, "the map's own CRS is true to scale")
        why = f"its CRS stretches the ground by up to {own:.1%}"
    elif source_crs is not None and source_crs.is_projected:
        why = "its CRS is not in metres"
    elif source_crs is not None:
        why = "it is in a geographic CRS (degrees)"
    else:
        why = "it is georeferenced by control points / RPCs"
    lon, lat = _centre_lonlat(lons, lats)
    options = []
    if -80.0 <= lat <= 84.0:
        utm = utm_crs_for_lonlat(lon, lat)
        options.append((utm, f"warped to {utm.name} because {why}"))
    options.append((local_tmerc(lon, lat), f"warped to a transverse Mercator centred on the map because {why}"))
    best = None
    for crs, reason in options:
        distortion = scale_distortion(crs, lons, lats)
        if distortion <= KEEP_DISTORTION:
            return GroundFrame(crs, False, distortion, span, reason)
        if best is None or distortion < best.distortion:
            best = GroundFrame(crs, False, distortion, span, reason)
    return best


def ground_resolution_m(transform, crs: CRS, col: float, row: float) -> tuple[float, float]:
    """Geodesic length of one pixel step east and south at (col, row) of a raster: metres on the ground."""
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    points = [transform @ (col, row), transform @ (col + 1, row), transform @ (col, row + 1)]
    (lon0, lat0), (lon1, lat1), (lon2, lat2) = (to_lonlat.transform(x, y) for x, y in points)
    return abs(_GEOD.inv(lon0, lat0, lon1, lat1)[2]), abs(_GEOD.inv(lon0, lat0, lon2, lat2)[2])


def _is_metre(crs: CRS) -> bool:
    return bool(crs.axis_info) and all(abs(a.unit_conversion_factor - 1.0) < 1e-12 for a in crs.axis_info[:2])


def _centre_lonlat(lons: np.ndarray, lats: np.ndarray) -> tuple[float, float]:
    """Centre of the points; longitudes averaged on the circle so maps across the antimeridian work."""
    angle = np.deg2rad(lons)
    lon = float(np.rad2deg(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())))
    return lon, float(np.clip((lats.min() + lats.max()) / 2.0, -89.9, 89.9))
