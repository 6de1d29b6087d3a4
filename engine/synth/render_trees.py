"""Per-tree geometry the ground renderer needs to see under crowns: trunk position, crown shape.

The height field only stores the top of each crown. A tree's crown rim is taken as its lowest crown cell,
its top as the highest, its trunk as the crown's centroid and its radius from the crown's area.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from engine.synth.world import Material, World


@dataclass(frozen=True)
class TreeTable:
    """Indexed by object id (entries of non-tree ids are meaningless; id 0 is never a tree)."""

    centre_x: np.ndarray        # float32, metres east of the world's west edge
    centre_y: np.ndarray        # float32, metres north of the world's north edge (so <= 0)
    crown_base: np.ndarray      # float32, metres above the terrain: the crown's rim in the height field
    crown_top: np.ndarray       # float32, metres above the terrain
    radius: np.ndarray          # float32, metres
    is_tree: np.ndarray         # bool

    def crown_bottom(self, tree: np.ndarray, from_axis: np.ndarray) -> np.ndarray:
        """Lowest point of the crown, metres above the terrain, at `from_axis` metres from the trunk.

        The height field holds only the upper half of a crown, above its rim; real crowns also bulge below
        it. The lower half is taken as a flatter dome, half as deep as the upper one, ending at least 1.8 m
        above the ground so the trunk stays visible.
        """
        base = np.take(self.crown_base, tree)
        depth = np.minimum(0.5 * (np.take(self.crown_top, tree) - base), np.maximum(base - 1.8, 0.0))
        radius = np.take(self.radius, tree)
        inside = np.clip(1.0 - (from_axis / np.maximum(radius, 1e-3)) ** 2, 0.0, 1.0)
        return base - depth * np.sqrt(inside)


# World objects are mutable dataclasses (not hashable), so the cache is keyed by id() and guarded by a weak
# reference: an entry is only used while that very World is alive.
_CACHE: dict[int, tuple[weakref.ref, TreeTable | None]] = {}


def tree_table(world: World) -> TreeTable | None:
    """The world's trees (None when it has none); computed once per World object.

    A World whose arrays are modified after its first render keeps its old table.
    """
    key = id(world)
    entry = _CACHE.get(key)
    if entry is not None and entry[0]() is world:
        return entry[1]
    table = _build(world)
    _CACHE[key] = (weakref.ref(world, lambda _ref, key=key: _CACHE.pop(key, None)), table)
    return table


def _build(world: World) -> TreeTable | None:
    cells = np.flatnonzero(np.ascontiguousarray(world.material).reshape(-1) == Material.TREE)
    ids = np.ascontiguousarray(world.object_id).reshape(-1)[cells].astype(np.int64)
    # Only identified trees have a trunk: tree cells with object id 0 (or negative) stay solid crowns.
    cells, ids = cells[ids > 0], ids[ids > 0]
    if cells.size == 0:
        return None
    n = int(ids.max()) + 1
    rows, cols = np.divmod(cells, world.shape[1])
    res = world.resolution_m
    counts = np.bincount(ids, minlength=n).astype(np.float64)
    safe = np.maximum(counts, 1.0)
    centre_x = (np.bincount(ids, weights=cols + 0.5, minlength=n) / safe) * res
    centre_y = -(np.bincount(ids, weights=rows + 0.5, minlength=n) / safe) * res
    raised = (np.ascontiguousarray(world.height).reshape(-1)[cells]
              - np.ascontiguousarray(world.terrain).reshape(-1)[cells])
    crown_base = np.full(n, np.inf)
    np.minimum.at(crown_base, ids, raised)
    crown_base[~np.isfinite(crown_base)] = 0.0
    crown_top = np.zeros(n)
    np.maximum.at(crown_top, ids, raised)
    radius = np.sqrt(counts * res * res / np.pi)
    return TreeTable(centre_x=centre_x.astype(np.float32), centre_y=centre_y.astype(np.float32),
                     crown_base=crown_base.astype(np.float32), crown_top=crown_top.astype(np.float32),
                     radius=radius.astype(np.float32),
                     is_tree=counts > 0)
