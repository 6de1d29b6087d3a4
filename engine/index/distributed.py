"""Sharded gallery embedding for maps too big for one machine, launched with torchrun:

    python -m torch.distributed.run --nproc_per_node 4 [--nnodes 2 --rdzv-endpoint HOST:PORT] \\
        -m engine.index.distributed MAP.tif [--model CKPT] [--cache-dir DIR] [--overlap 0.5]

Every rank tiles the map identically and embeds its contiguous share of the tiles (CUDA device LOCAL_RANK,
gloo or NCCL only for coordination), writing its shard into the cache folder, which must be storage every
rank can reach. Rank 0 then merges the shards into the ordinary gallery cache entry, so the Localizer (and
`viewfinder localize`) opened with the same model, cache folder and tiling finds the map already indexed.
Shards of an interrupted run are kept and reused.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from engine.atomic import atomic_path
from engine.data.geometry import TileFrame
from engine.index.cache import GalleryCache, GalleryKey, default_cache_dir, map_fingerprint, tiles_to_array
from engine.index.embed import embed_tiles, tiling_for_model
from engine.index.indexer import gallery_tiles, plan_index
from engine.index.model_source import load_model
from engine.model.device import DistributedContext

log = logging.getLogger(__name__)


def shard_path(cache: GalleryCache, key: GalleryKey, rank: int, world: int) -> Path:
    return cache.root / "shards" / f"{key.digest()}-{rank:05d}-of-{world:05d}.safetensors"


def share_bounds(count: int, world: int) -> list[int]:
    """Rank r embeds tiles[bounds[r]:bounds[r + 1]]: contiguous runs of rows, so neighbouring tiles share the
    map blocks they are read from."""
    return [count * rank // world for rank in range(world + 1)]


def _read_shard(path: Path, share: list[TileFrame]) -> np.ndarray | None:
    """A shard's descriptors if it exists and holds exactly `share`; None otherwise."""
    try:
        arrays = load_file(str(path))
    except (OSError, SafetensorError):
        return None
    if arrays.get("origins") is None or not np.array_equal(arrays["origins"], tiles_to_array(share)):
        return None
    return arrays["descriptors"]


def _write_shard(path: Path, share: list[TileFrame], descriptors: np.ndarray) -> None:
    with atomic_path(path, suffix=".tmp") as tmp:
        save_file({"descriptors": np.ascontiguousarray(descriptors, np.float32),
                   "origins": tiles_to_array(share)}, str(tmp))


def index_distributed(map_path: str | os.PathLike, model: str | os.PathLike | None = None,
                      cache_dir: str | os.PathLike | None = None, overlap: float = 0.5,
                      min_valid_fraction: float = 0.25, snap_to_crs_grid: bool = True, batch_size: int = 8,
                      reader_threads: int = 2, ctx: DistributedContext | None = None) -> Path | None:
    """Embed this process's share of the map's tiles (`ctx`: its place in the group; default: the one
    torchrun's environment describes); returns the cache entry's JSON path on rank 0, else None."""
    ctx = ctx or DistributedContext.from_environment()
    rank, world = ctx.rank, ctx.world_size
    cache = GalleryCache(cache_dir if cache_dir is not None else default_cache_dir())
    loaded = load_model(model, ctx.device)
    spec = tiling_for_model(loaded.model, overlap, min_valid_fraction, snap_to_crs_grid)
    # broadcast_object pickles between our own ranks only, never files
    map_id = ctx.broadcast_object(map_fingerprint(map_path, cache.root) if ctx.is_main else None)
    plan = plan_index(loaded, map_path, spec, cache.root, map_id=map_id)
    if ctx.broadcast_object(cache.load(plan.key) is not None if ctx.is_main else None):
        log.info("rank %d: %s is already in the cache", rank, map_path)
        return cache.paths(plan.key)[1] if ctx.is_main else None

    tiles = gallery_tiles(plan)
    bounds = share_bounds(len(tiles), world)
    share = tiles[bounds[rank]:bounds[rank + 1]]
    own = shard_path(cache, plan.key, rank, world)
    if share and _read_shard(own, share) is None:
        run = embed_tiles(loaded.model, plan.map_path, share, spec=spec, batch_size=batch_size,
                          reader_threads=reader_threads)
        _write_shard(own, share, run.descriptors)
        log.info("rank %d/%d: %d tiles in %.1f s (%.1f tiles/s)", rank, world, len(share), run.seconds,
                 run.tiles_per_second)
    ctx.barrier()
    if not ctx.is_main:
        ctx.barrier()
        return None

    descriptors = np.zeros((len(tiles), loaded.model.config.descriptor_dim), dtype=np.float32)
    shards = [shard_path(cache, plan.key, r, world) for r in range(world)]
    for r, path in enumerate(shards):
        part = tiles[bounds[r]:bounds[r + 1]]
        if part:
            values = _read_shard(path, part)
            if values is None:
                raise RuntimeError(f"{path}: shard of rank {r} is missing or does not hold its tiles")
            descriptors[bounds[r]:bounds[r + 1]] = values
    entry = cache.store(plan.key, tiles, descriptors, plan.crs.to_wkt(), plan.map_path)
    for path in shards:
        path.unlink(missing_ok=True)
    ctx.barrier()
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch.distributed.run ... -m engine.index.distributed",
                                     description="Embed a map's gallery across torchrun ranks into the cache.")
    parser.add_argument("map", type=Path)
    parser.add_argument("--model", type=Path, help="checkpoint (default: the shipped or untrained default)")
    parser.add_argument("--cache-dir", type=Path, help="shared cache folder (default: the user cache)")
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--min-valid", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--reader-threads", type=int, default=2)
    parser.add_argument("--timeout-hours", type=float, default=12.0, help="how long ranks wait for each other")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    ctx = DistributedContext.from_environment(timeout=timedelta(hours=args.timeout_hours))
    try:
        entry = index_distributed(args.map, args.model, args.cache_dir, args.overlap, args.min_valid,
                                  batch_size=args.batch_size, reader_threads=args.reader_threads, ctx=ctx)
        if entry is not None:
            print(f"gallery of {args.map} written to {entry}")
    finally:
        ctx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
