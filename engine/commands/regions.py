"""`viewfinder regions`: cut a map too large for one projection into regions, each in its own ground frame."""
from __future__ import annotations

from pathlib import Path

from engine.commands.common import EXIT_OK, UsageError, positive_float


def add_parser(sub) -> None:
    p = sub.add_parser("regions", help="cut a continent-size map into regions with true ground scale",
                       description="Write one small VRT per region of MAP (about --span-km across, neighbours "
                                   "overlapping by 5 km), each warping the map on the fly into a transverse "
                                   "Mercator centred on it, so ground scale is true to 0.1 %%. Index and "
                                   "localise on a region's VRT as on any map; the VRTs read MAP where it lies.")
    p.add_argument("map", type=Path, help="GeoTIFF map georeferenced by a CRS and geotransform")
    p.add_argument("--out", type=Path, help="folder for the VRTs (default: beside the map; must exist)")
    p.add_argument("--span-km", type=positive_float, default=None, help="region side in km (default 500)")


def run(args) -> int:
    if args.span_km and not 20.0 <= args.span_km <= 1000.0:
        raise UsageError("--span-km must be between 20 and 1000 (beyond 1000 km scale drifts past 0.5 %)")
    from engine.pipeline import MapRaster, RasterError, write_regions

    kwargs = {"span_km": args.span_km} if args.span_km else {}
    written = write_regions(args.map, args.out, **kwargs)
    print(f"{args.map}: {len(written)} regions")
    for region, path in written:
        try:
            with MapRaster(path) as raster:
                west, south, east, north = region.lonlat_bounds
                left, bottom, right, top = raster.bounds
                print(f"  {path.name}: lon {west:.3f}..{east:.3f}, lat {south:.3f}..{north:.3f}, "
                      f"{(right - left) / 1000:.0f} x {(top - bottom) / 1000:.0f} km, {raster.width} x "
                      f"{raster.height} px at {raster.ground_resolution_m:.3g} m/px")
        except RasterError as exc:          # e.g. a region of the map that holds no pixels
            print(f"  {path.name}: {exc}")
    return EXIT_OK
