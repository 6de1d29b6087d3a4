"""Contact sheet of the synthetic worlds: per biome, orthophoto crops with camera, FoV wedge and overlap
region drawn, beside the rendered ground photos. `python -m engine.synth.contact_sheet OUT.png`."""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Polygon as PolygonPatch  # noqa: E402
from shapely.geometry import MultiPolygon, Polygon  # noqa: E402

from engine.data.geometry import fov_wedge, heading_to_map_vector  # noqa: E402
from engine.synth.biomes.registry import biome_names  # noqa: E402
from engine.synth.export.common import orthophoto_of  # noqa: E402
from engine.synth.generate import generate_world  # noqa: E402
from engine.synth.photos import PhotoSpec, generate_photos  # noqa: E402

CROP_HALF_M = 90.0


def _polygons(geometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]


def _draw_map_panel(ax, world, ortho, truth, range_m: float) -> None:
    col, row = world.map_to_cell(truth.x, truth.y)
    half = int(CROP_HALF_M / world.resolution_m)
    r0, c0 = max(int(row) - half, 0), max(int(col) - half, 0)
    crop = ortho[r0:int(row) + half, c0:int(col) + half]
    x0, y0 = world.cell_to_map(c0, r0)
    x1, y1 = world.cell_to_map(c0 + crop.shape[1], r0 + crop.shape[0])
    ax.imshow(crop, extent=(float(x0), float(x1), float(y1), float(y0)), interpolation="bilinear")
    for poly in _polygons(truth.overlap):
        ax.add_patch(PolygonPatch(np.asarray(poly.exterior.coords), closed=True, facecolor=(1.0, 0.85, 0.1, 0.35),
                                  edgecolor=(1.0, 0.8, 0.0, 0.95), linewidth=1.0))
    wedge = fov_wedge((truth.x, truth.y), truth.heading_deg, truth.fov_deg, range_m)
    ax.plot(*wedge.exterior.xy, color="#00e5ff", linewidth=1.0, linestyle="--")
    east, north = heading_to_map_vector(truth.heading_deg)
    ax.annotate("", xy=(truth.x + 18 * east, truth.y + 18 * north), xytext=(truth.x, truth.y),
                arrowprops={"arrowstyle": "-|>", "color": "#ff3d3d", "lw": 1.8})
    ax.plot([truth.x], [truth.y], "o", color="#ff3d3d", markersize=5, markeredgecolor="white")
    ax.plot(*truth.overlap_centroid, "+", color="white", markersize=9, markeredgewidth=2)
    ax.set_xlim(truth.x - CROP_HALF_M, truth.x + CROP_HALF_M)
    ax.set_ylim(truth.y - CROP_HALF_M, truth.y + CROP_HALF_M)
    ax.set_xticks([])
    ax.set_yticks([])


def make_contact_sheet(out: str | Path, seed: int = 3, photos_per_biome: int = 2, size_m: float = 500.0) -> Path:
    out = Path(out)
    biomes = biome_names()
    fig, axes = plt.subplots(len(biomes), 2 * photos_per_biome,
                             figsize=(4.2 * 2 * photos_per_biome, 3.3 * len(biomes)),
                             gridspec_kw={"width_ratios": [1, 4 / 3] * photos_per_biome})
    spec = PhotoSpec(photos_per_biome, (45.0, 100.0), (512, 384), border_margin_m=CROP_HALF_M)
    for row, biome in enumerate(biomes):
        world = generate_world(biome, seed, size_m=size_m)
        ortho = orthophoto_of(world)
        for k, (truth, image) in enumerate(generate_photos(world, spec, seed + 17 * row, biome)):
            map_ax, photo_ax = axes[row, 2 * k], axes[row, 2 * k + 1]
            _draw_map_panel(map_ax, world, ortho, truth, spec.overlap_range_m)
            photo_ax.imshow(image)
            photo_ax.set_xticks([])
            photo_ax.set_yticks([])
            photo_ax.set_title(f"heading {truth.heading_deg:.0f}°, FoV {truth.fov_deg:.0f}°", fontsize=9)
            if k == 0:
                map_ax.set_ylabel(biome, fontsize=12)
            map_ax.set_title(f"{2 * CROP_HALF_M:.0f} m crop, overlap {truth.overlap.area:.0f} m²", fontsize=9)
    fig.suptitle("Synthetic worlds: orthophoto with camera (red), FoV wedge (cyan), visible overlap region "
                 "(yellow) and its centroid (+), beside the ground photo", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(make_contact_sheet(args.out, args.seed))


if __name__ == "__main__":
    main()
