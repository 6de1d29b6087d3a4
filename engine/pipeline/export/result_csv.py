"""Results as CSV: one row per ranked position, exactly one rank-1 row per photo, failed photos as one row
with their error.

rank 1 is the answer: the manual position when a photo was corrected (method manual), the engine's positions
following as rank 2, 3, ...; else the engine's best (method = the pose matcher, or cafr for a tile's fine
position). Text cells a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading
apostrophe (OWASP's CSV-injection rule); number cells are written by us and never need it.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.pipeline.export.result_features import pose_is_rank1, result_warnings

if TYPE_CHECKING:
    from engine.pipeline.results import LocalizationResult

CSV_COLUMNS = ("photo", "status", "rank", "method", "lon", "lat", "x", "y", "crs", "heading_deg",
               "heading_sigma_deg", "fov_deg", "score", "confidence", "error_radius_m", "support", "warnings",
               "error", "photo_sha256", "model_id", "map_id", "time", "path")
TEXT_COLUMNS = ("photo", "status", "method", "crs", "support", "warnings", "error", "photo_sha256", "model_id",
                "map_id", "time", "path")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A text cell no spreadsheet evaluates: formula-like starts get a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _number(value, decimals: int) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{number:.{decimals}f}" if number == number and abs(number) != float("inf") else ""


def result_rows(result: LocalizationResult) -> list[dict]:
    warnings = result_warnings(result)
    common = {"photo": result.photo_name, "status": result.status, "crs": result.crs,
              "fov_deg": _number(result.fov_deg, 2), "photo_sha256": result.photo_sha256,
              "model_id": result.model_id, "map_id": result.map_id, "time": result.created, "path": result.photo,
              "warnings": "; ".join(warnings)}
    if result.status == "failed" or not (result.positions or result.manual_position is not None):
        return [{**common, "error": result.error or "no position found"}]
    rows, offset = [], 0
    if result.manual_position is not None:
        p = result.manual_position
        heading = result.positions[0].heading_deg if result.positions else None
        rows.append({**common, "rank": "1", "method": "manual", "lon": f"{p.lon:.7f}", "lat": f"{p.lat:.7f}",
                     "x": f"{p.x:.3f}", "y": f"{p.y:.3f}", "heading_deg": _number(heading, 1)})
        offset = 1
    pose_first = pose_is_rank1(result)
    for index, ranked in enumerate(result.positions):
        p, pose = ranked.position, (result.pose if index == 0 and pose_first else None)
        rows.append({**common, "rank": str(ranked.rank + offset), "method": pose.method if pose else "cafr",
                     "lon": f"{p.lon:.7f}", "lat": f"{p.lat:.7f}", "x": f"{p.x:.3f}", "y": f"{p.y:.3f}",
                     "heading_deg": _number(ranked.heading_deg, 1),
                     "heading_sigma_deg": _number(pose.heading_sigma_deg, 1) if pose else "",
                     "score": _number(ranked.score, 5), "confidence": _number(ranked.confidence, 5),
                     "error_radius_m": _number(pose.error_radius_m, 2) if pose else "",
                     "support": " ".join(map(str, ranked.support))})
    return rows


def csv_bytes(results: Iterable[LocalizationResult]) -> bytes:
    buffer = io.StringIO()
    # RFC 4180 line ends: the writer then quotes any cell holding a CR or LF, so rows never break
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for result in results:
        for row in result_rows(result):
            cells = {key: ("" if value is None else str(value)) for key, value in row.items()}
            writer.writerow({key: neutralise(value) if key in TEXT_COLUMNS else value
                             for key, value in cells.items()})
    return buffer.getvalue().encode("utf-8")
