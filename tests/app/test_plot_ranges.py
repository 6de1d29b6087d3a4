"""Live loss axes hold still until the data outgrows them (app.plot_ranges)."""
from __future__ import annotations

import math

import pytest

from app.plot_ranges import PADDING, held_range, steps_range


def test_first_fit_pads_the_data():
    low, high = held_range(None, 1.0, 3.0)
    assert (low, high) == pytest.approx((1.0 - 2 * PADDING, 3.0 + 2 * PADDING))


def test_range_holds_while_the_data_stays_inside_and_fills_it():
    current = held_range(None, 1.0, 3.0)
    assert held_range(current, 1.2, 2.9) is current
    assert held_range(current, 1.5, 2.5) is current          # half the range: still held


def test_range_refits_when_the_data_leaves_it_or_shrinks_well_inside():
    current = held_range(None, 1.0, 3.0)
    grown = held_range(current, 0.5, 3.0)
    assert grown[0] < 0.5 and grown[1] > 3.0 and grown != current
    shrunk = held_range(current, 1.0, 1.2)                   # a falling loss: zoom in on it
    assert shrunk == pytest.approx((1.0 - 0.2 * PADDING, 1.2 + 0.2 * PADDING))


def test_no_data_and_a_single_value_give_a_usable_range():
    assert held_range(None, math.nan, math.nan) == (0.0, 1.0)
    current = (0.0, 5.0)
    assert held_range(current, math.nan, math.nan) is current
    low, high = held_range(None, 2.0, 2.0)
    assert low < 2.0 < high


def test_step_axis_spans_the_plan_and_grows_past_it():
    assert steps_range(3, 40) == (0.0, 40.0)
    assert steps_range(45, 40) == (0.0, 45.0)
    assert steps_range(0, 0) == (0.0, 1.0)
