"""Procedural world generator: determinism, material mix per biome, raised objects, walkability, georeferencing."""
from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS, Geod, Transformer
from scipy import ndimage

from engine.synth.biomes.registry import biome_names, get_biome
from engine.synth.generate import generate_world
from engine.synth.noise import Fbm, fbm
from engine.synth.world import RAISED_MATERIALS, Material, World

SIZE_M = 260.0
ARRAYS = ("terrain", "height", "material", "albedo", "wall_colour", "object_id")


@pytest.fixture(scope="module")
def worlds() -> dict[str, list[World]]:
    """Two small worlds per biome (seeds 1 and 2)."""
    return {b: [generate_world(b, seed, size_m=SIZE_M) for seed in (1, 2)] for b in biome_names()}


def fractions(world: World) -> dict[Material, float]:
    counts = np.bincount(world.material.ravel(), minlength=len(Material)) / world.material.size
    return {m: float(counts[m]) for m in Material}


# ------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("biome", biome_names())
def test_same_seed_is_bit_identical(biome, worlds):
    again = generate_world(biome, 1, size_m=SIZE_M)
    first = worlds[biome][0]
    for name in ARRAYS:
        a, b = getattr(first, name), getattr(again, name)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), f"{biome}: {name} differs between two runs with the same seed"
    assert first.meta == again.meta
    assert first.origin_xy == again.origin_xy


@pytest.mark.parametrize("biome", biome_names())
def test_different_seed_gives_different_world(biome, worlds):
    a, b = worlds[biome]
    assert (a.material != b.material).mean() > 0.2
    assert not np.array_equal(a.albedo, b.albedo)


def test_noise_is_deterministic_and_normalised():
    a = fbm(np.random.default_rng(3), (256, 300), 40.0, octaves=4)
    b = fbm(np.random.default_rng(3), (256, 300), 40.0, octaves=4)
    c = fbm(np.random.default_rng(4), (256, 300), 40.0, octaves=4)
    assert a.dtype == np.float32 and a.shape == (256, 300)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(float(a.mean())) < 0.5 and 0.5 < float(a.std()) < 1.6
    # the raster and point evaluation of one field agree
    field = Fbm(np.random.default_rng(5), (128, 128), 32.0, octaves=3)
    r = field.raster((128, 128))
    assert np.allclose(field.at(np.array([10.5, 100.5]), np.array([20.5, 64.5])), [r[20, 10], r[64, 100]],
                       atol=1e-5)


# ------------------------------------------------------------------------------------------- arrays
@pytest.mark.parametrize("biome", biome_names())
def test_array_types_and_shapes(biome, worlds):
    w = worlds[biome][0]
    n = round(SIZE_M / 0.5)
    assert w.shape == (n, n)
    assert w.terrain.dtype == np.float32 and w.height.dtype == np.float32
    assert w.material.dtype == np.uint8 and w.object_id.dtype == np.int32
    assert w.albedo.dtype == np.uint8 and w.wall_colour.dtype == np.uint8
    assert w.albedo.shape == w.wall_colour.shape == (n, n, 3)
    assert np.isfinite(w.terrain).all() and np.isfinite(w.height).all()
    assert int(w.material.max()) <= max(Material)
    assert w.biome == biome and w.seed == 1 and w.resolution_m == 0.5


@pytest.mark.parametrize("biome", biome_names())
def test_raised_cells_are_exactly_roofs_and_trees(biome, worlds):
    for w in worlds[biome]:
        raised = w.height - w.terrain
        on_object = np.isin(w.material, np.array(RAISED_MATERIALS, np.uint8))
        assert (raised >= 0).all()
        assert np.array_equal(raised > 0.25, on_object), "raised cells must be ROOF or TREE and vice versa"
        # open ground (roads, paving, fields, water...) is flat ground: surface == terrain exactly
        assert np.array_equal(w.height[~on_object], w.terrain[~on_object])
        # ids mark objects only, and one id is one kind of object
        assert np.array_equal(w.object_id > 0, on_object)
        ids = w.object_id[on_object]
        roof_ids = np.unique(ids[w.material[on_object] == Material.ROOF])
        tree_ids = np.unique(ids[w.material[on_object] == Material.TREE])
        assert len(np.intersect1d(roof_ids, tree_ids)) == 0


def building_heights(w: World) -> np.ndarray:
    """Top of each building above its pad; buildings cut by the world's edge are left out."""
    roof = w.material == Material.ROOF
    edge = np.concatenate([w.object_id[0], w.object_id[-1], w.object_id[:, 0], w.object_id[:, -1]])
    ids = np.setdiff1d(np.unique(w.object_id[roof]), edge)
    labels = np.where(roof, w.object_id, 0)
    return np.asarray(ndimage.maximum(w.height - w.terrain, labels=labels, index=ids))


def test_urban_building_heights_in_range(worlds):
    for w in worlds["urban"]:
        h = building_heights(w)
        assert len(h) > 20
        assert h.min() >= 6.0 - 1e-3 and h.max() <= 60.0 + 1e-3
        assert h.max() > 15.0, "a city needs some taller buildings"
        assert np.std(h) > 2.0, "building heights must vary"


@pytest.mark.parametrize("biome", ["suburban", "rural", "coastal"])
def test_low_rise_building_heights(biome, worlds):
    for w in worlds[biome]:
        h = building_heights(w)
        if len(h):
            assert h.min() >= 2.5 and h.max() <= 20.0


@pytest.mark.parametrize("biome", biome_names())
def test_tree_heights_plausible(biome, worlds):
    for w in worlds[biome]:
        tree = w.material == Material.TREE
        if tree.any():
            r = (w.height - w.terrain)[tree]
            assert r.max() <= 30.0 and np.median(r) > 1.0


