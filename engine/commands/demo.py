"""`viewfinder demo`: make a small demo scene and print what it made."""
from __future__ import annotations

from pathlib import Path

from engine.commands.common import EXIT_OK, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="generate a small demo scene and print what it made")
    p.add_argument("--out", type=Path, default=Path("viewfinder-demo"), help="folder (default ./viewfinder-demo)")
    p.add_argument("--photos", type=positive_int, default=8)


def run(args) -> int:
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
