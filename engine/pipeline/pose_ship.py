"""Ship a trained PoseNet: calibrate its temperature on calibration worlds and install it as the default.

    python -m engine.pipeline.pose_ship out/pose-run/posenet.safetensors [--to FILE]

--to defaults to resources/models/viewfinder-pose.safetensors.

Also fits the colour baseline's temperature on the same photos and prints it (the baseline's constant in
engine/pipeline/pose_matchers.py comes from here).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from engine.model.pose_net import PoseNet
from engine.pipeline.pose_calibration import CALIBRATION_FIRST_SEED, calibration_samples, fit_temperature
from engine.pipeline.pose_matchers import ColourMatcher, LearnedMatcher
from engine.pipeline.pose_model import DEFAULT_POSE_MODEL_PATH
from engine.pipeline.pose_search import PoseSearch

log = logging.getLogger(__name__)


def calibrate(search: PoseSearch, base: float, photos: int) -> dict:
    samples = calibration_samples(search, photos=photos)
    return fit_temperature(search, samples, base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--to", type=Path, default=DEFAULT_POSE_MODEL_PATH)
    parser.add_argument("--photos", type=int, default=16, help="calibration photos per biome")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(2)
    model = PoseNet.load(args.checkpoint)
    learned = calibrate(PoseSearch(LearnedMatcher(model)), 1.0, args.photos)
    colour = calibrate(PoseSearch(ColourMatcher(temperature=1.0)), 0.05, args.photos)
    print(json.dumps({"posenet": {k: v for k, v in learned.items() if k != "table"},
                      "colour": {k: v for k, v in colour.items() if k != "table"}}, indent=1))
    model.metadata["calibration"] = {
        "temperature": learned["temperature"], "fitted_on": f"calibration worlds from seed {CALIBRATION_FIRST_SEED}",
        "photos": learned["photos"], "credible_coverage": learned["credible_coverage"],
        "colour_baseline_temperature": colour["temperature"]}
    model.save(args.to)
    log.info("installed %s (temperature %.3g)", args.to, learned["temperature"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
