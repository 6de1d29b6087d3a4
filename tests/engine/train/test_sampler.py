"""Sample4Geo batch planning: every item once per epoch, no shared satellite in a batch, neighbours together,
deterministic plans, GPS and visual neighbour tables against brute force, DDP sharding."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.data.datasets.records import CrossViewItem, SatelliteRef
from engine.train.sampler import (
    NeighbourBatchSampler,
    conflict_keys,
    conflicting_items,
    gps_neighbours,
    visual_neighbours,
)


def item(index: int, lon: float | None = None, lat: float | None = None, city: str = "A",
         satellite: str | None = None, semi: tuple[str, ...] = (), map_xy=None) -> CrossViewItem:
    return CrossViewItem(
        item_id=f"{city}/{index}", dataset="test", split="train", city=city, ground_path=Path(f"g{index}.jpg"),
        satellite_path=Path(satellite or f"{city}-s{index}.jpg"), lon=lon, lat=lat, map_xy=map_xy,
        semi_positives=tuple(SatelliteRef(Path(s), (0.0, 0.0)) for s in semi))


def line_items(count: int, city: str = "A") -> list[CrossViewItem]:
    """Items along a meridian, 10 m (about 9e-5 degrees latitude) apart."""
    return [item(i, lon=11.0, lat=48.0 + i * 9e-5, city=city) for i in range(count)]


def test_every_item_once_per_epoch_and_full_batches():
    sampler = NeighbourBatchSampler(conflict_keys(line_items(50)), batch_size=8, seed=1)
    sampler.set_neighbours(gps_neighbours(line_items(50), pool=16), "gps", 0)
    batches = sampler.epoch_batches(0)
    flat = [i for batch in batches for i in batch]
    assert len(flat) == len(set(flat)) == 48        # 6 full batches; the 2 left over are dropped
    assert all(len(batch) == 8 for batch in batches)


def test_plans_repeat_for_the_same_epoch_and_change_between_epochs():
    items = line_items(40)
    make = lambda: NeighbourBatchSampler(conflict_keys(items), batch_size=8, seed=7)  # noqa: E731
    first, second = make(), make()
    for sampler in (first, second):
        sampler.set_neighbours(gps_neighbours(items, pool=16), "gps", 0)
    assert first.epoch_batches(3) == second.epoch_batches(3)
    assert first.epoch_batches(3) != first.epoch_batches(4)
    other_seed = NeighbourBatchSampler(conflict_keys(items), batch_size=8, seed=8)
    other_seed.set_neighbours(gps_neighbours(items, pool=16), "gps", 0)
    assert other_seed.epoch_batches(3) != first.epoch_batches(3)


def test_batches_are_anchors_with_their_nearest_neighbours():
    items = line_items(64)
    sampler = NeighbourBatchSampler(conflict_keys(items), batch_size=8, seed=2)
    sampler.set_neighbours(gps_neighbours(items, pool=32), "gps", 0)
    assert (sampler.select, sampler.range) == (4, 8)
    for epoch in range(5):
        anchor, *group = sampler.epoch_batches(epoch)[0][:5]   # nothing is placed before the first batch
        inner = [i for i in (anchor - 1, anchor + 1) if 0 <= i < 64]
        # the 2 closest (the items beside it on the line), then 2 of the 8 nearest (within 4 places)
        assert sorted(group[:len(inner)]) == inner
        assert all(0 < abs(i - anchor) <= 4 + (anchor < 4 or anchor > 59) * 4 for i in group)


def test_items_sharing_a_satellite_image_never_share_a_batch():
    # VIGOR-like: 30 photos on 10 tiles, each photo also lists a neighbouring tile as semi-positive
    items = [item(i, lon=11.0, lat=48.0 + i * 1e-5, satellite=f"tile{i // 3}.png",
                  semi=(f"tile{(i // 3 + 1) % 10}.png",)) for i in range(30)]
    keys = conflict_keys(items)
    sampler = NeighbourBatchSampler(keys, batch_size=4, seed=0)
    sampler.set_neighbours(gps_neighbours(items, pool=10), "gps", 0)
    batches = sampler.epoch_batches(0)
    assert batches
    for batch in batches:
        used = [key for i in batch for key in keys[i]]
        assert len(used) == len(set(used)), batch
    flat = [i for batch in batches for i in batch]
    assert len(flat) == len(set(flat))


def test_gps_neighbours_are_nearest_first_within_a_city_without_conflicts():
    items = line_items(12, "A") + line_items(12, "B") + [item(99, city="A")]   # B lies on top of A
    items.append(item(100, lon=11.0, lat=48.0 + 3 * 9e-5, city="A", satellite="A-s3.jpg"))  # shares A3's tile
    table = gps_neighbours(items, pool=4)
    assert table.shape == (26, 4)
    assert table[0, :2].tolist() == [1, 2] and set(table[0, 2:].tolist()) == {3, 25}   # 3 and 25 tie
    assert set(table[5, :2].tolist()) == {4, 6}
    assert all(n < 12 or n == 25 for n in table[:12].ravel())     # city A never takes city B's items
    assert all(12 <= n < 24 for n in table[12:24].ravel())
    assert 25 not in table[3].tolist() and 3 not in table[25].tolist()   # same satellite image
    assert (table[24] == -1).all()                                 # no position, no neighbours


def test_gps_neighbours_of_projected_positions():
    items = [item(i, map_xy=(500000.0 + 7.0 * i, 4e6), city="C") for i in range(6)]
    table = gps_neighbours(items, pool=2)
    assert table[0].tolist() == [1, 2]
    assert sorted(table[3].tolist()) == [2, 4]


def test_visual_neighbours_match_brute_force():
    generator = torch.Generator().manual_seed(0)
    ground = torch.nn.functional.normalize(torch.randn(40, 8, generator=generator), dim=1)
    satellite = torch.nn.functional.normalize(torch.randn(40, 8, generator=generator), dim=1)
    keys = [(f"s{i}",) for i in range(38)] + [("s0",), ("s1",)]   # items 38, 39 share tiles with 0, 1
    conflicts = conflicting_items(keys)
    table = visual_neighbours(ground, satellite, conflicts, pool=5, chunk=7)
    similarity = (ground @ satellite.t()).numpy()
    for i in range(40):
        allowed = [j for j in range(40) if j != i and keys[j][0] != keys[i][0]]
        expected = sorted(allowed, key=lambda j: -similarity[i, j])[:5]
        assert table[i].tolist() == expected


def test_shards_are_disjoint_and_equal():
    batches = [[i] for i in range(11)]
    shards = [NeighbourBatchSampler.shard(batches, rank, 3) for rank in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert sorted(b[0] for s in shards for b in s) == list(range(9))
    with pytest.raises(ValueError, match="cannot feed 3 processes"):
        NeighbourBatchSampler.shard([[0], [1]], 0, 3)


def test_state_round_trip_and_mismatch():
    items = line_items(20)
    sampler = NeighbourBatchSampler(conflict_keys(items), batch_size=4, seed=3)
    sampler.set_neighbours(gps_neighbours(items, pool=6), "visual", 2)
    restored = NeighbourBatchSampler(conflict_keys(items), batch_size=4, seed=3)
    restored.load_state_dict(sampler.state_dict())
    assert restored.source == "visual" and restored.built_for_epoch == 2
    assert restored.epoch_batches(2) == sampler.epoch_batches(2)
    wrong = NeighbourBatchSampler(conflict_keys(items), batch_size=6, seed=3)
    with pytest.raises(ValueError, match="batch_size"):
        wrong.load_state_dict(sampler.state_dict())
