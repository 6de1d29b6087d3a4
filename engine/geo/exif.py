"""Photo EXIF: writing the tags synthetic photos carry, and reading them back as localisation priors.

Tags: GPS latitude/longitude (+ GPSHPositioningError), GPSImgDirection (compass heading, true north),
FocalLengthIn35mmFilm (-> horizontal FoV), DateTimeOriginal.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin

from engine.data.geometry import focal_35mm_to_fov, fov_to_focal_35mm
from engine.geo.atomic import write_bytes_atomic

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
    sensor_width_mm: float | None = None     # from FocalPlaneXResolution and the image width
    datetime_original: datetime | None = None

    @property
    def fov_deg(self) -> float | None:
        """Horizontal FoV: from FocalLengthIn35mmFilm, else from FocalLength and the sensor width."""
        if self.focal_35mm:
            return focal_35mm_to_fov(self.focal_35mm)
        if self.focal_length_mm and self.sensor_width_mm:
            return float(np.rad2deg(2.0 * np.arctan(self.sensor_width_mm / (2.0 * self.focal_length_mm))))
        return None

    @property
    def has_position(self) -> bool:
        return self.lon is not None and self.lat is not None


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
               gps_error_m: float | None = None, make: str = "Viewfinder", model: str = "synthetic camera"
               ) -> Image.Exif:
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
    gps[GPS.GPSImgDirectionRef] = "T"
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


def _sensor_width_mm(exif_ifd, image_width_px: int) -> float | None:
    """Sensor width from the focal-plane resolution (pixels per unit) and the image width."""
    xres = exif_ifd.get(BASE.FocalPlaneXResolution)
    unit = _RESOLUTION_UNIT_MM.get(int(exif_ifd.get(BASE.FocalPlaneResolutionUnit, 2)))
    if not xres or unit is None:
        return None
    pixels_per_unit = _to_float(xres)
    return image_width_px / pixels_per_unit * unit if pixels_per_unit > 0 else None


def exif_from_image(image: Image.Image) -> PhotoExif:
    """Read the localisation-relevant tags of an opened image (missing or malformed tags give None)."""
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
        sensor = _sensor_width_mm(exif_ifd, image.size[0])
        if sensor:
            fields["sensor_width_mm"] = sensor
    except (TypeError, ValueError, ZeroDivisionError):
        pass
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
