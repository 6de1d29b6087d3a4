"""Biome generators: each biome module lays out one kind of place on a Canvas and registers itself
(engine.synth.biomes.registry). The shared machinery lives beside them: canvas, palettes, geometry, roads,
buildings, trees, colour.

Importing the package registers the biomes. The order of this import is the biomes' order, which maps seeds
to biomes: keep it, and add a new biome last.
"""
# isort: off
from engine.synth.biomes import urban, suburban, rural, coastal  # noqa: F401  (each registers itself)
# isort: on
