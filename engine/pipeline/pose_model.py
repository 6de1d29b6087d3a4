"""Which ground-plane matcher the pose search runs: a PoseNet checkpoint, the shipped one, or the non-learned
colour baseline (used, with a log line saying so, when no trained pose model is installed)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.index.model_source import RESOURCES
from engine.model.pose_net import PoseNet
from engine.pipeline.pose_matchers import ColourMatcher, LearnedMatcher

log = logging.getLogger(__name__)

DEFAULT_POSE_MODEL_PATH = RESOURCES / "models" / "viewfinder-pose.safetensors"
#: Pass as the pose model to run the non-learned baseline.
COLOUR_BASELINE = "colour"


def load_pose_matcher(source: PoseNet | str | os.PathLike | None = None, device: str = "cpu"
                      ) -> tuple[LearnedMatcher | ColourMatcher, str]:
    """(matcher, description) for `source`: a PoseNet, a checkpoint path, "colour", or None (the default)."""
    if isinstance(source, PoseNet):
        return LearnedMatcher(source.to(device).eval()), "in-memory PoseNet"
    if source == COLOUR_BASELINE:
        return ColourMatcher(temperature=_colour_temperature()), "non-learned colour baseline"
    if source is not None:
        return LearnedMatcher(PoseNet.load(source, device)), f"pose checkpoint {Path(source).name}"
    if DEFAULT_POSE_MODEL_PATH.is_file():
        return (LearnedMatcher(PoseNet.load(DEFAULT_POSE_MODEL_PATH, device)),
                f"shipped pose model {DEFAULT_POSE_MODEL_PATH.relative_to(RESOURCES.parent).as_posix()}")
    log.warning("no trained pose model at %s: using the non-learned colour baseline", DEFAULT_POSE_MODEL_PATH.name)
    return ColourMatcher(), "non-learned colour baseline (no trained pose model installed)"


def _colour_temperature() -> float:
    """The colour baseline's temperature as calibrated when the pose model was shipped (same photos)."""
    if DEFAULT_POSE_MODEL_PATH.is_file():
        from engine.model.checkpoint import read_checkpoint_metadata
        fitted = read_checkpoint_metadata(DEFAULT_POSE_MODEL_PATH).get("calibration", {})
        if fitted.get("colour_baseline_temperature"):
            return float(fitted["colour_baseline_temperature"])
    return ColourMatcher().temperature
