"""Maps too large for one ground frame: what the app offers (cut into regions, open one) and which region it
suggests. No widgets here (app.region_chooser draws the questions)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.pipeline import MapRegion, Session

REGION_SPAN_TEXT = "about 500 km"       # write_regions' default span, as the question says it


@dataclass
class RegionOffer:
    """A map the engine refused as too large, and what was dropped with it (it follows the chosen region)."""

    path: str
    region_count: int
    then_photos: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).name

    def question(self) -> str:
        return (f"{self.name} is too large for one ground frame ({self.region_count} regions of "
                f"{REGION_SPAN_TEXT}). Cut it into regions and open one?")


def photo_lonlats(session: Session) -> tuple[list[tuple[float, float]], list[str]]:
    """Where the session's photos are known to be without reading any file (a manual correction, else the
    EXIF GPS prior a result carries), and the paths of the photos not placed yet (the engine process reads
    their EXIF GPS when it writes the regions)."""
    points, unplaced = [], []
    for record in session.photos:
        manual = record.result.manual_position if record.result is not None else record.carried
        prior = (record.result.priors or {}).get("position") if record.result is not None else None
        if manual is not None:
            points.append((manual.lon, manual.lat))
        elif prior:
            points.append((float(prior["lon"]), float(prior["lat"])))
        else:
            unplaced.append(record.path)
    return points, unplaced


def photos_in(region: MapRegion, lonlats: list[tuple[float, float]]) -> int:
    west, south, east, north = region.lonlat_bounds
    return sum(1 for lon, lat in lonlats if west <= lon <= east and south <= lat <= north)


def busiest_region(counts: list[int]) -> int:
    """The index of the region holding most photos (the first on a tie, and when none holds any)."""
    return counts.index(max(counts)) if counts else 0
