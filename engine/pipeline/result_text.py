"""A result as the analyst reads it: the one heading, what confidence means, the identify listing.

Shared by the app's table, identify panel and map tooltips, so every view says the same thing."""
from __future__ import annotations

import math

from engine.pipeline.results import FAILED, LocalizationResult
from engine.pipeline.session_values import PhotoRecord

CONFIDENCE_DEFINITION = ("Confidence is the calibrated probability that the camera lies within the stated radius "
                         "of the reported position: P(error ≤ r), from the pose volume's probability mass.")


def heading_of(result: LocalizationResult | None) -> float:
    """The one heading of a result: the reported position's (the pose's when there is one)."""
    if result is None:
        return float("nan")
    if result.pose is not None:
        return float(result.pose.heading_deg)
    best = result.best
    return float(best.heading_deg) if best is not None else float("nan")


def confidence_of(result: LocalizationResult | None) -> float | None:
    """The calibrated probability to show, or None (manual, failed or nothing calibrated)."""
    if result is None or result.status == FAILED or result.manual_position is not None:
        return None
    if result.pose is not None:
        return float(result.pose.confidence)
    return None


def confidence_text(result: LocalizationResult | None) -> str:
    if result is None or result.status == FAILED:
        return "–"
    if result.manual_position is not None:
        return "manual"
    value = confidence_of(result)
    if value is None:
        return "n/a"       # retrieval only: its numbers are similarities, not probabilities
    return f"{value:.2f}"


def confidence_tooltip(result: LocalizationResult | None) -> str:
    if result is None or result.status == FAILED:
        return CONFIDENCE_DEFINITION
    if result.manual_position is not None:
        return "Placed by hand: the analyst's position, no model probability."
    if result.pose is None:
        return ("No pose estimate (retrieval only): the score is a descriptor similarity and no calibrated "
                "confidence exists. " + CONFIDENCE_DEFINITION)
    pose = result.pose
    return (f"P(error ≤ {pose.confidence_radius_m:.0f} m) = {pose.confidence:.2f}. " + CONFIDENCE_DEFINITION
            + f" 95 % credible region: radius ≈ {pose.error_radius_m:.0f} m.")


def error_radius_of(result: LocalizationResult | None) -> float:
    if result is None or result.pose is None or result.manual_position is not None:
        return float("nan")
    return float(result.pose.error_radius_m)


def _number(value, digits: int, unit: str = "") -> str:
    return f"{value:.{digits}f}{unit}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def priors_text(result: LocalizationResult) -> str:
    priors = result.priors or {}
    parts = []
    position = priors.get("position")
    if position:
        unused = " (off the map, unused)" if priors.get("position_prior_unused") else ""
        parts.append(f"position {position.get('source', 'exif')} ±{_number(position.get('radius_m'), 0, ' m')}"
                     f"{unused}")
    heading = priors.get("heading")
    if heading:
        parts.append(f"heading {_number(heading.get('heading_deg'), 0, '°')} "
                     f"±{_number(heading.get('tolerance_deg'), 0, '°')} ({heading.get('source', 'exif')})")
    if priors.get("fov_deg") is not None:
        parts.append(f"FoV {_number(priors.get('fov_deg'), 0, '°')} ({priors.get('fov_source', '?')})")
    return ", ".join(parts) or "none"


def identify(record: PhotoRecord) -> list[tuple[str, str]]:
    """What the identify tool lists for a photo: (field, value) rows."""
    result = record.result
    rows = [("Photo", record.name), ("Status", record.status)]
    if result is None:
        return rows + [("Flags", "; ".join(record.flags + record.warnings) or "none")]
    if result.status == FAILED:
        return rows + [("Error", result.error or "unknown error"), ("Model", result.model_id or "–")]
    best = result.best
    method = "manual" if result.manual_position is not None else (result.pose.method if result.pose else "cafr")
    rows += [("Method", method)]
    if best is not None:
        rows += [("Longitude, latitude", f"{best.position.lon:.6f}, {best.position.lat:.6f}"),
                 ("Map x, y", f"{best.position.x:.1f}, {best.position.y:.1f} ({result.crs})")]
    sigma = result.pose.heading_sigma_deg if result.pose is not None else float("nan")
    rows += [("Heading", _number(heading_of(result), 1, "°") + (f" ± {sigma:.1f}°" if math.isfinite(sigma) else "")),
             ("Field of view", _number(result.fov_deg, 1, "°")),
             ("Confidence", confidence_text(result)
              + (f" within {result.pose.confidence_radius_m:.0f} m" if confidence_of(result) is not None else "")),
             ("Error radius (95 %)", _number(error_radius_of(result), 1, " m")),
             ("Retrieval score", _number(best.score if best is not None else None, 3)),
             ("Priors used", priors_text(result)), ("Model", result.model_id or "–"),
             ("Flags", "; ".join(record.flags + record.warnings) or "none")]
    return rows
