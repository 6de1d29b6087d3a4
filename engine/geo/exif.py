"""Photo EXIF: writing the tags synthetic photos carry, and reading them back as localisation priors.

Tags: GPS latitude/longitude (+ GPSHPositioningError), GPSImgDirection and its reference (true or magnetic
north), FocalLengthIn35mmFilm or FocalLength + focal-plane resolution (-> horizontal FoV), Orientation and the
original pixel size (ExifImageWidth / Height), DateTimeOriginal.

The FoV is the horizontal one of the upright photo: a portrait photo (Orientation 5-8, or stored taller than
wide) sees the sensor's short side across. The sensor width comes from FocalPlaneXResolution and the
*original* width (ExifImageWidth): a resized copy keeps its camera's focal-plane resolution.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin

from engine.atomic import write_bytes_atomic
from engine.data.geometry import focal_35mm_to_fov, fov_to_focal_35mm

EXIF_DATETIME_FORMAT = "%Y:%m:%d %H:%M:%S"
GPS = ExifTags.GPS
BASE = ExifTags.Base


@dataclass(frozen=True)
class PhotoExif:
    """What a photo's EXIF says about where and how it was taken; every field may be missing."""

    lon: float | None = None
    lat: float | None = None
    gps_error_m: float | None = None
    heading_deg: float | None = None
    focal_35mm: float | None = None
    focal_length_mm: float | None = None
    sensor_width_mm: float | None = None     # along the stored pixel rows, from FocalPlaneXResolution
    datetime_original: datetime | None = None
    heading_ref: str | None = None           # GPSImgDirectionRef: "T" true north, "M" magnetic north
    orientation: int = 1                     # EXIF Orientation (1-8); 5-8 turn the picture by 90 degrees
    stored_size: tuple[int, int] | None = None    # (width, height) of the pixels as stored in the file
    sensor_basis: str | None = None          # which width the sensor size was measured from

    @property
    def upright_size(self) -> tuple[int, int] | None:
        if self.stored_size is None:
            return None
        width, height = self.stored_size
        return (height, width) if self.orientation in (5, 6, 7, 8) else (width, height)

    @property
    def fov_deg(self) -> float | None:
        """Horizontal FoV of the upright photo: from FocalLengthIn35mmFilm (36 mm across the long side),
        else from FocalLength and the sensor width; None when unknown or implausible."""
        if self.focal_35mm:
            long_side = np.deg2rad(focal_35mm_to_fov(self.focal_35mm))
            upright = self.upright_size
            if upright is not None and upright[0] < upright[1]:       # portrait: the short side across
                return _fov(np.tan(long_side / 2.0) * upright[0] / upright[1])
            return float(np.rad2deg(long_side))
        if self.focal_length_mm and self.sensor_width_mm and self.focal_length_mm > 0:
            half = self.sensor_width_mm / (2.0 * self.focal_length_mm)     # along the stored rows
            if self.orientation in (5, 6, 7, 8) and self.stored_size is not None:
                half *= self.stored_size[1] / self.stored_size[0]       # turned: the stored columns across
            return _fov(half)
        return None

    @property
    def fov_basis(self) -> str | None:
        """Which tags the FoV comes from (reported with the prior)."""
        if self.focal_35mm:
            return "FocalLengthIn35mmFilm" + (" (portrait)" if self._portrait() else "")
        if self.fov_deg is not None:
            return f"FocalLength and {self.sensor_basis or 'sensor width'}" + (" (portrait)" if self._portrait()
                                                                                else "")
        return None

    def _portrait(self) -> bool:
        upright = self.upright_size
        return upright is not None and upright[0] < upright[1]

    @property
    def has_position(self) -> bool:
        return self.lon is not None and self.lat is not None


def _fov(half_tangent: float) -> float | None:
    """Full angle from the tangent of the half angle; FoVs outside 2-170 degrees mean broken tags."""
    fov = float(np.rad2deg(2.0 * np.arctan(half_tangent)))
    return fov if 2.0 <= fov <= 170.0 else None


def _rational(value: float, max_denominator: int = 10_000_000) -> TiffImagePlugin.IFDRational:
    frac = Fraction(float(value)).limit_denominator(max_denominator)
    return TiffImagePlugin.IFDRational(frac.numerator, frac.denominator)


def _dms(value_deg: float) -> tuple:
    """Decimal degrees -> (degrees, minutes, seconds) rationals; seconds keep ~1e-5 arc-second precision."""
    value = abs(float(value_deg))
    degrees = int(value)
    minutes = int((value - degrees) * 60.0)
    seconds = (value - degrees - minutes / 60.0) * 3600.0
    return (_rational(degrees, 1), _rational(minutes, 1), _rational(round(seconds, 6), 1_000_000))


