"""On-disk gallery cache: tile descriptors keyed by map content + model weights + tiling, so a map is embedded
once per model. Files: `<key>.safetensors` (descriptors, tile origins) and `<key>.json` (keys, tile size, CRS),
both written atomically, the JSON last (it marks a complete entry). Nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from engine.atomic import atomic_path, write_text_atomic
from engine.data.geometry import TileFrame
from engine.geo.raster import file_content_hash
from engine.geo.tiling import TilingSpec

log = logging.getLogger(__name__)

CACHE_FORMAT = "viewfinder.gallery"
CACHE_VERSION = 1
CACHE_ENV = "VIEWFINDER_CACHE"


def default_cache_dir() -> Path:
    """$VIEWFINDER_CACHE, else $XDG_CACHE_HOME/viewfinder, else ~/.cache/viewfinder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "viewfinder"


def model_fingerprint(model: torch.nn.Module, config: dict | None = None) -> str:
    """SHA-256 of a model's configuration and every tensor of its state dict (names, dtypes, shapes, bytes).

    The same weights give the same id whether they were loaded from a file or built in memory; any change
    of a weight changes it.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(config or {}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def map_fingerprint(path: str | os.PathLike, cache_dir: str | os.PathLike | None) -> str:
    """SHA-256 of a map file's bytes, remembered per (path, size, mtime, inode) so reopening costs a stat."""
    path = Path(path).resolve()
    stat = path.stat()
    identity = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    memo = None
    if cache_dir is not None:
        memo = Path(cache_dir) / "map-hashes" / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
        try:
            remembered = json.loads(memo.read_text())
            if remembered.get("identity") == identity and len(remembered.get("sha256", "")) == 64:
                return remembered["sha256"]
        except (OSError, ValueError):
            pass
    content = file_content_hash(path)
    if memo is not None:
        try:
            write_text_atomic(memo, json.dumps({"identity": identity, "sha256": content}))
        except OSError as exc:  # a read-only cache only costs the hash next time
            log.warning("cannot remember the hash of %s in %s: %s", path, memo, exc)
    return content


@dataclass(frozen=True)
class GalleryKey:
    """Everything the descriptors of a map depend on."""

    map_id: str                       # sha256 of the map file
    model_id: str                     # model_fingerprint of the weights
    tiling: TilingSpec
    satellite_hw: tuple[int, int]

    def to_json(self) -> dict:
        return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "map_id": self.map_id, "model_id": self.model_id,
                "tiling": self.tiling.key(), "satellite_hw": list(self.satellite_hw)}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CachedGallery:
    tiles: list[TileFrame]
    descriptors: np.ndarray          # (N, D) float32, unit rows
    crs_wkt: str
    created: str


def tiles_to_array(tiles: list[TileFrame]) -> np.ndarray:
    return np.asarray([(t.origin_x, t.origin_y) for t in tiles], dtype=np.float64).reshape(-1, 2)


def tiles_from_array(origins: np.ndarray, spec: TilingSpec) -> list[TileFrame]:
    return [TileFrame(float(x), float(y), spec.tile_px, spec.tile_px, spec.metres_per_px) for x, y in origins]


class GalleryCache:
    """A folder of gallery entries. Unreadable or mismatching entries count as misses and get rewritten."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def paths(self, key: GalleryKey) -> tuple[Path, Path]:
        stem = self.root / "galleries" / key.digest()
        return stem.with_suffix(".safetensors"), stem.with_suffix(".json")

    def load(self, key: GalleryKey) -> CachedGallery | None:
        tensor_path, meta_path = self.paths(key)
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key.to_json():
                return None
            arrays = load_file(str(tensor_path))
            descriptors, origins = arrays["descriptors"], arrays["origins"]
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            log.warning("ignoring unreadable gallery cache entry %s: %s", meta_path, exc)
            return None
        count = meta.get("tiles")
        if descriptors.ndim != 2 or len(descriptors) != count or origins.shape != (count, 2):
            log.warning("ignoring inconsistent gallery cache entry %s", meta_path)
            return None
        return CachedGallery(tiles_from_array(origins, key.tiling), descriptors.astype(np.float32, copy=False),
                             meta.get("crs_wkt", ""), meta.get("created", ""))

    def store(self, key: GalleryKey, tiles: list[TileFrame], descriptors: np.ndarray, crs_wkt: str,
              map_path: str | os.PathLike = "") -> Path:
        """Write an entry (tensors first, then the JSON that completes it); returns the JSON path."""
        tensor_path, meta_path = self.paths(key)
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        if len(descriptors) != len(tiles):
            raise ValueError(f"{len(descriptors)} descriptors for {len(tiles)} tiles")
        with atomic_path(tensor_path, suffix=".tmp") as tmp:
            save_file({"descriptors": descriptors, "origins": tiles_to_array(tiles)}, str(tmp),
                      metadata={"format": CACHE_FORMAT})
        meta = {"key": key.to_json(), "tiles": len(tiles), "descriptor_dim": int(descriptors.shape[1]),
                "tile_px": key.tiling.tile_px, "metres_per_px": key.tiling.metres_per_px, "crs_wkt": crs_wkt,
                "map_path": str(map_path), "created": datetime.now(UTC).isoformat(timespec="seconds")}
        write_text_atomic(meta_path, json.dumps(meta, indent=1))
        return meta_path
