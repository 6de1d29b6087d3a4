"""The biomes a synthetic world can be, after timm's register_model / create_model.

Every biome module registers its generator with `@register_biome`, naming the biome and its default world
centre. World generation, training data and the command line loop over the registry, so a new biome is one
module (imported in engine/synth/biomes/__init__.py) and nothing else.

The registry keeps registration order, and seeds map to biomes by their index in it: a new biome goes last.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import ViewfinderError
from engine.synth.biomes.canvas import Canvas

#: Lays out one kind of place on a Canvas; returns statistics for the world's meta.
BiomeGenerator = Callable[[Canvas], dict]


class UnknownBiomeError(ViewfinderError, ValueError):
    """A biome name that no biome module registered."""


@dataclass(frozen=True)
class Biome:
    name: str
    index: int                              # position in registration order; seeds map to biomes by it
    generate: BiomeGenerator
    origin_lonlat: tuple[float, float]      # default world centre: a real place the biome imitates


_BIOMES: dict[str, Biome] = {}


def register_biome(name: str, *, origin_lonlat: tuple[float, float]
                   ) -> Callable[[BiomeGenerator], BiomeGenerator]:
    """Decorator: make the decorated `generate(canvas) -> dict` the generator of biome `name` (once only)."""
    def register(generate: BiomeGenerator) -> BiomeGenerator:
        if name in _BIOMES:
            raise ValueError(f"biome {name!r} is already registered by {_BIOMES[name].generate.__module__}")
        lon, lat = (float(v) for v in origin_lonlat)
        _BIOMES[name] = Biome(name, len(_BIOMES), generate, (lon, lat))
        return generate
    return register


def biome_names() -> tuple[str, ...]:
    """Every registered biome, in registration order."""
    return tuple(_BIOMES)


def get_biome(name: str) -> Biome:
    try:
        return _BIOMES[name]
    except KeyError:
        raise UnknownBiomeError(f"unknown biome {name!r}; valid biomes are: {', '.join(_BIOMES)}") from None
