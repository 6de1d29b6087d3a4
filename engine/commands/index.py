"""`viewfinder index`: tile and embed a map into the gallery cache (later runs reuse it)."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.commands.common import EXIT_OK
from engine.commands.localize import add_model_arguments, index_with_bars, make_localizer

DISTRIBUTED_HELP = """\
maps too big for one machine: embed the gallery across processes or nodes with torchrun, into the same
cache (the cache folder must be reachable by every rank), then run `viewfinder localize` as usual:
  python -m torch.distributed.run --nproc_per_node 4 -m engine.index.distributed MAP.tif \\
      [--model CKPT] [--cache-dir DIR] [--overlap 0.5]
"""


def add_parser(sub) -> None:
    p = sub.add_parser("index", help="tile and embed a map into the gallery cache", epilog=DISTRIBUTED_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Tile a GeoTIFF map at the model's tile size and ground resolution, embed "
                                   "every tile and cache the descriptors (keyed by map content, model weights "
                                   "and tiling), so localising photos on it later starts at once.")
    p.add_argument("map", type=Path, help="GeoTIFF map (any CRS; geographic maps are warped to UTM)")
    add_model_arguments(p)


def run(args) -> int:
    localizer = make_localizer(args)
    gallery = index_with_bars(localizer, args.map, args.quiet, args.force)
    spec = gallery.spec
    left, bottom, right, top = gallery.bounds
    print(f"{args.map}: {len(gallery)} tiles of {spec.tile_m:.1f} m ({spec.tile_px} px at {spec.metres_per_px} m/px, "
          f"overlap {spec.overlap:.0%}) over {right - left:.0f} x {top - bottom:.0f} m, {gallery.crs_name}")
    if gallery.from_cache:
        print(f"loaded from the cache in {gallery.index_seconds:.2f} s")
    else:
        print(f"embedded in {gallery.index_seconds:.1f} s ({gallery.tiles_per_second:.1f} tiles/s)")
    if gallery.cache_file is not None:
        print(f"cache: {gallery.cache_file}")
    print(f"map id {gallery.map_id[:16]}, model id {gallery.model_id[:16]}")
    return EXIT_OK