def build_exif(*, lon: float, lat: float, heading_deg: float, fov_deg: float, taken: datetime,
               gps_error_m: float | None = None, make: str = "Viewfinder", model: str = "synthetic camera",
               heading_ref: str = "T") -> Image.Exif:
    exif = Image.Exif()
    exif[BASE.Make] = make
    exif[BASE.Model] = model
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[BASE.DateTimeOriginal] = taken.strftime(EXIF_DATETIME_FORMAT)
    exif_ifd[BASE.FocalLengthIn35mmFilm] = int(round(float(fov_to_focal_35mm(fov_deg))))
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
    gps[GPS.GPSLatitude] = _dms(lat)
    gps[GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
    gps[GPS.GPSLongitude] = _dms(lon)
    gps[GPS.GPSImgDirectionRef] = heading_ref
    gps[GPS.GPSImgDirection] = _rational(float(np.mod(heading_deg, 360.0)), 1000)
    if gps_error_m is not None:
        gps[GPS.GPSHPositioningError] = _rational(gps_error_m, 1000)
    return exif


def encode_jpeg(image: np.ndarray, exif: Image.Exif | None = None, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, exif=exif or Image.Exif(),
                                optimize=False)
    return buffer.getvalue()


def write_jpeg(path: str | os.PathLike, image: np.ndarray, exif: Image.Exif | None = None,
               quality: int = 92) -> None:
    write_bytes_atomic(path, encode_jpeg(image, exif, quality))


def _to_float(value) -> float:
    return float(value[0]) / float(value[1]) if isinstance(value, tuple) and len(value) == 2 else float(value)


def _dms_to_degrees(dms, ref: str | None) -> float:
    degrees, minutes, seconds = (_to_float(v) for v in dms)
    value = degrees + minutes / 60.0 + seconds / 3600.0
    return -value if ref in ("S", "W") else value


_RESOLUTION_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}   # inch, cm, mm, micrometre


MIN_SENSOR_MM, MAX_SENSOR_MM = 1.0, 60.0   # from a 1/10" sensor to medium format


def _sensor_width_mm(exif_ifd, stored_width_px: int) -> tuple[float, str] | tuple[None, None]:
    """Sensor width from the focal-plane resolution (pixels per unit) and the camera's original width.

    FocalPlaneXResolution counts the camera's own pixels: a resized copy must be measured with its
    ExifImageWidth, not its current width (1000 px of a 4000 px original gave a 4 times smaller sensor)."""
    xres = exif_ifd.get(BASE.FocalPlaneXResolution)
    unit = _RESOLUTION_UNIT_MM.get(int(exif_ifd.get(BASE.FocalPlaneResolutionUnit, 2)))
    if not xres or unit is None:
        return None, None
    pixels_per_unit = _to_float(xres)
    original = exif_ifd.get(BASE.ExifImageWidth)
    width, basis = ((int(original), "ExifImageWidth") if isinstance(original, int) and original > 0
                    else (stored_width_px, "the stored image width"))
    if pixels_per_unit <= 0:
        return None, None
    sensor = width / pixels_per_unit * unit
    if not MIN_SENSOR_MM <= sensor <= MAX_SENSOR_MM:     # stale or broken tags: no FoV rather than a wrong one
        return None, None
    return sensor, f"a {sensor:.2f} mm sensor width (FocalPlaneXResolution over {basis})"


def exif_from_image(image: Image.Image, stored_size: tuple[int, int] | None = None) -> PhotoExif:
    """Read the localisation-relevant tags of an opened image (missing or malformed tags give None).

    stored_size: the file's pixel size when `image` was opened with draft (reduced JPEG decoding)."""
    stored_size = stored_size or tuple(image.size)
    exif = image.getexif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    fields: dict = {}
    try:
        if GPS.GPSLatitude in gps and GPS.GPSLongitude in gps:
            fields["lat"] = _dms_to_degrees(gps[GPS.GPSLatitude], gps.get(GPS.GPSLatitudeRef))
            fields["lon"] = _dms_to_degrees(gps[GPS.GPSLongitude], gps.get(GPS.GPSLongitudeRef))
    except (TypeError, ValueError, ZeroDivisionError):
        fields.pop("lat", None)
    for key, tag in (("gps_error_m", GPS.GPSHPositioningError), ("heading_deg", GPS.GPSImgDirection)):
        try:
            if tag in gps:
                fields[key] = _to_float(gps[tag])
        except (TypeError, ValueError, ZeroDivisionError):
            pass
    focal = exif_ifd.get(BASE.FocalLengthIn35mmFilm)
    if focal:
        fields["focal_35mm"] = float(focal)
    try:
        if exif_ifd.get(BASE.FocalLength):
            fields["focal_length_mm"] = _to_float(exif_ifd[BASE.FocalLength])
        sensor, basis = _sensor_width_mm(exif_ifd, stored_size[0])
        if sensor:
            fields["sensor_width_mm"], fields["sensor_basis"] = sensor, basis
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    ref = gps.get(GPS.GPSImgDirectionRef)
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if isinstance(ref, str) and ref.strip("\x00 ").upper() in ("T", "M"):
        fields["heading_ref"] = ref.strip("\x00 ").upper()
    orientation = exif.get(BASE.Orientation)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        fields["orientation"] = orientation
    fields["stored_size"] = (int(stored_size[0]), int(stored_size[1]))
    stamp = exif_ifd.get(BASE.DateTimeOriginal)
    if isinstance(stamp, str):
        try:
            fields["datetime_original"] = datetime.strptime(stamp.strip("\x00 "), EXIF_DATETIME_FORMAT)
        except ValueError:
            pass
    return PhotoExif(**fields)


def read_exif(path: str | os.PathLike) -> PhotoExif:
    with Image.open(path) as image:
        return exif_from_image(image)


def photo_gps_lonlat(path: str | os.PathLike) -> tuple[float, float] | None:
    """The photo's EXIF GPS position (lon, lat) from its header alone; None when it has none or the file
    is unreadable (a caller sorting photos into map regions carries on without it)."""
    try:
        exif = read_exif(path)
    except (OSError, ValueError, SyntaxError):       # Pillow's errors for missing, truncated, non-image files
        return None
    if exif.lon is None or exif.lat is None:
        return None
    return exif.lon, exif.lat
