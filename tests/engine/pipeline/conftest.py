"""Shared small scene and model (see tests/engine/pipeline/scenes.py)."""
from tests.engine.pipeline.scenes import scene, small_checkpoint  # noqa: F401
