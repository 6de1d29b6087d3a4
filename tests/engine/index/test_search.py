import numpy as np
import pytest

from engine.index.search import GallerySearch


def _unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(gallery, queries, k):
    scores = queries @ gallery.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), order


def test_exact_top_k_equals_brute_force():
    rng = np.random.default_rng(0)
    gallery, queries = _unit(rng, 3000, 64), _unit(rng, 25, 64)
    hits = GallerySearch(gallery).search(queries, 10)
    scores, order = _brute_force(gallery, queries, 10)
    np.testing.assert_array_equal(hits.indices, order)
    np.testing.assert_allclose(hits.scores, scores, atol=1e-5)


def test_ivf_finds_near_duplicates():
    rng = np.random.default_rng(1)
    gallery = _unit(rng, 5000, 32)
    queries = gallery[:50] + 0.05 * rng.normal(size=(50, 32)).astype(np.float32)
    hits = GallerySearch(gallery, kind="ivf", ivf_probe=32).search(queries, 1)
    assert (hits.indices[:, 0] == np.arange(50)).mean() >= 0.95


def test_spatial_prior_restricts_to_radius():
    rng = np.random.default_rng(2)
    gallery, queries = _unit(rng, 400, 16), _unit(rng, 3, 16)
    centres = np.stack(np.meshgrid(np.arange(20) * 50.0, np.arange(20) * 50.0), -1).reshape(-1, 2)
    search = GallerySearch(gallery, centres)
    hits = search.search(queries, 5, near=(500.0, 500.0, 120.0))
    allowed = search.rows_within(500.0, 500.0, 120.0)   # lattice points within 2.4 spacings: 21
    assert len(allowed) == 21 and np.isin(hits.indices, allowed).all()
    scores, order = _brute_force(gallery[allowed], queries, 5)
    np.testing.assert_array_equal(hits.indices, allowed[order])
    nothing = search.search(queries, 5, near=(-1e6, -1e6, 10.0))
    assert (nothing.indices == -1).all()


def test_bad_gallery_inputs():
    with pytest.raises(ValueError, match="non-empty"):
        GallerySearch(np.zeros((0, 8), np.float32))
    with pytest.raises(ValueError, match="dim"):
        GallerySearch(np.ones((4, 8), np.float32)).search(np.ones((1, 7), np.float32), 2)
    with pytest.raises(ValueError, match="spatial prior"):
        GallerySearch(np.ones((4, 8), np.float32)).search(np.ones((1, 8), np.float32), 2, near=(0, 0, 1))
