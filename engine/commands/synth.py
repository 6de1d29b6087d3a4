"""`viewfinder synth`: generate synthetic worlds and export a scene, a CVNAF-layout or a VIGOR-style dataset."""
from __future__ import annotations

from pathlib import Path

from engine.commands.common import (
    EXIT_OK,
    ProgressBars,
    UsageError,
    biomes,
    fov_range,
    positive_float,
    positive_int,
    size,
)


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="generate a synthetic world and export a scene or a dataset")
    p.add_argument("--biome", type=biomes, default=["urban"],
                   help="urban, suburban, rural, coastal, a comma list, or all (default urban)")
    p.add_argument("--seed", type=int, default=0, help="world and photo seed (default 0)")
    p.add_argument("--photos", type=positive_int, default=100, help="photos per world (default 100)")
    p.add_argument("--layout", choices=("scene", "cvnaf", "vigor"), default="scene")
    p.add_argument("--out", type=Path, required=True, help="output folder (created; must be empty)")
    p.add_argument("--size-m", type=positive_float, default=1000.0, help="world side in metres (default 1000)")
    p.add_argument("--resolution", type=positive_float, default=0.5, help="metres per pixel (default 0.5)")
    p.add_argument("--fov", type=fov_range, default=(40.0, 110.0),
                   help="horizontal FoV in degrees: DEG or MIN-MAX (default 40-110)")
    p.add_argument("--photo-size", type=size, default=(512, 384), help="WIDTHxHEIGHT (default 512x384)")
    p.add_argument("--lon", type=float, help="longitude of the world centre (default: per biome)")
    p.add_argument("--lat", type=float, help="latitude of the world centre (default: per biome)")
    p.add_argument("--chip-px", type=positive_int, default=384, help="satellite chip/tile size (datasets)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
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
    bars = ProgressBars(not args.quiet)
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
