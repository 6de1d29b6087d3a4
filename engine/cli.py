"""The `viewfinder` command line: synth, demo (more subcommands arrive with the pipeline and trainer)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a single line and exits with code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _fov_range(text: str) -> tuple[float, float]:
    """'70' or '40-110' -> (lo, hi), each within 1-179 degrees."""
    parts = text.split("-") if "-" in text.strip("-") else [text]
    try:
        lo, hi = (float(parts[0]), float(parts[-1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DEGREES or MIN-MAX, got {text!r}") from None
    if len(parts) > 2 or not (1.0 <= lo <= 179.0 and 1.0 <= hi <= 179.0):
        raise argparse.ArgumentTypeError(f"FoV must lie within 1-179 degrees, got {text}")
    if lo > hi:
        raise argparse.ArgumentTypeError(f"FoV range minimum exceeds maximum: {text}")
    return lo, hi


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 16 or height < 16 or width > 8192 or height > 8192:
        raise argparse.ArgumentTypeError(f"size must be within 16-8192 px per side, got {text}")
    return width, height


def _biomes(text: str) -> list[str]:
    from engine.synth.world import BIOMES
    names = list(BIOMES) if text == "all" else [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BIOMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown biome {', '.join(unknown) or text!r} "
                                         f"(choose from {', '.join(BIOMES)} or all)")
    return names


class _ProgressBars:
    """Turns (stage, done, total) callbacks into tqdm bars on stderr, one per stage."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled, self.bars = enabled, {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="it", file=sys.stderr, leave=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="generate a synthetic world and export a scene or a dataset")
    p.add_argument("--biome", type=_biomes, default=["urban"],
                   help="urban, suburban, rural, coastal, a comma list, or all (default urban)")
    p.add_argument("--seed", type=int, default=0, help="world and photo seed (default 0)")
    p.add_argument("--photos", type=_positive_int, default=100, help="photos per world (default 100)")
    p.add_argument("--layout", choices=("scene", "cvnaf", "vigor"), default="scene")
    p.add_argument("--out", type=Path, required=True, help="output folder (created; must be empty)")
    p.add_argument("--size-m", type=_positive_float, default=1000.0, help="world side in metres (default 1000)")
    p.add_argument("--resolution", type=_positive_float, default=0.5, help="metres per pixel (default 0.5)")
    p.add_argument("--fov", type=_fov_range, default=(40.0, 110.0),
                   help="horizontal FoV in degrees: DEG or MIN-MAX (default 40-110)")
    p.add_argument("--photo-size", type=_size, default=(512, 384), help="WIDTHxHEIGHT (default 512x384)")
    p.add_argument("--lon", type=float, help="longitude of the world centre (default: per biome)")
    p.add_argument("--lat", type=float, help="latitude of the world centre (default: per biome)")
    p.add_argument("--chip-px", type=_positive_int, default=384, help="satellite chip/tile size (datasets)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_synth(args) -> int:
    from engine.synth.export import export_cvnaf, export_scene, export_vigor
    from engine.synth.export.staging import check_output_folder
    from engine.synth.generate import generate_world
    from engine.synth.photos import PhotoSpec

    if (args.lon is None) != (args.lat is None):
        raise UsageError("give both --lon and --lat, or neither")
    if args.layout == "scene" and len(args.biome) != 1:
        raise UsageError("a scene holds one world: give a single --biome")
    if args.size_m / args.resolution > 20000:
        raise UsageError(f"world too large: {args.size_m} m at {args.resolution} m/px exceeds 20000 px a side")
    check_output_folder(args.out, args.force)
    spec = PhotoSpec(args.photos, args.fov, args.photo_size)
    origin = (args.lon, args.lat) if args.lon is not None else None
    bars = _ProgressBars(not args.quiet)
    try:
        worlds = []
        for index, biome in enumerate(args.biome):
            bars(f"world {biome}", 0, 1)
            worlds.append(generate_world(biome, args.seed + index, size_m=args.size_m,
                                         resolution_m=args.resolution, origin_lonlat=origin))
            bars(f"world {biome}", 1, 1)
        if args.layout == "scene":
            result = export_scene(worlds[0], spec, args.seed, args.out, force=args.force, progress=bars)
            bars.close()
            print(f"scene written to {result.folder}: map {result.map_path.name} "
                  f"({worlds[0].shape[1]}x{worlds[0].shape[0]} px, {worlds[0].crs.to_string()}), "
                  f"{len(result.photos)} photos, truth.geojson")
        elif args.layout == "cvnaf":
            root = export_cvnaf(worlds, spec, args.seed, args.out, chip_px=args.chip_px, force=args.force,
                                progress=bars)
            bars.close()
            print(f"CVNAF-layout dataset written to {root}: {len(worlds)} cities x {args.photos} photos")
        else:
            root = export_vigor(worlds, spec, args.seed, args.out, tile_px=args.chip_px, force=args.force,
                                progress=bars)
            bars.close()
            print(f"VIGOR-style dataset written to {root}: {len(worlds)} cities x {args.photos} photos")
    finally:
        bars.close()
    return EXIT_OK


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="generate a small demo scene and print what it made")
    p.add_argument("--out", type=Path, default=Path("viewfinder-demo"), help="folder (default ./viewfinder-demo)")
    p.add_argument("--photos", type=_positive_int, default=8)


def _run_demo(args) -> int:
    from engine.synth.export import export_scene
    from engine.synth.export.scene import SCENE_META
    from engine.synth.generate import generate_world
    from engine.synth.photos import PhotoSpec

    # Re-running the demo refreshes its own folder, never someone else's.
    force = args.out.is_dir() and (args.out / SCENE_META).is_file()
    world = generate_world("urban", 7, size_m=600.0, resolution_m=0.5)
    result = export_scene(world, PhotoSpec(args.photos, (50.0, 90.0), (512, 384)), 7, args.out, force=force)
    width_m, height_m = world.size_m
    print(f"Demo scene in {result.folder}/")
    print(f"  map.tif        {world.shape[1]} x {world.shape[0]} px, {world.resolution_m} m/px, "
          f"{width_m:.0f} x {height_m:.0f} m, {world.crs.to_string()} ({world.biome})")
    print(f"  photos/        {len(result.photos)} ground photos with EXIF GPS, heading and focal length")
    print("  truth.geojson  camera positions and the map region each photo sees")
    print(f"  {'photo':<24} {'lon':>12} {'lat':>11} {'heading':>8} {'FoV':>6} {'overlap m2':>11}")
    for t in result.photos:
        print(f"  {t.name:<24} {t.lon:12.7f} {t.lat:11.7f} {t.heading_deg:8.1f} {t.fov_deg:6.1f} "
              f"{t.overlap.area:11.0f}")
    return EXIT_OK


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="viewfinder", description="Find where ground photos were taken on a satellite map.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_synth(sub)
    _add_demo(sub)
    return parser


COMMANDS = {"synth": _run_synth, "demo": _run_demo}


def main(argv: Sequence[str] | None = None) -> int:
    from engine.synth.export.staging import OutputFolderError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, OutputFolderError) as exc:
        command = f"viewfinder {args.command}" if "args" in locals() else "viewfinder"
        print(f"{command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("viewfinder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
