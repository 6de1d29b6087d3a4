"""Dropping the bundled demo scene localises its photos where they were really taken (shipped model)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.pipeline import DEFAULT_MODEL_PATH, DONE

from app.main import DEMO_FOLDER
from tests.app.conftest import drop_paths, wait_for_all_results

# What the shipped model must achieve on the demo (its EXIF GPS is noisy, sigma 10 m; the GPS prior alone
# leaves a median error of about 14 m and the untrained model misses by up to 50 m).
MEDIAN_ERROR_M = 10.0
MAX_ERROR_M = 25.0


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(),
                    reason=f"no trained model shipped yet at {DEFAULT_MODEL_PATH}")
def test_dropped_demo_photos_fill_the_table_with_positions_that_match_truth(qtbot, make_window, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("VIEWFINDER_CACHE", str(tmp_path / "cache"))
    photos = sorted((DEMO_FOLDER / "photos").glob("*.jpg"))
    window = make_window()                                     # the model the Localizer picks by default
    assert drop_paths(window, [DEMO_FOLDER / "map.tif", *photos])
    wait_for_all_results(qtbot, window, len(photos))
    model = window.results
    errors = []
    for row, entry in enumerate(model.entries):
        assert entry.result.status == DONE, entry.result.error
        best = entry.result.best.position
        assert model.index(row, model.LON).data() == f"{best.lon:.6f}"
        truth = window.truths[Path(entry.path).stem]
        errors.append(float(np.hypot(best.x - truth.x, best.y - truth.y)))
    assert window.engine.model_description.startswith("shipped default model")
    assert np.median(errors) <= MEDIAN_ERROR_M, errors
    assert max(errors) <= MAX_ERROR_M, errors
