"""Magnetic declination from the World Magnetic Model (pygeomag, offline coefficient files).

A compass heading (EXIF GPSImgDirectionRef = M) plus the declination at the photo's place and date is a
heading from true north. Declination reaches 10-20 degrees in much of North America, Siberia and the
southern oceans, so using magnetic headings as true north would rotate the heading prior by that much.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

#: WMM coefficient files shipped with pygeomag: (first year, file); each model is valid for five years
_MODELS = ((2010.0, "WMM_2010.COF"), (2015.0, "WMM_2015v2.COF"), (2020.0, "WMM_2020.COF"),
           (2025.0, "WMM_2025.COF"))


@dataclass(frozen=True)
class Declination:
    degrees: float          # east positive: true heading = magnetic heading + degrees
    model: str              # e.g. "WMM2025"
    note: str | None        # set when the date lies outside the model's span (an extrapolation)


def decimal_year(when: datetime) -> float:
    start = datetime(when.year, 1, 1, tzinfo=when.tzinfo)
    end = datetime(when.year + 1, 1, 1, tzinfo=when.tzinfo)
    return when.year + (when - start).total_seconds() / (end - start).total_seconds()


@lru_cache(maxsize=8)
def _geomag(filename: str):
    import os

    import pygeomag
    from pygeomag import GeoMag
    return GeoMag(coefficients_file=os.path.join(os.path.dirname(pygeomag.__file__), "wmm", filename))


def declination(lon: float, lat: float, when: datetime | None) -> Declination | None:
    """Declination at (lon, lat) on `when` (None: today); None when no model package is installed."""
    try:
        import pygeomag  # noqa: F401
    except ImportError:
        return None
    year = decimal_year(when or datetime.now(UTC))
    first, filename = _MODELS[0]
    for start, name in _MODELS:
        if year >= start:
            first, filename = start, name
    note = None
    if not first <= year < first + 5.0:
        note = (f"the photo's date ({year:.1f}) is outside the magnetic model's {first:.0f}-{first + 5:.0f} span; "
                "its declination is extrapolated")
    result = _geomag(filename).calculate(glat=float(lat), glon=float(lon), alt=0.0, time=year,
                                         allow_date_outside_lifespan=True)
    return Declination(float(result.d), f"WMM{first:.0f}", note)
