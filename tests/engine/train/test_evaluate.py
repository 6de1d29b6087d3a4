"""Evaluation metrics: rank definition, recall@k and R@1%, hit rate, per-city galleries, FoV buckets,
localisation errors against independently computed truth, and the report files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.data.pairs import CrossViewPairs, PairConfig
from engine.model import CrossViewNet, ModelConfig
from engine.train import EvalConfig, evaluate, open_dataset, write_report
from engine.train.eval_embedding import GalleryTiles, gallery_tiles, offcentre_only
from engine.train.metrics import recall_curve, recall_table, retrieval_ranks
from tests.engine.train.conftest import TINY_MODEL


def test_rank_counts_only_strictly_higher_similarities():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    gallery = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    ranks = retrieval_ranks(queries, gallery, torch.tensor([1, 3, 2]))
    # query 0 ties with tile 0: a tie does not push it down; query 1: tile 2 is higher; query 2: tile 3 ties
    assert ranks.tolist() == [0, 1, 1]
    excluded = retrieval_ranks(queries, gallery, torch.tensor([1, 3, 2]), excluded=[[], [2], []])
    assert excluded.tolist() == [0, 0, 1]


def test_recall_table_and_one_percent():
    ranks = np.array([0, 1, 4, 5, 9, 10, 250])
    sizes = np.array([250] * 4 + [1000] * 3)     # R@1%: k = 2 for the first four, 10 for the rest
    table = recall_table(ranks, sizes)
    assert table["R@1"] == pytest.approx(1 / 7) and table["R@5"] == pytest.approx(3 / 7)
    assert table["R@10"] == pytest.approx(5 / 7) and table["R@1%"] == pytest.approx(3 / 7)
    assert recall_curve(np.array([0, 0, 2]), 3) == [[1, 2 / 3], [2, 2 / 3], [3, 1.0]]
    assert np.isnan(recall_table(np.array([]), np.array([]))["R@1"])


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return CrossViewNet(ModelConfig.from_dict({**TINY_MODEL, "backbone_weights": None})).eval()


@pytest.fixture(scope="module")
def eval_reader(tiny_dataset):
    return open_dataset("synthetic-cvnaf", tiny_dataset)


def pair_config(model) -> PairConfig:
    return PairConfig(ground_hw=model.config.ground_hw, satellite_hw=model.config.satellite_hw,
                      metres_per_px=model.config.metres_per_pixel)


def test_gallery_tiles_are_the_centred_training_crops(eval_reader, tiny_model):
    config = pair_config(tiny_model)
    tiles = GalleryTiles(gallery_tiles(eval_reader.items, eval_reader.gallery), config)
    pairs = CrossViewPairs(eval_reader.items, config)
    by_path = {tile.path: i for i, tile in enumerate(tiles.tiles)}
    for index, item in enumerate(eval_reader.items):
        assert torch.equal(tiles[by_path[item.satellite_path]]["satellite"], pairs[index]["satellite"])


def test_evaluate_ranks_each_city_against_its_own_gallery(eval_reader, tiny_model):
    report = evaluate(tiny_model, eval_reader, EvalConfig(batch_size=5))
    cities = sorted({item.city for item in eval_reader.items})
    assert report.queries == len(eval_reader) == 8 and sorted(report.per_city) == cities
    assert [report.per_city[c]["gallery"] for c in cities] == [4, 4]
    # the same ranks from descriptors computed here
    config = pair_config(tiny_model)
    pairs = CrossViewPairs(eval_reader.items, config)
    with torch.inference_mode():
        ground = torch.cat([tiny_model.embed_ground(pairs[i]["ground"][None]).descriptor for i in range(8)])
        satellite = torch.cat([tiny_model.embed_satellite(pairs[i]["satellite"][None]).descriptor
                               for i in range(8)])
    expected = []
    for i, item in enumerate(eval_reader.items):
        same_city = [j for j, other in enumerate(eval_reader.items) if other.city == item.city]
        similarity = (ground[i] @ satellite[same_city].t())
        expected.append(int((similarity > similarity[same_city.index(i)]).sum()))
    assert report.ranks.tolist() == expected
    for city in cities:
        rows = [i for i, item in enumerate(eval_reader.items) if item.city == city]
        assert report.per_city[city]["R@1"] == pytest.approx(np.mean([expected[r] == 0 for r in rows]))
    assert report.city_average["R@1"] == pytest.approx(np.mean([report.per_city[c]["R@1"] for c in cities]))
    assert sum(b["queries"] for b in report.per_fov.values()) == 8
    assert report.hit_rate is None
    pooled = evaluate(tiny_model, eval_reader, EvalConfig(gallery_scope="all"))
    assert pooled.gallery_size == 8 and set(pooled.query_gallery_sizes.tolist()) == {8}
    assert (pooled.ranks >= report.ranks).all()      # a bigger gallery can only push the true tile down


def test_localisation_errors_against_the_truth(eval_reader, tiny_model):
    config = pair_config(tiny_model)
    fraction = 0.8
    report = evaluate(tiny_model, eval_reader, EvalConfig(offcentre_fraction=fraction, seed=4))
    shifted = CrossViewPairs(eval_reader.items, config, offcentre_only(fraction), seed=4)
    tile = np.array(config.satellite_hw[::-1]) / 2.0
    truth = [np.linalg.norm(shifted[i]["camera_px"].numpy() - tile) * float(shifted[i]["metres_per_px"])
             for i in range(8)]
    assert report.centre_errors_m == pytest.approx(np.array(truth), rel=1e-5)
    assert report.fine["tile_centre_median_m"] == pytest.approx(np.median(truth), rel=1e-5)
    assert max(truth) <= np.hypot(*tile) * fraction * float(shifted[0]["metres_per_px"]) + 1e-6
    assert report.fine["count"] == report.cwr["count"] == 8 and report.fine["median_m"] >= 0
    centred = evaluate(tiny_model, eval_reader, EvalConfig(offcentre_fraction=0.0))
    assert centred.centre_errors_m == pytest.approx(np.zeros(8), abs=1e-6)   # cameras at the chip centres
    assert centred.ranks.tolist() == report.ranks.tolist()       # retrieval never uses the shifted tiles


def test_subset_of_queries_shrinks_a_gallery_of_their_own_chips(eval_reader, tiny_model):
    report = evaluate(tiny_model, eval_reader, EvalConfig(max_items=3, seed=1))
    assert report.queries == 3 and report.gallery_size == 3


def test_vigor_hit_rate_and_pooled_gallery(tmp_path, tiny_model):
    from engine.synth.export import export_vigor
    from engine.synth.generate import generate_world
    from engine.synth.photos import PhotoSpec

    world = generate_world("suburban", 8, size_m=200.0)
    root = export_vigor([world], PhotoSpec(10, (40.0, 110.0), (96, 64)), 2, tmp_path / "vigor", tile_px=64,
                        test_fraction=0.5)
    reader = open_dataset("synthetic-vigor", root)
    report = evaluate(tiny_model, reader, EvalConfig(gallery_scope="all", offcentre_fraction=0.0))
    assert report.gallery_size == len(reader.gallery) > len(reader)
    assert report.hit_rate is not None and report.overall["R@1"] <= report.hit_rate <= 1.0
    assert report.fine["count"] == len(reader)
    assert report.fine["tile_centre_median_m"] > 0      # VIGOR cameras lie anywhere on their tiles


def test_report_files(eval_reader, tiny_model, tmp_path):
    report = evaluate(tiny_model, eval_reader, EvalConfig())
    paths = write_report(report, tmp_path / "report")
    payload = json.loads(paths["json"].read_text())
    assert payload["queries"] == 8 and set(payload["overall"]) == {"R@1", "R@5", "R@10", "R@1%"}
    assert payload["fine"]["count"] == 8 and len(payload["recall_curve"]) == 8
    for key in ("recall", "errors"):
        data = paths[key].read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
    text = report.table()
    assert "R@1" in text and "fine-grained error" in text and "urban" in text
