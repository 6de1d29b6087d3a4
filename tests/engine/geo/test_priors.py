"""EXIF -> priors: search radius from GPS error, FoV from focal length, heading from GPSImgDirection; overrides."""
from datetime import datetime

import numpy as np
import pytest

from engine.geo.exif import PhotoExif, build_exif, read_exif, write_jpeg
from engine.geo.priors import PriorOverrides, PriorSettings, resolve_priors


def test_gps_error_sets_sigma_and_radius():
    priors = resolve_priors(PhotoExif(lon=11.5, lat=48.1, gps_error_m=8.0, heading_deg=370.0, focal_35mm=26.0))
    assert (priors.position.lon, priors.position.lat, priors.position.source) == (11.5, 48.1, "exif")
    assert priors.position.sigma_m == 8.0 and priors.position.radius_m == 24.0
    assert priors.heading.heading_deg == pytest.approx(10.0) and priors.heading.tolerance_deg == 30.0
    assert priors.fov_deg == pytest.approx(np.rad2deg(2 * np.arctan(18 / 26))) and priors.fov_source == "exif"
    # no error tag: the default error; tiny errors: the minimum radius
    assert resolve_priors(PhotoExif(lon=1.0, lat=2.0)).position.radius_m == 45.0
    assert resolve_priors(PhotoExif(lon=1.0, lat=2.0, gps_error_m=1.0)).position.radius_m == 10.0


def test_overrides_replace_or_switch_off_each_prior():
    exif = PhotoExif(lon=11.5, lat=48.1, gps_error_m=8.0, heading_deg=90.0, focal_35mm=26.0)
    user = resolve_priors(exif, PriorOverrides(lonlat=(11.6, 48.2), radius_m=60.0, fov_deg=50.0, heading_deg=180.0,
                                               heading_tolerance_deg=5.0))
    assert (user.position.lon, user.position.radius_m, user.position.sigma_m) == (11.6, 60.0, 20.0)
    assert user.position.source == "user" and user.fov_deg == 50.0 and user.fov_source == "user"
    assert (user.heading.heading_deg, user.heading.tolerance_deg, user.heading.source) == (180.0, 5.0, "user")
    radius_only = resolve_priors(exif, PriorOverrides(radius_m=30.0))
    assert radius_only.position.lon == 11.5 and radius_only.position.radius_m == 30.0
    none = resolve_priors(exif, PriorOverrides.none())
    assert none.position is None and none.heading is None and none.fov_deg is None
    assert none.to_json() == {"fov_deg": None, "fov_source": None, "fov_basis": None, "position": None,
                              "heading": None, "warnings": []}
    # nothing in EXIF and no override: no prior, unless a default FoV is configured
    assert resolve_priors(PhotoExif()).position is None
    assert resolve_priors(PhotoExif(), settings=PriorSettings(default_fov_deg=65.0)).fov_source == "default"


def test_focal_length_and_sensor_width_give_the_fov(tmp_path):
    exif = PhotoExif(focal_length_mm=4.25, sensor_width_mm=5.6)
    assert resolve_priors(exif).fov_deg == pytest.approx(np.rad2deg(2 * np.arctan(5.6 / 8.5)))


def test_priors_from_a_written_photo(tmp_path):
    path = tmp_path / "p.jpg"
    write_jpeg(path, np.zeros((32, 48, 3), np.uint8),
               build_exif(lon=-87.6, lat=41.9, heading_deg=123.0, fov_deg=70.0, taken=datetime(2024, 5, 1),
                          gps_error_m=12.0))
    priors = resolve_priors(read_exif(path))
    assert priors.position.lon == pytest.approx(-87.6, abs=1e-6) and priors.position.sigma_m == 12.0
    assert priors.heading.heading_deg == pytest.approx(123.0, abs=1e-3)
    assert priors.fov_deg == pytest.approx(70.0, abs=1.5)


@pytest.mark.parametrize("kwargs", [{"lonlat": (200.0, 0.0)}, {"radius_m": 0.0}, {"fov_deg": 180.0},
                                    {"heading_tolerance_deg": -1.0}])
def test_bad_overrides_are_rejected(kwargs):
    with pytest.raises(ValueError):
        PriorOverrides(**kwargs)
