"""Localisation priors: what a photo's EXIF (or the user) says about where and how it was taken.

- Position: EXIF GPS latitude/longitude. GPSHPositioningError (metres) is taken as the 1-sigma error; the
  search radius is `error_scale` sigmas (at least `min_radius_m`). Without the tag `default_gps_error_m`
  is assumed.
- FoV: FocalLengthIn35mmFilm, else FocalLength + sensor width (see PhotoExif.fov_deg); else the configured
  default (None: unknown, reported as such).
- Heading: GPSImgDirection (compass degrees), with `heading_tolerance_deg` as its 1-sigma error. A magnetic
  heading (GPSImgDirectionRef = M) is turned to true north with the World Magnetic Model's declination at the
  photo's place and date (engine.geo.declination); without a model it is used as it is, with its tolerance
  widened by `magnetic_extra_tolerance_deg` and a warning.
Every prior is optional; PriorOverrides replaces or switches off each one (API and CLI). Every prior says
where it came from (source, and sigma_source / reference / fov_basis for the detail), and anything doubtful
is listed in Priors.warnings.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.geo.declination import declination
from engine.geo.exif import PhotoExif

EXIF, USER, DEFAULT = "exif", "user", "default"
TRUE_NORTH, MAGNETIC = "true", "magnetic"


@dataclass(frozen=True)
class PriorSettings:
    """How EXIF values become priors."""

    default_gps_error_m: float = 15.0      # when the photo has GPS but no GPSHPositioningError
    error_scale: float = 3.0               # search radius in GPS sigmas
    min_radius_m: float = 10.0
    heading_tolerance_deg: float = 30.0    # 1-sigma error of a phone compass
    default_fov_deg: float | None = None   # FoV assumed when neither EXIF nor the user gives one
    #: added to the tolerance of a magnetic heading that cannot be corrected (declination reaches ~20 degrees)
    magnetic_extra_tolerance_deg: float = 20.0

    def __post_init__(self) -> None:
        if min(self.default_gps_error_m, self.error_scale, self.min_radius_m, self.heading_tolerance_deg) <= 0:
            raise ValueError("prior settings must be positive")
        if self.default_fov_deg is not None and not 0 < self.default_fov_deg < 180:
            raise ValueError(f"default FoV must be in (0, 180) degrees, got {self.default_fov_deg}")


@dataclass(frozen=True)
class PriorOverrides:
    """User-given priors. A value replaces the EXIF one; use_exif_* = False ignores that EXIF prior."""

    lonlat: tuple[float, float] | None = None   # camera position (lon, lat)
    radius_m: float | None = None               # camera within this distance of the position
    fov_deg: float | None = None
    heading_deg: float | None = None
    heading_tolerance_deg: float | None = None
    use_exif_position: bool = True
    use_exif_heading: bool = True
    use_exif_fov: bool = True

    def __post_init__(self) -> None:
        if self.lonlat is not None:
            lon, lat = (float(v) for v in self.lonlat)
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                raise ValueError(f"prior position ({lon}, {lat}) is not a valid lon, lat")
        for name in ("radius_m", "heading_tolerance_deg"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.fov_deg is not None and not 0 < self.fov_deg < 180:
            raise ValueError(f"FoV must be in (0, 180) degrees, got {self.fov_deg}")

    @classmethod
    def none(cls) -> PriorOverrides:
        """Ignore every EXIF prior."""
        return cls(use_exif_position=False, use_exif_heading=False, use_exif_fov=False)


@dataclass(frozen=True)
class PositionPrior:
    lon: float
    lat: float
    radius_m: float     # hard limit: tiles and positions are searched within it
    sigma_m: float      # 1-sigma error, weights positions inside the radius
    source: str
    sigma_source: str = DEFAULT    # GPSHPositioningError, default (no tag) or user (from --prior-radius)


@dataclass(frozen=True)
class HeadingPrior:
    heading_deg: float             # from true north, always (magnetic headings are corrected or widened)
    tolerance_deg: float
    source: str
    reference: str = TRUE_NORTH    # what the file said: true or magnetic north
    declination_deg: float | None = None   # added to a magnetic heading (None: not corrected)
    declination_model: str | None = None


@dataclass(frozen=True)
class Priors:
    position: PositionPrior | None = None
    heading: HeadingPrior | None = None
    fov_deg: float | None = None
    fov_source: str | None = None
    fov_basis: str | None = None               # the EXIF tags the FoV was computed from
    warnings: tuple[str, ...] = ()             # doubts about the priors, shown with the result

    def to_json(self) -> dict:
        data: dict = {"fov_deg": self.fov_deg, "fov_source": self.fov_source, "fov_basis": self.fov_basis,
                      "position": None, "heading": None, "warnings": list(self.warnings)}
        if self.position is not None:
            p = self.position
            data["position"] = {"lon": p.lon, "lat": p.lat, "radius_m": p.radius_m, "sigma_m": p.sigma_m,
                                "source": p.source, "sigma_source": p.sigma_source}
        if self.heading is not None:
            h = self.heading
            data["heading"] = {"heading_deg": h.heading_deg, "tolerance_deg": h.tolerance_deg, "source": h.source,
                               "reference": h.reference, "declination_deg": h.declination_deg,
                               "declination_model": h.declination_model}
        return data


def resolve_priors(exif: PhotoExif | None, overrides: PriorOverrides | None = None,
                   settings: PriorSettings | None = None) -> Priors:
    """Combine a photo's EXIF with the user's overrides into the priors the localiser uses."""
    exif = exif or PhotoExif()
    overrides = overrides or PriorOverrides()
    settings = settings or PriorSettings()
    warnings: list[str] = []
    fov, fov_source = _fov(exif, overrides, settings)
    basis = exif.fov_basis if fov_source == EXIF else None
    return Priors(_position(exif, overrides, settings), _heading(exif, overrides, settings, warnings),
                  fov, fov_source, basis, tuple(warnings))


def _position(exif: PhotoExif, overrides: PriorOverrides, settings: PriorSettings) -> PositionPrior | None:
    exif_error = exif.gps_error_m if exif.gps_error_m and exif.gps_error_m > 0 else None
    if overrides.lonlat is not None:
        (lon, lat), source, sigma, sigma_source = overrides.lonlat, USER, settings.default_gps_error_m, DEFAULT
    elif overrides.use_exif_position and exif.has_position:
        lon, lat, source = exif.lon, exif.lat, EXIF
        sigma = exif_error or settings.default_gps_error_m
        sigma_source = "GPSHPositioningError" if exif_error else DEFAULT
    else:
        return None
    if overrides.radius_m is not None:
        radius = float(overrides.radius_m)
        sigma = radius / settings.error_scale      # the user's radius is the error_scale-sigma bound
        source = sigma_source = USER
    else:
        radius = max(settings.min_radius_m, settings.error_scale * sigma)
    return PositionPrior(float(lon), float(lat), radius, float(sigma), source, sigma_source)


def _heading(exif: PhotoExif, overrides: PriorOverrides, settings: PriorSettings,
             warnings: list[str]) -> HeadingPrior | None:
    tolerance = float(overrides.heading_tolerance_deg or settings.heading_tolerance_deg)
    if overrides.heading_deg is not None:
        return HeadingPrior(float(overrides.heading_deg) % 360.0, tolerance, USER)
    if not (overrides.use_exif_heading and exif.heading_deg is not None):
        return None
    heading = float(exif.heading_deg)
    if exif.heading_ref != "M":
        return HeadingPrior(heading % 360.0, tolerance, EXIF)
    # a magnetic heading: correct it where the photo is (its GPS, else the user's position)
    lonlat = (exif.lon, exif.lat) if exif.has_position else overrides.lonlat
    found = declination(*lonlat, exif.datetime_original) if lonlat is not None else None
    if found is None:
        why = "no position to look the declination up at" if lonlat is None else "no magnetic model installed"
        warnings.append(f"the compass heading is magnetic and could not be corrected ({why}); "
                        f"used with a tolerance widened by {settings.magnetic_extra_tolerance_deg:g} degrees")
        return HeadingPrior(heading % 360.0, tolerance + settings.magnetic_extra_tolerance_deg, EXIF, MAGNETIC)
    if found.note:
        warnings.append(found.note)
    return HeadingPrior((heading + found.degrees) % 360.0, tolerance, EXIF, MAGNETIC, found.degrees, found.model)


def _fov(exif: PhotoExif, overrides: PriorOverrides, settings: PriorSettings) -> tuple[float | None, str | None]:
    if overrides.fov_deg is not None:
        return float(overrides.fov_deg), USER
    if overrides.use_exif_fov and exif.fov_deg is not None:
        return float(exif.fov_deg), EXIF
    if settings.default_fov_deg is not None:
        return float(settings.default_fov_deg), DEFAULT
    return None, None
