"""Biome registry: the biomes and their order (seeds map to biomes by index), lookups, double registration."""
from __future__ import annotations

import pytest

from engine.errors import ViewfinderError
from engine.synth.biomes import registry
from engine.synth.biomes.registry import UnknownBiomeError, biome_names, get_biome, register_biome
from engine.train.pose_data import PoseDataSpec


def test_the_four_biomes_in_their_seed_order():
    assert biome_names() == ("urban", "suburban", "rural", "coastal")
    assert [get_biome(name).index for name in biome_names()] == [0, 1, 2, 3]


def test_pose_worlds_cycle_through_the_biomes_by_index():
    spec = PoseDataSpec()
    assert [spec.world_params(i)[0] for i in range(6)] == ["urban", "suburban", "rural", "coastal", "urban",
                                                            "suburban"]


def test_each_biome_knows_its_generator_and_default_centre():
    urban = get_biome("urban")
    assert urban.generate.__module__ == "engine.synth.biomes.urban"
    assert urban.origin_lonlat == (-87.6298, 41.8815)


def test_unknown_biome_names_itself_and_the_choices():
    with pytest.raises(UnknownBiomeError) as err:
        get_biome("lunar")
    message = str(err.value)
    assert "'lunar'" in message
    assert "urban, suburban, rural, coastal" in message
    assert isinstance(err.value, ValueError) and isinstance(err.value, ViewfinderError)


def test_a_biome_registered_twice_is_refused():
    before = dict(registry._BIOMES)
    with pytest.raises(ValueError, match=r"biome 'urban' is already registered by engine\.synth\.biomes\.urban"):
        register_biome("urban", origin_lonlat=(0.0, 0.0))(lambda canvas: {})
    assert registry._BIOMES == before


def test_a_new_biome_goes_last_and_only_once(monkeypatch):
    monkeypatch.setattr(registry, "_BIOMES", dict(registry._BIOMES))

    @register_biome("lunar", origin_lonlat=(0.0, 0.0))
    def generate(canvas):
        return {}

    assert biome_names()[-1] == "lunar" and get_biome("lunar").index == 4
    with pytest.raises(ValueError, match="'lunar' is already registered"):
        register_biome("lunar", origin_lonlat=(1.0, 1.0))(generate)
