"""`viewfinder index`, `viewfinder localize` and `viewfinder demo` with a small model checkpoint."""
import csv
import json
import shutil

import pyogrio
import pytest

from engine.cli import main
from engine.commands.demo import DEMO_SCENE
from tests.engine.pipeline.scenes import SCENE_PHOTOS, write_coarse_map


def _model_args(checkpoint, cache):
    return ["--model", str(checkpoint), "--cache-dir", str(cache), "--quiet"]


def test_index_then_reopen_from_the_cache(scene, small_checkpoint, tmp_path, capsys):
    assert main(["index", str(scene.map_path), *_model_args(small_checkpoint, tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "tiles of 76.8 m" in first and "EPSG:32616" in first and "embedded in" in first
    assert main(["index", str(scene.map_path), *_model_args(small_checkpoint, tmp_path)]) == 0
    assert "loaded from the cache" in capsys.readouterr().out


def test_localize_batch_keeps_going_lists_failures_and_exits_1(scene, small_checkpoint, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    argv = ["localize", "--map", str(scene.map_path), str(scene.folder / "photos"), str(bad),
            "--out", str(out / "results.geojson"), "--html", str(out / "map.html"), "--csv", str(out / "r.csv"),
            "--json", str(out / "r.json"), "--top-k", "3", "--prior-radius", "40",
            *_model_args(small_checkpoint, tmp_path / "cache")]
    assert main(argv) == 2                                   # the output folder does not exist: refused first
    assert f"folder {out} does not exist" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--make-dirs"]) == 1
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].split()[:3] == ["photo", "status", "lon"]
    assert sum(" done " in line for line in table) == SCENE_PHOTOS and any("bad.jpg" in line for line in table)
    assert f"{SCENE_PHOTOS} of {SCENE_PHOTOS + 1} photos localised" in captured.out
    assert "1 photo(s) failed" in captured.err and str(bad) in captured.err
    frame = pyogrio.read_dataframe(out / "results.geojson")
    assert set(frame[frame["kind"] == "position"]["photo"]) == {t.name for t in scene.photos}
    rows = list(csv.DictReader((out / "r.csv").open()))
    assert [row["status"] for row in rows].count("failed") == 1
    results = json.loads((out / "r.json").read_text())
    assert all(r["priors"]["position"]["radius_m"] == 40.0 for r in results if r["status"] == "done")
    assert "L.imageOverlay" in (out / "map.html").read_text()
    assert sum(row["rank"] == "1" for row in rows) == SCENE_PHOTOS
    assert (frame["kind"] == "failed").sum() == 1
    assert sorted(p.name for p in out.iterdir()) == ["map.html", "r.csv", "r.json", "results.geojson"]


def test_localize_all_good_exits_0(scene, small_checkpoint, tmp_path, capsys):
    photo = scene.folder / "photos" / scene.photos[0].name
    assert main(["localize", "--map", str(scene.map_path), str(photo), "--out", str(tmp_path / "r.geojson"),
                 "--no-exif-priors", *_model_args(small_checkpoint, tmp_path)]) == 0
    assert "1 of 1 photos localised" in capsys.readouterr().out


def test_unwritable_output_stops_the_run_before_any_work_and_writes_nothing(scene, small_checkpoint, tmp_path,
                                                                          capsys):
    photo = scene.folder / "photos" / scene.photos[0].name
    argv = ["localize", "--map", str(scene.map_path), str(photo), "--out", str(tmp_path / "r.geojson"),
            "--csv", str(tmp_path / "r.csv"), "--html", "/proc/viewfinder-missing/map.html",
            *_model_args(small_checkpoint, tmp_path / "cache")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/proc/viewfinder-missing/map.html" in err and "does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_coarse_map_is_refused_with_its_plan_and_forced_on_request(small_checkpoint, tmp_path, capsys):
    coarse = write_coarse_map(tmp_path / "coarse.tif")
    args = ["--model", str(small_checkpoint), "--cache-dir", str(tmp_path / "cache")]
    assert main(["index", str(coarse), *args]) == 2
    err = capsys.readouterr().err
    assert "30 m/px on the ground" in err and "about " in err and "tiles, estimated" in err
    assert f"{coarse}: the map's ground resolution (30 m/px) is" in err and "--force" in err
    assert main(["index", str(coarse), *args, "--force", "--quiet"]) == 0
    assert "embedded in" in capsys.readouterr().out


def test_bad_map_model_or_photos_are_one_line_usage_errors(scene, small_checkpoint, tmp_path, capsys):
    text_map = tmp_path / "map.tif"
    text_map.write_text("no raster")
    photo = str(scene.folder / "photos")
    out = ["--out", str(tmp_path / "r.geojson")]
    assert main(["localize", "--map", str(text_map), photo, *out, *_model_args(small_checkpoint, tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(text_map) in err and "not a readable raster" in err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"xx")
    assert main(["localize", "--map", str(scene.map_path), photo, *out, *_model_args(broken, tmp_path)]) == 2
    assert str(broken) in capsys.readouterr().err
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    assert main(["localize", "--map", str(scene.map_path), str(empty), *out,
                 *_model_args(small_checkpoint, tmp_path)]) == 2
    assert "no photos found" in capsys.readouterr().err
    assert not (tmp_path / "r.geojson").exists()


@pytest.mark.slow     # about 45 s: indexes and localises the whole demo
def test_demo_prints_the_error_against_truth(small_checkpoint, tmp_path, capsys):
    scene = tmp_path / "demo"
    shutil.copytree(DEMO_SCENE, scene)
    assert main(["demo", "--scene", str(scene), "--out", str(tmp_path / "out"), "--overlap", "0",
                 *_model_args(small_checkpoint, tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    photos = sorted(p.name for p in (scene / "photos").iterdir())
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    for name in photos:
        image_only, with_gps, gps_alone = (float(v) for v in lines[name][:3])
        assert 0 <= image_only < 1000 and 0 <= with_gps < 1000 and 0 < gps_alone < 60
    assert "median" in out and "within 10 m" in out and "within 25 m" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["map.html", "results.csv", "results.geojson"]
