"""`viewfinder demo`: localise the bundled demo photos on the demo map and print the error against truth."""
from __future__ import annotations

import sys
from pathlib import Path

from engine.commands.common import EXIT_FAILED, EXIT_OK, ProgressBars, UsageError
from engine.commands.localize import add_model_arguments, index_with_bars, make_localizer

DEMO_SCENE = Path(__file__).resolve().parents[2] / "resources" / "demo"


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="localise the bundled demo photos and print the error against truth",
                       description="Index the demo map, localise its photos twice (image only, and with the "
                                   "photos' EXIF GPS, which is off by about 10 m as a phone's would be), print "
                                   "the error of each against the exact truth and write GeoJSON, CSV and HTML.")
    p.add_argument("--scene", type=Path, default=DEMO_SCENE, help=f"demo scene folder (default {DEMO_SCENE})")
    p.add_argument("--regenerate", action="store_true", help="make the demo scene again (into --scene) first")
    p.add_argument("--out", type=Path, default=Path("viewfinder-demo"),
                   help="folder for results.geojson, results.csv, map.html (default ./viewfinder-demo)")
    add_model_arguments(p)


def _ensure_scene(scene: Path, regenerate: bool) -> None:
    from engine.synth.export.scene import SCENE_META
    from engine.synth.make_demo import make_demo_scene
    if scene.is_dir() and any(scene.iterdir()) and not (scene / SCENE_META).is_file():
        raise UsageError(f"{scene}: exists and is not a demo scene; choose another --scene")
    if regenerate or not (scene / "map.tif").is_file():
        print(f"making the demo scene in {scene} ...", file=sys.stderr)
        make_demo_scene(scene, force=scene.is_dir())


def _error_m(result, truth) -> float:
    import numpy as np
    best = result.best
    return float(np.hypot(best.position.x - truth.x, best.position.y - truth.y)) if best else float("nan")


def _rate(errors: list[float], limit: float) -> str:
    hits = sum(e <= limit for e in errors)
    return f"{hits}/{len(errors)}"


def run(args) -> int:
    import numpy as np  # here, not at the top: `viewfinder` parses every command's options at start-up

    from engine.data.datasets.synthetic import read_truth
    from engine.pipeline import (
        PriorOverrides,
        find_photos,
        lonlat_to_map,
        write_results_csv,
        write_results_geojson,
        write_results_html,
    )

    _ensure_scene(args.scene, args.regenerate)
    truth = read_truth(args.scene / "truth.geojson")
    photos = find_photos([args.scene / "photos"])
    localizer = make_localizer(args, announce=False)
    gallery = index_with_bars(localizer, args.scene / "map.tif", args.quiet)
    runs = []
    for overrides in (PriorOverrides.none(), None):
        bars = ProgressBars(not args.quiet)
        try:
            runs.append(list(localizer.localize_many(photos, gallery, overrides, progress=bars)))
        finally:
            bars.close()
    image_only, with_gps = runs

    print(f"model: {localizer.model_description}; pose: {localizer.pose_description}")
    print(f"map: {args.scene / 'map.tif'} ({len(gallery)} tiles{', from the cache' if gallery.from_cache else ''})")
    print(f"{'photo':<22} {'image only':>11} {'with GPS':>9} {'GPS alone':>10} {'confidence':>11}   (errors in m)")
    errors = {"image only": [], "with GPS": [], "GPS alone": []}
    for plain, prior in zip(image_only, with_gps):
        record = truth.get(Path(plain.photo).stem)
        if record is None or plain.status == "failed" or prior.status == "failed":
            print(f"{plain.photo_name:<22} {plain.error or prior.error or 'no truth for this photo'}")
            continue
        gps = prior.priors.get("position")
        gps_error = float("nan")
        if gps:
            x, y = lonlat_to_map(gallery.crs, gps["lon"], gps["lat"])
            gps_error = float(np.hypot(x - record.x, y - record.y))
        row = (_error_m(plain, record), _error_m(prior, record), gps_error)
        for key, value in zip(errors, row):
            errors[key].append(value)
        print(f"{plain.photo_name:<22} {row[0]:11.1f} {row[1]:9.1f} {row[2]:10.1f} {prior.best.confidence:11.4f}")
    for key, values in errors.items():
        if values:
            print(f"{key:<11} median {np.nanmedian(values):6.1f} m, within 10 m {_rate(values, 10)}, "
                  f"within 25 m {_rate(values, 25)}")

    args.out.mkdir(parents=True, exist_ok=True)
    written = [write_results_geojson(with_gps, args.out / "results.geojson"),
               write_results_csv(with_gps, args.out / "results.csv"),
               write_results_html(with_gps, args.scene / "map.tif", args.out / "map.html")]
    print(f"wrote {', '.join(map(str, written))} (the run with the GPS prior)")
    return EXIT_FAILED if any(r.status == "failed" for r in image_only + with_gps) else EXIT_OK
