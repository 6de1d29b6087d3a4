"""Nearest-tile search over gallery descriptors with faiss: exact inner product, or IVF for huge galleries.

Descriptors are L2-normalised, so inner product = cosine similarity. A spatial prior restricts the search to
tiles whose centres lie within a radius of a point (faiss ID selector; exact within the subset).
"""
from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

EXACT, IVF = "exact", "ivf"


@dataclass(frozen=True)
class SearchHits:
    """Top-k per query, best first. `indices` are gallery rows (-1 where fewer than k candidates)."""

    scores: np.ndarray    # (queries, k) float32
    indices: np.ndarray   # (queries, k) int64


class GallerySearch:
    def __init__(self, descriptors: np.ndarray, centres_xy: np.ndarray | None = None, kind: str = EXACT,
                 ivf_lists: int | None = None, ivf_probe: int = 16) -> None:
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        if descriptors.ndim != 2 or len(descriptors) == 0:
            raise ValueError(f"gallery descriptors must be a non-empty (N, D) array, got {descriptors.shape}")
        self.size, self.dim = descriptors.shape
        self.centres = None if centres_xy is None else np.asarray(centres_xy, dtype=np.float64)
        if self.centres is not None and self.centres.shape != (self.size, 2):
            raise ValueError(f"tile centres must be ({self.size}, 2), got {self.centres.shape}")
        if kind == EXACT:
            self.index = faiss.IndexFlatIP(self.dim)
        elif kind == IVF:
            lists = ivf_lists or max(1, int(4 * np.sqrt(self.size)))
            quantizer = faiss.IndexFlatIP(self.dim)
            self.index = faiss.IndexIVFFlat(quantizer, self.dim, lists, faiss.METRIC_INNER_PRODUCT)
            train = descriptors if self.size <= 256 * lists else descriptors[
                np.random.default_rng(0).choice(self.size, 256 * lists, replace=False)]
            self.index.train(train)
            self.index.nprobe = min(ivf_probe, lists)
        else:
            raise ValueError(f"unknown search kind {kind!r} (use {EXACT!r} or {IVF!r})")
        self.kind = kind
        self.index.add(descriptors)

    def rows_within(self, x: float, y: float, radius_m: float) -> np.ndarray:
        if self.centres is None:
            raise ValueError("this gallery has no tile centres, so a spatial prior cannot be applied")
        d2 = (self.centres[:, 0] - x) ** 2 + (self.centres[:, 1] - y) ** 2
        return np.flatnonzero(d2 <= radius_m * radius_m).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, near: tuple[float, float, float] | None = None) -> SearchHits:
        """Top-k tiles per query; `near` = (x, y, radius_m) keeps only tiles centred within the radius."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"query descriptors have dim {queries.shape[1]}, the gallery {self.dim}")
        k = int(max(1, min(k, self.size)))
        params = None
        if near is not None:
            rows = self.rows_within(*near)
            if rows.size == 0:
                empty = np.full((len(queries), k), -1, np.int64)
                return SearchHits(np.full((len(queries), k), -np.inf, np.float32), empty)
            selector = faiss.IDSelectorBatch(rows)
            params = (faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe) if self.kind == IVF
                      else faiss.SearchParameters(sel=selector))
        scores, indices = self.index.search(queries, k, params=params)
        scores = np.where(indices < 0, -np.inf, scores).astype(np.float32)
        return SearchHits(scores, indices.astype(np.int64))