# ------------------------------------------------------------------------------------------- biome character
def test_urban_material_mix(worlds):
    for w in worlds["urban"]:
        f = fractions(w)
        assert f[Material.ROOF] > 0.15
        assert f[Material.ROAD] > 0.08
        assert f[Material.PAVED] > 0.05          # sidewalks


def test_coastal_material_mix_and_relief(worlds):
    for w in worlds["coastal"]:
        f = fractions(w)
        assert f[Material.WATER] > 0.1
        assert f[Material.SAND] > 0.005
        assert float(w.terrain.max() - w.terrain.min()) > 20.0
        labels, _n = ndimage.label(w.material == Material.WATER)
        sea = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
        assert np.ptp(w.terrain[sea]) < 1e-3, "the sea surface must be flat"


@pytest.mark.parametrize("biome", biome_names())
def test_small_water_bodies_are_flat(biome, worlds):
    """Pools, ponds, fountains and lakes have one water level."""
    for w in worlds[biome]:
        labels, _n = ndimage.label(w.material == Material.WATER)
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            if max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) * w.resolution_m <= 300:
                assert np.ptp(w.terrain[sl][labels[sl] == k]) < 1e-4


def test_rural_fields_dominate(worlds):
    for w in worlds["rural"]:
        f = fractions(w)
        assert f[Material.FIELD] == max(f.values())
        assert f[Material.FIELD] > 0.35


def test_suburban_gardens_and_trees(worlds):
    for w in worlds["suburban"]:
        f = fractions(w)
        assert f[Material.GARDEN] > 0.05 and f[Material.TREE] > 0.03
        assert f[Material.GARDEN] + f[Material.TREE] > 0.2
        assert f[Material.ROOF] > 0.03


@pytest.mark.parametrize("biome", biome_names())
def test_walkable_ground_is_plentiful_and_connected(biome, worlds):
    for w in worlds[biome]:
        walk = w.walkable
        frac = float(walk.mean())
        assert 0.3 < frac < 0.995, f"{biome}: walkable fraction {frac:.2f}"
        labels, _n = ndimage.label(walk)
        largest = np.bincount(labels.ravel())[1:].max()
        assert largest > 0.6 * walk.sum(), f"{biome}: walkable ground is fragmented"


@pytest.mark.parametrize("biome", biome_names())
def test_albedo_is_textured(biome, worlds):
    w = worlds[biome][0]
    lum = w.albedo.astype(np.float32).mean(axis=2)
    for m in (Material.ROAD, Material.GRASS, Material.FIELD, Material.ROOF, Material.TREE, Material.WATER):
        cells = lum[w.material == m]
        if len(cells) > 500:
            assert cells.std() > 2.0, f"{biome}: {m.name} albedo is flat"


# ------------------------------------------------------------------------------------------- georeferencing
def _centre_lonlat(w: World) -> tuple[float, float]:
    x0, y0 = w.origin_xy
    width, height = w.size_m
    to_ll = Transformer.from_crs(w.crs, CRS.from_epsg(4326), always_xy=True)
    return to_ll.transform(x0 + width / 2, y0 - height / 2)


@pytest.mark.parametrize("lonlat, epsg", [((2.3522, 48.8566), 32631), ((151.2093, -33.8688), 32756),
                                         ((-70.6693, -33.4489), 32719), ((139.6917, 35.6895), 32654)])
def test_crs_is_utm_zone_of_centre(lonlat, epsg):
    w = generate_world("rural", 0, size_m=120.0, resolution_m=1.0, origin_lonlat=lonlat)
    assert w.crs.to_epsg() == epsg
    lon, lat = _centre_lonlat(w)
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, *lonlat)
    assert dist < 1.0
    assert w.meta["origin_lonlat"] == list(lonlat)


@pytest.mark.parametrize("biome", biome_names())
def test_default_origin_per_biome(biome, worlds):
    w = worlds[biome][0]
    lon, lat = _centre_lonlat(w)
    origin = get_biome(biome).origin_lonlat
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, *origin)
    assert dist < 1.0
    zone = int((origin[0] + 180) // 6) + 1
    assert w.crs.to_epsg() == 32600 + zone
    x0, y0 = w.origin_xy
    assert w.transform.c == x0 and w.transform.f == y0 and w.transform.a == 0.5


def test_rectangular_size_resolution_and_meta():
    w = generate_world("urban", 9, size_m=(300.0, 200.0), resolution_m=1.0)
    assert w.shape == (200, 300) and w.size_m == (300.0, 200.0)
    for key in ("biome", "seed", "size_m", "resolution_m", "origin_lonlat", "generator_version"):
        assert key in w.meta
    assert w.meta["size_m"] == [300.0, 200.0] and w.meta["resolution_m"] == 1.0 and w.meta["seed"] == 9


def test_unknown_biome_names_the_valid_ones():
    with pytest.raises(ValueError) as err:
        generate_world("desert", 0, size_m=100.0)
    for b in biome_names():
        assert b in str(err.value)
    assert "desert" in str(err.value)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_resolution_rejected(bad):
    with pytest.raises(ValueError):
        generate_world("urban", 0, size_m=100.0, resolution_m=bad)


@pytest.mark.parametrize("biome", biome_names())
@pytest.mark.parametrize("size_m, resolution_m", [(8.0, 0.5), (333.0, 2.0), ((90.0, 300.0), 1.0)])
def test_tiny_coarse_and_odd_shaped_worlds(biome, size_m, resolution_m):
    w = generate_world(biome, 4, size_m=size_m, resolution_m=resolution_m)
    raised = w.height - w.terrain
    assert np.array_equal(raised > 0.25, np.isin(w.material, np.array(RAISED_MATERIALS, np.uint8)))
    assert w.walkable.any()
