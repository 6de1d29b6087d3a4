"""Biome generators: each module's `generate(canvas) -> dict` lays out one kind of place on a Canvas."""
