"""From score volumes to poses: priors multiply in, refinement, spread, confidence and credible region."""
import math

import numpy as np
import pytest
import torch
from shapely.geometry import Point

from engine.pipeline.pose_volume import (
    PlacementGrid,
    gaussian_position_log_prior,
    heading_log_prior,
    posterior_from_scores,
    summarise,
)

HEADINGS = np.arange(36) * 10.0


def _grid(n=81):
    return PlacementGrid(x0=1000.0, y0=2000.0, cell_m=1.0, rows=n, cols=n)


def test_flat_scores_with_a_gaussian_prior_give_back_the_prior():
    grid, sigma = _grid(), 6.0
    centre = (1040.0, 1960.0)
    prior = gaussian_position_log_prior(grid, centre, sigma)
    posterior = posterior_from_scores(torch.zeros(36, 81, 81), grid, HEADINGS, position_log_prior=prior)
    s = summarise(posterior)
    assert (s.x, s.y) == pytest.approx(centre, abs=1e-6)
    assert s.covariance_m2[0][0] == pytest.approx(sigma ** 2, rel=0.02)
    assert s.covariance_m2[0][1] == pytest.approx(0.0, abs=1e-6)
    # P(error <= 5 m) of a 2-D Gaussian: 1 - exp(-r^2 / 2 sigma^2); the 95 % region a disc of 2.448 sigma
    assert s.confidence == pytest.approx(1 - math.exp(-25 / (2 * sigma ** 2)), abs=0.03)
    assert s.credible_region.area == pytest.approx(math.pi * (2.4477 * sigma) ** 2, rel=0.06)
    assert s.credible_region.contains(Point(centre))
    assert s.surface.sum() == pytest.approx(1.0, abs=1e-5)
    assert s.heading_sigma_deg > 90        # nothing said about the heading


def test_a_peak_between_two_cells_is_refined_to_its_middle_and_the_heading_prior_pulls():
    grid = _grid()
    scores = torch.full((36, 81, 81), -20.0)
    scores[9, 30, 40] = scores[9, 30, 41] = 5.0            # heading 90 deg, two neighbouring placements
    scores[27, 60, 10] = 5.2                                # a stronger decoy at heading 270
    posterior = posterior_from_scores(scores, grid, HEADINGS,
                                      heading_log_prior_k=heading_log_prior(HEADINGS, 95.0, 15.0))
    s = summarise(posterior, heading_profile=(np.arange(36) == 9).astype(float))
    assert s.x == pytest.approx(1040.5, abs=0.05) and s.y == pytest.approx(1970.0, abs=1e-6)
    assert s.heading_deg == pytest.approx(90.0, abs=1e-6)
    assert s.confidence > 0.99
    without_compass = summarise(posterior_from_scores(scores, grid, HEADINGS))
    assert without_compass.x == pytest.approx(1010.0) and without_compass.y == pytest.approx(1940.0)


def test_heading_prior_is_a_wrapped_gaussian():
    lp = heading_log_prior(HEADINGS, 355.0, 20.0)
    assert np.argmax(lp) in (0, 35) and lp[0] == pytest.approx(lp[35])   # 0 and 350 are both 5 deg away
    assert lp[18] < lp[9] < lp[0]
