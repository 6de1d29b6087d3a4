"""Retrieval and localisation metrics (definitions in evaluate.py's docstring and cafr-method.md)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

RECALL_KS = (1, 5, 10)


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


def recall_curve(ranks: np.ndarray, max_k: int) -> list[list[float]]:
    """[[k, fraction of queries with rank < k], ...] for k = 1..max_k."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        return []
    counts = np.bincount(np.minimum(ranks, max_k), minlength=max_k + 1)
    cumulative = np.cumsum(counts)[:max_k] / ranks.size
    return [[k + 1, float(cumulative[k])] for k in range(max_k)]


def error_stats(errors: np.ndarray) -> dict[str, float]:
    """Mean, median and count of the finite errors (NaN mean and median when there are none)."""
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return {"mean": math.nan, "median": math.nan, "count": 0}
    return {"mean": float(errors.mean()), "median": float(np.median(errors)), "count": int(errors.size)}
