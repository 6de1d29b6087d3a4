"""Evaluation of a CrossViewNet on a dataset: retrieval recall, VIGOR hit rate, fine-grained and CWR errors.

Definitions (cafr-method.md):
- rank of a query = number of gallery tiles with a strictly higher similarity than its true tile;
  R@k = fraction of queries with rank < k; R@1% uses k = gallery size // 100 (at least 1).
- gallery_scope "city": every city is ranked against its own gallery (CVNAF); "all": one pooled gallery.
  `overall` pools the queries; `city_average` is the mean over cities (the CAFR "Avg. R@1" for CVNAF).
- per-FoV buckets report R@k of the queries whose FoV falls in [lo, hi) (the last bucket includes hi).
- VIGOR hit rate: the fraction of queries whose true tile is outranked by nothing but its semi-positives.
- fine-grained error: the fine head's camera position on the TRUE tile against the truth, in metres
  (the tile's metres per pixel); the baseline guesses the tile centre. CWR error: the CWR point of
  `cwr_level` (0 = finest) against the overlap-centre target (CWR's training target), in metres.
  Both are measured with the camera moved off the tile centre (`offcentre_fraction`, seeded, where the
  satellite image leaves room), since a camera-centred tile makes the tile-centre guess exact.
Gallery tiles are cut from each satellite image centred, at the model's ground resolution, the way
training samples are without augmentation, so a CVNAF query's positive tile is exactly its own chip.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from engine.data.augment import AugmentConfig
from engine.data.datasets.base import IMAGE_ERRORS
from engine.data.datasets.records import CrossViewItem
from engine.data.errors import EmptyDatasetError
from engine.data.geometry import heading_difference
from engine.data.pairs import CrossViewPairs, PairConfig, collate_pairs, load_rgb
from engine.atomic import atomic_path, write_text_atomic
from engine.progress import CancelToken, ProgressCallback
from engine.train.loading import loadable

GALLERY_SCOPES = ("city", "all")
RECALL_KS = (1, 5, 10)
ALL = "all"


@dataclass
class EvalConfig:
    batch_size: int = 32
    num_workers: int = 0
    #: Evaluate a seeded random subset of this many queries (0: all); a gallery made of the queries' own
    #: tiles (CVNAF) shrinks with them, a separate gallery (VIGOR) stays whole.
    max_items: int = 0
    gallery_scope: str = "city"
    fov_buckets: tuple[tuple[float, float], ...] = ((40.0, 60.0), (60.0, 80.0), (80.0, 110.0))
    #: The camera lands uniformly within this central fraction of the tile for the fine/CWR errors (0: the
    #: layout's own camera position).
    offcentre_fraction: float = 0.8
    cwr_level: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        self.fov_buckets = tuple((float(lo), float(hi)) for lo, hi in self.fov_buckets)
        if self.gallery_scope not in GALLERY_SCOPES:
            raise ValueError(f"gallery_scope must be one of {GALLERY_SCOPES}, got {self.gallery_scope!r}")
        if self.batch_size < 1 or self.num_workers < 0 or self.max_items < 0:
            raise ValueError("eval batch_size must be >= 1, num_workers and max_items >= 0")
        if not 0.0 <= self.offcentre_fraction <= 1.0:
            raise ValueError(f"offcentre_fraction must be in [0, 1], got {self.offcentre_fraction}")
        if any(not lo < hi for lo, hi in self.fov_buckets):
            raise ValueError(f"FoV buckets must be (low, high) with low < high, got {self.fov_buckets}")


# ---------------------------------------------------------------- metric functions
def retrieval_ranks(queries: torch.Tensor, gallery: torch.Tensor, positives: torch.Tensor,
                    excluded: Sequence[Sequence[int]] | None = None, chunk: int = 512) -> np.ndarray:
    """Per query, the number of gallery rows with a strictly higher dot product than its positive row.

    excluded: per query, gallery rows that may not count against it (VIGOR semi-positives for the hit rate).
    """
    queries, gallery = queries.float(), gallery.float()
    positives = positives.long()
    ranks = []
    for start in range(0, queries.shape[0], chunk):
        similarity = queries[start:start + chunk] @ gallery.t()
        own = similarity.gather(1, positives[start:start + chunk, None])
        if excluded is not None:
            for row, rows in enumerate(excluded[start:start + chunk]):
                if len(rows):
                    similarity[row, list(rows)] = float("-inf")
        ranks.append((similarity > own).sum(dim=1))
    return torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)


def one_percent_k(gallery_size: int) -> int:
    return max(1, int(gallery_size) // 100)


def recall_table(ranks: np.ndarray, gallery_sizes: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 and R@1% (per query's own gallery size) as fractions; NaN for no queries."""
    ranks, sizes = np.asarray(ranks), np.asarray(gallery_sizes)
    if ranks.size == 0:
        return {**{f"R@{k}": math.nan for k in RECALL_KS}, "R@1%": math.nan}
    table = {f"R@{k}": float(np.mean(ranks < k)) for k in RECALL_KS}
    table["R@1%"] = float(np.mean(ranks < np.maximum(1, sizes // 100)))
    return table


def _stats(errors: np.ndarray) -> dict[str, float]:
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return {"mean": math.nan, "median": math.nan, "count": 0}
    return {"mean": float(errors.mean()), "median": float(np.median(errors)), "count": int(errors.size)}


# ---------------------------------------------------------------- gallery tiles
@dataclass(frozen=True)
class GalleryTile:
    path: Path
    city: str | None
    #: Native metres per pixel and size of the image as the layout defines it (None when unknown).
    metres_per_px: float | None = None
    native_size_px: tuple[int, int] | None = None


def gallery_window(image_wh: tuple[int, int], config: PairConfig, native_metres_per_px: float | None,
                   native_size_px: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of the centred tile window, sized like CrossViewPairs sizes its windows."""
    out_h, out_w = config.satellite_hw
    image_w, image_h = image_wh
    fits = min(image_w / out_w, image_h / out_h)
    if config.metres_per_px is not None and native_metres_per_px is not None:
        scale_x = image_w / native_size_px[0] if native_size_px else 1.0
        scale = min(config.metres_per_px / (native_metres_per_px / scale_x), fits)
    else:
        scale = config.tile_fraction * fits
    width = max(1, min(image_w, round(out_w * scale)))
    height = max(1, min(image_h, round(out_h * scale)))
    return (image_w - width) // 2, (image_h - height) // 2, width, height


class GalleryTiles(Dataset):
    """Model-ready satellite tiles (3, H, W) in [0, 1]; an unreadable image gives None (left out)."""

    def __init__(self, tiles: Sequence[GalleryTile], config: PairConfig) -> None:
        self.tiles = list(tiles)
        self.config = config

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> dict | None:
        tile = self.tiles[index]
        try:
            image = load_rgb(tile.path)
        except (ValueError, *IMAGE_ERRORS):   # UnusableItemError is a ValueError
            return None
        x0, y0, width, height = gallery_window((image.shape[1], image.shape[0]), self.config,
                                               tile.metres_per_px, tile.native_size_px)
        out_h, out_w = self.config.satellite_hw
        resized = Image.fromarray(image).resize((out_w, out_h), Image.Resampling.BILINEAR,
                                                box=(x0, y0, x0 + width, y0 + height))
        tensor = torch.from_numpy(np.array(resized, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        return {"satellite": tensor, "index": torch.tensor(index, dtype=torch.int64)}


def gallery_tiles(items: Sequence[CrossViewItem], gallery_paths: Sequence[Path]) -> list[GalleryTile]:
    """Gallery entries with the city and native resolution the items know for each path (VIGOR tiles that
    no query uses get the resolution of their city's other tiles)."""
    by_path: dict[Path, CrossViewItem] = {}
    for item in items:
        by_path.setdefault(Path(item.satellite_path), item)
        for semi in item.semi_positives:
            by_path.setdefault(Path(semi.path), item)
    city_resolution = {item.city: (item.metres_per_px, item.satellite_size_px) for item in items}
    cities = {item.city for item in items}
    tiles = []
    for path in gallery_paths:
        path = Path(path)
        item = by_path.get(path)
        if item is not None:
            tiles.append(GalleryTile(path, item.city, item.metres_per_px, item.satellite_size_px))
            continue
        city = path.parent.parent.name if path.parent.parent.name in cities else None
        mpp, size = city_resolution.get(city, (None, None))
        tiles.append(GalleryTile(path, city, mpp, size))
    return tiles


# ---------------------------------------------------------------- report
@dataclass
class EvalReport:
    """Results of `evaluate`. Metrics are fractions (recall) and metres; arrays are kept for the plots."""

    dataset: str
    queries: int
    gallery_size: int
    gallery_scope: str
    overall: dict[str, float]
    city_average: dict[str, float]
    per_city: dict[str, dict[str, float]]
    per_fov: dict[str, dict[str, float]]
    fov_average_r1: float
    hit_rate: float | None
    fine: dict[str, Any]
    cwr: dict[str, Any]
    settings: dict[str, Any]
    seconds: float
    skipped_queries: int = 0
    ranks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    query_gallery_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    query_cities: list[str] = field(default_factory=list, repr=False)
    fine_errors_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    centre_errors_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    cwr_errors_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def metrics(self) -> dict[str, float]:
        """A flat dict for progress curves and histories."""
        flat = {key: value for key, value in self.overall.items()}
        flat["city_avg_R@1"] = self.city_average.get("R@1", math.nan)
        flat["fov_avg_R@1"] = self.fov_average_r1
        if self.hit_rate is not None:
            flat["hit_rate"] = self.hit_rate
        flat["fine_median_m"] = self.fine.get("median_m", math.nan)
        flat["fine_mean_m"] = self.fine.get("mean_m", math.nan)
        flat["tile_centre_median_m"] = self.fine.get("tile_centre_median_m", math.nan)
        flat["cwr_median_m"] = self.cwr.get("median_m", math.nan)
        return flat

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({
            "dataset": self.dataset, "queries": self.queries, "skipped_queries": self.skipped_queries,
            "gallery_size": self.gallery_size, "gallery_scope": self.gallery_scope,
            "overall": self.overall, "city_average": self.city_average, "per_city": self.per_city,
            "per_fov": self.per_fov, "fov_average_R@1": self.fov_average_r1, "hit_rate": self.hit_rate,
            "fine": self.fine, "cwr": self.cwr, "settings": self.settings, "seconds": self.seconds,
            "recall_curve": recall_curve(self.ranks, max_k=min(100, max(1, self.gallery_size)))})

    def table(self) -> str:
        """A plain-text summary for the command line."""
        lines = [f"{self.dataset}: {self.queries} queries, gallery {self.gallery_size} tiles "
                 f"({'per city' if self.gallery_scope == 'city' else 'pooled'})"]
        header = f"  {'group':<24} {'queries':>7} {'gallery':>7} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'R@1%':>7}"
        lines.append(header)

        def row(name: str, values: dict) -> str:
            gallery = str(int(values["gallery"])) if "gallery" in values else "-"
            return (f"  {name:<24} {int(values.get('queries', 0)):>7} {gallery:>7} "
                    + " ".join(f"{100 * values.get(k, math.nan):>6.2f}%" for k in ("R@1", "R@5", "R@10", "R@1%")))

        for city, values in self.per_city.items():
            lines.append(row(city, values))
        for bucket, values in self.per_fov.items():
            lines.append(row(f"FoV {bucket}", values))
        lines.append(row("all queries", {**self.overall, "queries": self.queries, "gallery": self.gallery_size}))
        if len(self.per_city) > 1:
            lines.append(f"  city average R@1 {100 * self.city_average['R@1']:.2f}%")
        if self.per_fov:
            lines.append(f"  FoV-bucket average R@1 {100 * self.fov_average_r1:.2f}%")
        if self.hit_rate is not None:
            lines.append(f"  hit rate {100 * self.hit_rate:.2f}%")
        if self.fine.get("count"):
            lines.append(f"  fine-grained error: mean {self.fine['mean_m']:.2f} m, median {self.fine['median_m']:.2f} m"
                         f" (tile centre: mean {self.fine['tile_centre_mean_m']:.2f} m, median "
                         f"{self.fine['tile_centre_median_m']:.2f} m; {self.fine['count']} pairs)")
        if self.cwr.get("count"):
            lines.append(f"  CWR centre error (level {self.cwr['level']}): mean {self.cwr['mean_m']:.2f} m, "
                         f"median {self.cwr['median_m']:.2f} m")
        return "\n".join(lines)


def recall_curve(ranks: np.ndarray, max_k: int) -> list[list[float]]:
    """[[k, fraction of queries with rank < k], ...] for k = 1..max_k."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        return []
    counts = np.bincount(np.minimum(ranks, max_k), minlength=max_k + 1)
    cumulative = np.cumsum(counts)[:max_k] / ranks.size
    return [[k + 1, float(cumulative[k])] for k in range(max_k)]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------- evaluation
def _offcentre_only(fraction: float) -> AugmentConfig:
    return AugmentConfig(flip_prob=0.0, rotate_prob=0.0, offcentre_prob=1.0, offcentre_fraction=fraction,
                         colour_jitter=0.0, hue_jitter=0.0, blur_sharpen_prob=0.0, jpeg_prob=0.0,
                         dropout_prob=0.0)


def _loader(dataset: Dataset, config: EvalConfig) -> DataLoader:
    return DataLoader(loadable(dataset, config.num_workers), batch_size=config.batch_size, shuffle=False,
                      num_workers=config.num_workers, collate_fn=collate_pairs)


def _choose_queries(items: list[CrossViewItem], gallery: list[Path], config: EvalConfig
                    ) -> tuple[list[CrossViewItem], list[Path]]:
    if not config.max_items or config.max_items >= len(items):
        return items, gallery
    rng = np.random.default_rng([config.seed, 0xE7A1])
    chosen = sorted(rng.choice(len(items), size=config.max_items, replace=False).tolist())
    subset = [items[i] for i in chosen]
    own_tiles = {Path(item.satellite_path) for item in items}
    if {Path(p) for p in gallery} == own_tiles:  # the gallery is the queries' chips (CVNAF): shrink it too
        keep = {Path(item.satellite_path) for item in subset}
        gallery = [p for p in gallery if Path(p) in keep]
    return subset, gallery


def evaluate(model, dataset, config: EvalConfig | None = None, *, pair_config: PairConfig | None = None,
             progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
             dataset_name: str | None = None) -> EvalReport:
    """Evaluate `model` (a CrossViewNet, on its device) on `dataset`: a reader (items + gallery) or a list
    of CrossViewItems (gallery = their satellite images). pair_config: how images become model inputs
    (default: the model's sizes and resolution)."""
    config = config or EvalConfig()
    started = time.perf_counter()
    items = list(getattr(dataset, "items", dataset))
    gallery = list(getattr(dataset, "gallery", None) or dict.fromkeys(Path(i.satellite_path) for i in items))
    if not items:
        raise EmptyDatasetError("evaluate: the dataset has no items")
    name = dataset_name or getattr(dataset, "dataset_name", None) or items[0].dataset
    items, gallery = _choose_queries(items, [Path(p) for p in gallery], config)
    pair_config = pair_config or PairConfig(ground_hw=model.config.ground_hw,
                                            satellite_hw=model.config.satellite_hw,
                                            metres_per_px=model.config.metres_per_pixel)
    was_training = model.training
    model.eval()
    try:
        tiles = gallery_tiles(items, gallery)
        gallery_desc, gallery_ok = _embed_gallery(model, tiles, pair_config, config, progress, cancel)
        queries = _embed_queries(model, items, pair_config, config, progress, cancel)
    finally:
        model.train(was_training)
    return _report(name, items, tiles, gallery_desc, gallery_ok, queries, config, pair_config,
                   time.perf_counter() - started)


def _embed_gallery(model, tiles: list[GalleryTile], pair_config: PairConfig, config: EvalConfig,
                   progress: ProgressCallback | None, cancel: CancelToken | None) -> tuple[torch.Tensor, np.ndarray]:
    descriptors = torch.zeros(len(tiles), model.config.descriptor_dim)
    ok = np.zeros(len(tiles), dtype=bool)
    done = 0
    with torch.inference_mode():
        for batch in _loader(GalleryTiles(tiles, pair_config), config):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if batch is not None:
                index = batch["index"]
                embedding = model.embed_satellite(batch["satellite"], with_pyramid=False)
                descriptors[index] = embedding.descriptor.float().cpu()
                ok[index.numpy()] = True
                done += len(index)
            if progress is not None:
                progress("gallery tiles", min(done, len(tiles)), len(tiles))
    if progress is not None:
        progress("gallery tiles", len(tiles), len(tiles))
    return descriptors, ok


def _embed_queries(model, items: list[CrossViewItem], pair_config: PairConfig, config: EvalConfig,
                   progress: ProgressCallback | None, cancel: CancelToken | None) -> dict[str, np.ndarray]:
    augment = _offcentre_only(config.offcentre_fraction) if config.offcentre_fraction > 0 else None
    pairs = CrossViewPairs(items, pair_config, augment, seed=config.seed)
    parts: dict[str, list] = {key: [] for key in (
        "index", "descriptor", "fov", "camera_px", "fine_px", "metres_per_px", "cwr_target_px", "cwr_px",
        "heading", "fine_heading", "tile_wh")}
    done = 0
    level = config.cwr_level
    with torch.inference_mode():
        for batch in _loader(pairs, config):
            if cancel is not None:
                cancel.raise_if_cancelled()
            if batch is None:
                continue
            ground = model.embed_ground(batch["ground"])
            satellite = model.embed_satellite(batch["satellite"])
            attention = model.attend(ground, satellite)
            fine = model.localize_fine(ground, satellite)
            if not -len(attention.strides) <= level < len(attention.strides):
                raise ValueError(f"cwr_level {level} does not exist; the model has {len(attention.strides)} levels")
            tile_h, tile_w = batch["satellite"].shape[-2:]
            parts["index"].append(batch["index"].numpy())
            parts["descriptor"].append(ground.descriptor.float().cpu())
            parts["fov"].append(batch["fov_deg"].numpy())
            parts["camera_px"].append(batch["camera_px"].numpy())
            parts["fine_px"].append(fine.position_px.float().cpu().numpy())
            parts["metres_per_px"].append(batch["metres_per_px"].numpy())
            parts["cwr_target_px"].append(batch["overlap_centre_px"].numpy())
            parts["cwr_px"].append(attention.points_px[:, level].float().cpu().numpy())
            parts["heading"].append(batch["heading_deg"].numpy())
            parts["fine_heading"].append(fine.heading_deg.float().cpu().numpy())
            parts["tile_wh"].append(np.tile([tile_w, tile_h], (len(batch["index"]), 1)))
            done += len(batch["index"])
            if progress is not None:
                progress("queries", done, len(items))
    if not parts["index"]:
        raise EmptyDatasetError("evaluate: no query could be loaded")
    return {key: (torch.cat(value) if key == "descriptor" else np.concatenate(value))
            for key, value in parts.items()}


def _report(name: str, items: list[CrossViewItem], tiles: list[GalleryTile], gallery_desc: torch.Tensor,
            gallery_ok: np.ndarray, queries: dict, config: EvalConfig, pair_config: PairConfig,
            seconds: float) -> EvalReport:
    tile_index = {tile.path: i for i, tile in enumerate(tiles) if gallery_ok[i]}
    query_items = [items[i] for i in queries["index"]]
    positives = np.array([tile_index.get(Path(item.satellite_path), -1) for item in query_items])
    usable = positives >= 0
    groups: dict[str, list[int]] = {}
    for row, item in enumerate(query_items):
        if usable[row]:
            key = (item.city or ALL) if config.gallery_scope == "city" else ALL
            groups.setdefault(key, []).append(row)

    ranks = np.full(len(query_items), -1, dtype=np.int64)
    sizes = np.zeros(len(query_items), dtype=np.int64)
    hits = np.zeros(len(query_items), dtype=bool)
    has_semi = any(item.semi_positives for item in query_items)
    for key, rows in groups.items():
        members = [i for i, tile in enumerate(tiles) if gallery_ok[i]
                   and (key == ALL or tile.city == key)]
        local = {tiles[i].path: position for position, i in enumerate(members)}
        group_desc = gallery_desc[members]
        group_pos = torch.tensor([local[Path(query_items[r].satellite_path)] for r in rows])
        group_queries = queries["descriptor"][rows]
        ranks[rows] = retrieval_ranks(group_queries, group_desc, group_pos)
        sizes[rows] = len(members)
        if has_semi:
            semis = [[local[Path(s.path)] for s in query_items[r].semi_positives if Path(s.path) in local]
                     for r in rows]
            hits[rows] = retrieval_ranks(group_queries, group_desc, group_pos, excluded=semis) == 0

    ranked = ranks >= 0
    overall = recall_table(ranks[ranked], sizes[ranked])
    per_city = {}
    for key, rows in sorted(groups.items()):
        per_city[key] = {**recall_table(ranks[rows], sizes[rows]), "queries": len(rows),
                         "gallery": int(sizes[rows[0]])}
    if config.gallery_scope == "all":
        by_city: dict[str, list[int]] = {}
        for row in np.flatnonzero(ranked):
            by_city.setdefault(query_items[row].city or ALL, []).append(int(row))
        if len(by_city) > 1:
            per_city = {city: {**recall_table(ranks[rows], sizes[rows]), "queries": len(rows),
                               "gallery": int(sizes[rows[0]])} for city, rows in sorted(by_city.items())}
    city_average = {key: float(np.mean([c[key] for c in per_city.values()])) if per_city else math.nan
                    for key in ("R@1", "R@5", "R@10", "R@1%")}

    per_fov = {}
    fov = queries["fov"]
    for number, (lo, hi) in enumerate(config.fov_buckets):
        last = number == len(config.fov_buckets) - 1
        inside = ranked & (fov >= lo) & ((fov <= hi) if last else (fov < hi))
        if inside.any():
            per_fov[f"{lo:g}-{hi:g}"] = {**recall_table(ranks[inside], sizes[inside]),
                                         "queries": int(inside.sum())}
    fov_average = float(np.mean([b["R@1"] for b in per_fov.values()])) if per_fov else math.nan

    mpp = queries["metres_per_px"]
    fine_err = np.linalg.norm(queries["fine_px"] - queries["camera_px"], axis=1) * mpp
    centre_err = np.linalg.norm(queries["tile_wh"] / 2.0 - queries["camera_px"], axis=1) * mpp
    cwr_err = np.linalg.norm(queries["cwr_px"] - queries["cwr_target_px"], axis=1) * mpp
    fine_stats, centre_stats, cwr_stats = _stats(fine_err), _stats(centre_err), _stats(cwr_err)
    heading_known = np.isfinite(queries["heading"])
    heading_err = np.abs(heading_difference(queries["fine_heading"][heading_known],
                                            queries["heading"][heading_known]))
    fine = {"mean_m": fine_stats["mean"], "median_m": fine_stats["median"], "count": fine_stats["count"],
            "tile_centre_mean_m": centre_stats["mean"], "tile_centre_median_m": centre_stats["median"],
            "median_ratio_tile_centre_to_fine": (centre_stats["median"] / fine_stats["median"]
                                                 if fine_stats["count"] and fine_stats["median"] > 0 else math.nan),
            "heading_median_error_deg": float(np.median(heading_err)) if heading_err.size else math.nan,
            "per_city_median_m": {}}
    for city in sorted({item.city or ALL for item in query_items}):
        rows = [r for r, item in enumerate(query_items) if (item.city or ALL) == city]
        fine["per_city_median_m"][city] = _stats(fine_err[rows])["median"]
    cwr = {"level": config.cwr_level, "mean_m": cwr_stats["mean"], "median_m": cwr_stats["median"],
           "count": cwr_stats["count"]}
    return EvalReport(
        dataset=name, queries=int(ranked.sum()), gallery_size=int(gallery_ok.sum()),
        gallery_scope=config.gallery_scope, overall=overall, city_average=city_average, per_city=per_city,
        per_fov=per_fov, fov_average_r1=fov_average,
        hit_rate=float(hits[ranked].mean()) if has_semi and ranked.any() else None,
        fine=fine, cwr=cwr,
        settings={"eval": _json_safe(vars(config)), "pairs": _json_safe(vars(pair_config))},
        seconds=seconds, skipped_queries=len(items) - int(ranked.sum()), ranks=ranks[ranked],
        query_gallery_sizes=sizes[ranked], query_cities=[query_items[r].city or ALL for r in np.flatnonzero(ranked)],
        fine_errors_m=fine_err[np.isfinite(fine_err)], centre_errors_m=centre_err[np.isfinite(centre_err)],
        cwr_errors_m=cwr_err[np.isfinite(cwr_err)])


# ---------------------------------------------------------------- files
def write_report(report: EvalReport, folder: str | Path) -> dict[str, Path]:
    """report.json, recall_at_k.png and error_cdf.png in `folder` (created); returns their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "recall": folder / "recall_at_k.png",
             "errors": folder / "error_cdf.png"}
    write_text_atomic(paths["json"], json.dumps(report.to_dict(), indent=2) + "\n")

    figure = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    max_k = min(100, max(1, report.gallery_size))
    cities = np.array(report.query_cities)
    if len(report.per_city) > 1:
        for city in report.per_city:
            curve = np.array(recall_curve(report.ranks[cities == city], max_k))
            if curve.size:
                axes.plot(curve[:, 0], 100 * curve[:, 1], linewidth=1, alpha=0.7, label=city)
    curve = np.array(recall_curve(report.ranks, max_k))
    if curve.size:
        axes.plot(curve[:, 0], 100 * curve[:, 1], linewidth=2.2, color="black", label="all queries")
    axes.set_xscale("log")
    axes.set_xlabel("k")
    axes.set_ylabel("recall@k (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{report.dataset}: recall@k ({report.queries} queries)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    _save_png(figure, paths["recall"])

    figure = Figure(figsize=(6, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    series = [("fine head", report.fine_errors_m), ("tile centre (baseline)", report.centre_errors_m),
              (f"CWR point (level {report.cwr.get('level', 0)})", report.cwr_errors_m)]
    for label, errors in series:
        if len(errors):
            ordered = np.sort(errors)
            axes.plot(ordered, 100 * np.arange(1, len(ordered) + 1) / len(ordered), label=label)
    axes.set_xlabel("error (m)")
    axes.set_ylabel("pairs with smaller error (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"{report.dataset}: localisation error on the true tile")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    _save_png(figure, paths["errors"])
    return paths


def _save_png(figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
