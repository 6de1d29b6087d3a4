"""`viewfinder localize`: find where photos were taken on a map; GeoJSON (+ HTML, CSV, JSON) out."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.commands.common import EXIT_FAILED, EXIT_OK, ProgressBars, UsageError, positive_float, positive_int

#: VIEWFINDER_SERVER=1 makes --warm the default (scripts that localise photo after photo).
SERVER_ENV = "VIEWFINDER_SERVER"


def overlap_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 0.9:
        raise argparse.ArgumentTypeError(f"tile overlap must be within 0-0.9, got {text}")
    return value


def lonlat(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LON,LAT, got {text!r}") from None
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise argparse.ArgumentTypeError(f"not a lon,lat position: {text}")
    return lon, lat


def degrees_fov(text: str) -> float:
    value = positive_float(text)
    if value >= 180.0:
        raise argparse.ArgumentTypeError(f"FoV must be below 180 degrees, got {text}")
    return value


def compass(text: str) -> float:
    try:
        return float(text) % 360.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a compass heading in degrees, got {text!r}") from None


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Model, cache and tiling options shared by index, localize and demo."""
    p.add_argument("--model", type=Path, help="model checkpoint (default: the shipped model, else the untrained one)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    p.add_argument("--cache-dir", type=Path, help="gallery cache folder (default: $VIEWFINDER_CACHE or "
                                                  "~/.cache/viewfinder)")
    p.add_argument("--no-cache", action="store_true", help="embed the map again and do not store it")
    p.add_argument("--overlap", type=overlap_fraction, default=0.5, help="tile overlap fraction (default 0.5)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--force", action="store_true",
                   help="index a map the plan refuses (far coarser than the model, or an absurd tile count)")


def make_localizer(args, announce: bool = True, **config):
    """A Localizer from the shared options; a bad checkpoint is a usage error (one line, exit 2)."""
    from engine.commands.localizers import get_localizer
    from engine.pipeline import CheckpointError, LocalizerConfig
    settings = LocalizerConfig(cache_dir=args.cache_dir, use_cache=not args.no_cache, tile_overlap=args.overlap,
                               **config)
    try:
        localizer = get_localizer(args.model, args.device, settings)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    if announce and not args.quiet:
        print(f"model: {localizer.model_description}", file=sys.stderr)
    return localizer


def show_plan(localizer, raster, quiet: bool):
    """Print the index plan (resolution, CRS, resampling, tiles, time) of an opened map; the plan."""
    from engine.geo.plan import plan_map
    plan = plan_map(raster, localizer.tiling())
    if not quiet or plan.refusals:
        print(plan.describe(), file=sys.stderr)
    return plan


def index_with_bars(localizer, map_path: Path, quiet: bool, force: bool = False):
    """Index (or load from the cache) with progress bars, the map opened once; a map the plan refuses is
    refused (exit 2) unless --force."""
    from engine.pipeline import MapRaster
    with MapRaster(map_path) as raster:
        show_plan(localizer, raster, quiet)
        bars = ProgressBars(not quiet)
        try:
            return localizer.index_map(map_path, progress=bars, force=force, raster=raster)
        finally:
            bars.close()


def add_parser(sub) -> None:
    p = sub.add_parser("localize", help="find where photos were taken on a map",
                       description="Localise photos (files or folders) on a georeferenced map. EXIF GPS, "
                                   "compass heading and focal length are used as priors unless switched off.")
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO_OR_DIR")
    p.add_argument("--map", required=True, type=Path, help="GeoTIFF map")
    p.add_argument("--out", required=True, type=Path,
                   help="GeoJSON: positions, credible regions, overlap regions, candidate tiles, failed photos. "
                        "All outputs are written together at the end, or none of them")
    p.add_argument("--html", type=Path, help="also write an HTML map")
    p.add_argument("--csv", type=Path, help="also write a CSV of positions")
    p.add_argument("--json", type=Path, help="also write the full results (attention maps, ...) as JSON")
    p.add_argument("--make-dirs", action="store_true", help="create missing output folders (else a missing "
                                                            "folder is an error, reported before any work)")
    p.add_argument("--top-k", type=positive_int, default=5, help="map tiles examined per photo (default 5)")
    p.add_argument("--prior-radius", type=positive_float, metavar="M",
                   help="the camera is within M metres of the EXIF GPS position (or of --prior-lonlat)")
    p.add_argument("--prior-lonlat", type=lonlat, metavar="LON,LAT", help="prior camera position for all photos")
    p.add_argument("--fov", type=degrees_fov, metavar="DEG", help="horizontal FoV (overrides EXIF)")
    p.add_argument("--heading", type=compass, metavar="DEG", help="compass heading prior (overrides EXIF)")
    p.add_argument("--no-exif-priors", action="store_true", help="ignore EXIF GPS, heading and focal length")
    add_model_arguments(p)
    p.add_argument("--warm", action=argparse.BooleanOptionalAction, default=warm_by_default(),
                   help="run on the warm engine server, which keeps the engine loaded between runs (first "
                        "result in 1-2.5 s instead of about ten on 2 cores); one starts in the background when none "
                        "runs (see `viewfinder serve`). Same outputs and exit codes. Default: on when "
                        f"${SERVER_ENV}=1")


def warm_by_default() -> bool:
    return os.environ.get(SERVER_ENV, "").strip() not in ("", "0")


def overrides_from(args):
    from engine.pipeline import PriorOverrides
    use_exif = not args.no_exif_priors
    return PriorOverrides(lonlat=args.prior_lonlat, radius_m=args.prior_radius, fov_deg=args.fov,
                          heading_deg=args.heading, use_exif_position=use_exif, use_exif_heading=use_exif,
                          use_exif_fov=use_exif)


def summary_table(results) -> str:
    from engine.pipeline.export.result_features import result_warnings
    lines = [f"{'photo':<28} {'status':<7} {'lon':>12} {'lat':>11} {'conf':>7} {'heading':>7}  note"]
    for r in results:
        name = r.photo_name if len(r.photo_name) <= 28 else r.photo_name[:25] + "..."
        best = r.best
        if best is None:
            lines.append(f"{name:<28} {r.status:<7} {'':>12} {'':>11} {'':>7} {'':>7}  {r.error or ''}")
            continue
        note = "; ".join(result_warnings(r))
        lines.append(f"{name:<28} {r.status:<7} {best.position.lon:12.7f} {best.position.lat:11.7f} "
                     f"{best.confidence:7.4f} {best.heading_deg:7.1f}  {note}")
    return "\n".join(lines)


def write_outputs(results, map_path: Path, out: Path, html: Path | None, csv: Path | None,
                  json_path: Path | None, make_dirs: bool = False) -> list[Path]:
    """Every output rendered first, then written together: all of them or none."""
    from engine.pipeline.export import write_result_set
    return write_result_set(results, map_path, geojson=out, csv=csv, html=html, json_path=json_path,
                            make_dirs=make_dirs)


def run(args) -> int:
    from engine.geo.output_set import OutputError, check_targets
    from engine.pipeline import find_photos
    try:   # before any work: a run that cannot write its outputs should not start
        check_targets((args.out, args.html, args.csv, args.json), args.make_dirs)
    except OutputError as exc:
        raise UsageError(str(exc)) from None
    photos = find_photos(args.photos)
    if not photos:
        raise UsageError(f"no photos found in {', '.join(map(str, args.photos))}")
    try:
        overrides = overrides_from(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    localizer = make_localizer(args, top_k=args.top_k)
    gallery = index_with_bars(localizer, args.map, args.quiet, args.force)
    bars = ProgressBars(not args.quiet)
    try:
        results = list(localizer.localize_many(photos, gallery, overrides, progress=bars))
    finally:
        bars.close()
    try:
        written = write_outputs(results, args.map, args.out, args.html, args.csv, args.json, args.make_dirs)
    except OutputError as exc:
        print(f"viewfinder localize: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary_table(results))
    done = sum(r.status != "failed" for r in results)
    print(f"{done} of {len(results)} photos localised on {args.map} ({len(gallery)} tiles); wrote "
          f"{', '.join(map(str, written))}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"{len(failed)} photo(s) failed:", file=sys.stderr)
        for r in failed:
            print(f"  {r.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
