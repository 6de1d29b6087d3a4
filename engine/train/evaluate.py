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
Metric functions live in metrics.py, the embedding passes in eval_embedding.py, the report and its plots in
eval_report.py.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from engine.data.datasets.records import CrossViewItem
from engine.data.errors import EmptyDatasetError
from engine.data.geometry import heading_difference
from engine.data.pairs import PairConfig
from engine.progress import CancelToken, ProgressCallback
from engine.train.eval_config import EvalConfig
from engine.train.eval_embedding import GalleryTile, embed_gallery, embed_queries, gallery_tiles
from engine.train.eval_report import EvalReport
from engine.train.json_values import json_safe
from engine.train.metrics import error_stats, recall_table, retrieval_ranks

#: The group of queries without a city, and the pooled gallery.
ALL = "all"


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
        gallery_desc, gallery_ok = embed_gallery(model, tiles, pair_config, config, progress, cancel)
        queries = embed_queries(model, items, pair_config, config, progress, cancel)
    finally:
        model.train(was_training)
    return _report(name, items, tiles, gallery_desc, gallery_ok, queries, config, pair_config,
                   time.perf_counter() - started)


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
    fine_stats, centre_stats, cwr_stats = error_stats(fine_err), error_stats(centre_err), error_stats(cwr_err)
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
        fine["per_city_median_m"][city] = error_stats(fine_err[rows])["median"]
    cwr = {"level": config.cwr_level, "mean_m": cwr_stats["mean"], "median_m": cwr_stats["median"],
           "count": cwr_stats["count"]}
    return EvalReport(
        dataset=name, queries=int(ranked.sum()), gallery_size=int(gallery_ok.sum()),
        gallery_scope=config.gallery_scope, overall=overall, city_average=city_average, per_city=per_city,
        per_fov=per_fov, fov_average_r1=fov_average,
        hit_rate=float(hits[ranked].mean()) if has_semi and ranked.any() else None,
        fine=fine, cwr=cwr,
        settings={"eval": json_safe(vars(config)), "pairs": json_safe(vars(pair_config))},
        seconds=seconds, skipped_queries=len(items) - int(ranked.sum()), ranks=ranks[ranked],
        query_gallery_sizes=sizes[ranked], query_cities=[query_items[r].city or ALL for r in np.flatnonzero(ranked)],
        fine_errors_m=fine_err[np.isfinite(fine_err)], centre_errors_m=centre_err[np.isfinite(centre_err)],
        cwr_errors_m=cwr_err[np.isfinite(cwr_err)])
