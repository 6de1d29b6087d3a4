"""Sample4Geo-style batches: each batch is built from anchors plus their nearest neighbours, so that every
batch is full of hard negatives for InfoNCE.

- Neighbours come from GPS in the first epoch (the `pool` nearest items of the same city) and are re-mined
  with the current model after each epoch (the `pool` satellite images most similar to an item's ground
  photo, its own tile excluded).
- A batch: a random anchor, then its `closest` nearest neighbours and `select - closest` drawn at random
  from ranks closest..range, then the next anchor, until the batch is full (Sample4Geo: 32 + 32 of the 128
  nearest for batches of 128; smaller batches scale this down).
- No item is used twice in an epoch, and no two items that share a satellite image (the same key) ever
  share a batch: InfoNCE would otherwise treat a true match as a negative.
The plan depends only on (seed, epoch, neighbour table), so a resumed run rebuilds it exactly.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engine.data.datasets.records import CrossViewItem

EARTH_RADIUS_M = 6_371_000.0
NO_NEIGHBOUR = -1


class NeighbourBatchSampler:
    def __init__(self, conflict_keys: Sequence[Sequence[str]], batch_size: int, seed: int, *,
                 neighbours_per_anchor: int | None = None, neighbour_range: int | None = None,
                 pool: int = 128) -> None:
        if batch_size < 2:
            raise ValueError(f"batch size must be at least 2, got {batch_size}")
        self.keys = [tuple(keys) for keys in conflict_keys]
        self.count = len(self.keys)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.pool = int(pool)
        self.select = int(neighbours_per_anchor) if neighbours_per_anchor is not None else max(
            1, min(64, self.batch_size // 2))
        self.range = int(neighbour_range) if neighbour_range is not None else 2 * self.select
        self.range = max(self.select, min(self.range, self.pool))
        self.neighbours: np.ndarray | None = None
        self.source = "none"
        #: The epoch the neighbour table was made for (-1: none yet).
        self.built_for_epoch = -1

    # ------------------------------------------------------------ neighbours
    def set_neighbours(self, table: np.ndarray | None, source: str, epoch: int = -1) -> None:
        """(N, K) item indices per item, nearest first, -1 for none, made for `epoch`; None plans plain
        random batches."""
        if table is not None:
            table = np.asarray(table, dtype=np.int64)
            if table.ndim != 2 or table.shape[0] != self.count:
                raise ValueError(f"neighbour table must be ({self.count}, K), got {table.shape}")
        self.neighbours = table
        self.source = source if table is not None else "none"
        self.built_for_epoch = int(epoch)

    # ------------------------------------------------------------ plans
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every full batch of `epoch` (a last partial batch is dropped unless it is the only one)."""
        rng = np.random.default_rng([self.seed, int(epoch), 0x5A4D])
        queue = deque(int(i) for i in rng.permutation(self.count))
        placed = np.zeros(self.count, dtype=bool)
        deferred = np.zeros(self.count, dtype=bool)
        batches: list[list[int]] = []
        batch: list[int] = []
        used: set[str] = set()

        def try_add(index: int) -> bool:
            nonlocal batch, used
            if placed[index] or not used.isdisjoint(self.keys[index]):
                return False
            batch.append(index)
            used.update(self.keys[index])
            placed[index] = True
            if len(batch) == self.batch_size:
                batches.append(batch)
                batch, used = [], set()
            return True

        while queue:
            anchor = queue.popleft()
            if placed[anchor]:
                continue
            opened = len(batches)
            if not try_add(anchor):
                if not deferred[anchor]:   # clashes with this batch only: try it once more, later
                    deferred[anchor] = True
                    queue.append(anchor)
                continue
            if self.neighbours is None or len(batches) != opened:
                continue
            for candidate in self._candidates(anchor, rng):
                try_add(candidate)
                if len(batches) != opened:   # the anchor's batch is full
                    break
        if batch and not batches:
            batches.append(batch)
        return batches

    def _candidates(self, anchor: int, rng: np.random.Generator) -> list[int]:
        row = self.neighbours[anchor]
        row = row[row != NO_NEIGHBOUR]
        closest = self.select // 2 if self.select > 1 else 1
        near = row[:closest].tolist()
        wider = row[closest:self.range]
        extra = self.select - len(near)
        if extra > 0 and wider.size:
            near += rng.permutation(wider)[:extra].tolist()
        return near

    @staticmethod
    def shard(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
        """This process's batches: every world_size-th, the same count on every process."""
        usable = len(batches) // world_size * world_size
        if usable == 0:
            raise ValueError(f"{len(batches)} batches cannot feed {world_size} processes; use a smaller batch")
        return batches[rank:usable:world_size]

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """JSON values plus a "neighbours" tensor (or None)."""
        return {"count": self.count, "batch_size": self.batch_size, "seed": self.seed, "select": self.select,
                "range": self.range, "pool": self.pool, "source": self.source,
                "built_for_epoch": self.built_for_epoch,
                "neighbours": None if self.neighbours is None else torch.from_numpy(self.neighbours.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("count", "batch_size", "seed", "select", "range", "pool"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(f"sampler {key} was {state[key]} in the checkpoint, now {getattr(self, key)}; "
                                 f"resume with the same dataset and batch settings")
        table = state.get("neighbours")
        self.set_neighbours(None if table is None else np.asarray(table, dtype=np.int64), str(state["source"]),
                            int(state["built_for_epoch"]))


# ---------------------------------------------------------------- conflicts and neighbours
def conflict_keys(items: Sequence[CrossViewItem]) -> list[tuple[str, ...]]:
    """The satellite images each item's ground photo belongs to (its tile and VIGOR semi-positives)."""
    return [(str(item.satellite_path), *(str(s.path) for s in item.semi_positives)) for item in items]


def conflicting_items(keys: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per item, the other items that share a key with it."""
    owners: dict[str, list[int]] = {}
    for index, item_keys in enumerate(keys):
        for key in item_keys:
            owners.setdefault(key, []).append(index)
    result = []
    for index, item_keys in enumerate(keys):
        others = {other for key in item_keys for other in owners[key] if other != index}
        result.append(np.array(sorted(others), dtype=np.int64))
    return result


def item_positions(items: Sequence[CrossViewItem]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) metric positions and a validity mask: lon/lat on a sphere, else projected map_xy."""
    positions = np.zeros((len(items), 3))
    valid = np.zeros(len(items), dtype=bool)
    for index, item in enumerate(items):
        if item.lon is not None and item.lat is not None:
            lon, lat = math.radians(item.lon), math.radians(item.lat)
            positions[index] = EARTH_RADIUS_M * np.array(
                [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
            valid[index] = True
        elif item.map_xy is not None:
            positions[index, :2] = item.map_xy
            valid[index] = True
    return positions, valid


def _top_k(scores: torch.Tensor, k: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    k = min(k, scores.shape[1])
    values, indices = scores.topk(k, dim=1, largest=largest, sorted=True)
    return values, indices


def gps_neighbours(items: Sequence[CrossViewItem], pool: int = 128, chunk: int = 1024) -> np.ndarray:
    """(N, pool) nearest items of the same dataset and city (nearest first, -1 padding). Items sharing a
    satellite image and items without a position are never neighbours. Synthetic worlds of one biome share
    a place on the globe, so cities are kept apart on purpose."""
    table = np.full((len(items), pool), NO_NEIGHBOUR, dtype=np.int64)
    conflicts = conflicting_items(conflict_keys(items))
    positions, valid = item_positions(items)
    groups: dict[tuple, list[int]] = {}
    for index, item in enumerate(items):
        # lon/lat and map_xy positions are different spaces: keep them apart too
        kind = item.lon is not None and item.lat is not None
        if valid[index]:
            groups.setdefault((item.dataset, item.city, kind), []).append(index)
    for members in groups.values():
        members_arr = np.array(members)
        local = {global_index: position for position, global_index in enumerate(members)}
        points = torch.from_numpy(positions[members_arr])
        for start in range(0, len(members), chunk):
            rows = members_arr[start:start + chunk]
            distance = torch.cdist(points[start:start + chunk], points)
            for row, global_index in enumerate(rows):
                distance[row, start + row] = math.inf
                others = [local[o] for o in conflicts[global_index] if o in local]
                if others:
                    distance[row, others] = math.inf
            values, indices = _top_k(distance, pool, largest=False)
            found = members_arr[indices.numpy()]
            found[~torch.isfinite(values).numpy()] = NO_NEIGHBOUR
            table[rows, :found.shape[1]] = found
    return table


def visual_neighbours(ground: torch.Tensor, satellite: torch.Tensor, conflicts: Sequence[np.ndarray],
                      pool: int = 128, chunk: int = 1024) -> np.ndarray:
    """(N, pool) items whose satellite descriptor is most similar to each item's ground descriptor: the hard
    negatives (own tile and tiles sharing a key excluded), most similar first, -1 padding."""
    count = ground.shape[0]
    table = np.full((count, pool), NO_NEIGHBOUR, dtype=np.int64)
    ground, satellite = ground.float(), satellite.float()
    for start in range(0, count, chunk):
        similarity = ground[start:start + chunk] @ satellite.t()
        for row in range(similarity.shape[0]):
            similarity[row, start + row] = -math.inf
            if len(conflicts[start + row]):
                similarity[row, torch.from_numpy(conflicts[start + row])] = -math.inf
        values, indices = _top_k(similarity, pool, largest=True)
        found = indices.numpy().copy()
        found[~torch.isfinite(values).numpy()] = NO_NEIGHBOUR
        table[start:start + similarity.shape[0], :found.shape[1]] = found
    return table
