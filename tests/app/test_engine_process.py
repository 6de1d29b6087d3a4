"""The engine runs in a child process: when it dies, the app says so, fails only the photo it was on and
carries on with the queued ones in a fresh process."""
from __future__ import annotations

import os
import signal

from PySide6.QtCore import Qt

from engine.pipeline import DONE, FAILED
from tests.app.conftest import RESULT_TIMEOUT_MS, drop_paths, scene_photos, wait_for_all_results


def test_a_killed_engine_fails_the_photo_it_was_on_and_the_queue_goes_on(qtbot, make_window, scene,
                                                                          tiny_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWFINDER_CACHE", str(tmp_path / "cache"))
    window = make_window(tiny_model_path)
    with qtbot.waitSignal(window.map_indexed, timeout=RESULT_TIMEOUT_MS):
        assert drop_paths(window, [scene / "map.tif"])
    first_process = window.engine.process
    started: list[str] = []

    def kill_on_first_photo(path, generation, thumbnail, preview) -> None:
        if not started:
            os.kill(first_process.pid, signal.SIGKILL)
        started.append(path)

    # in the relay thread, as the child reports it has begun the photo: the kill lands mid-photo
    window.engine.photo_started.connect(kill_on_first_photo, Qt.ConnectionType.DirectConnection)
    photos = scene_photos(scene)[:3]
    with qtbot.waitSignal(window.engine.crashed, timeout=RESULT_TIMEOUT_MS) as crashed:
        assert drop_paths(window, photos)
    assert "exit code -9" in crashed.args[0] and "queued" in crashed.args[0]
    wait_for_all_results(qtbot, window, len(photos))

    results = {entry.path: entry.result for entry in window.results.entries}
    killed = results[started[0]]
    assert killed.status == FAILED and "stopped unexpectedly" in killed.error and started[0] in killed.error
    others = [results[path] for path in results if path != started[0]]
    assert [result.status for result in others] == [DONE, DONE]      # localised by the new process
    assert window.engine.process is not first_process and window.engine.process.is_alive()
    assert window.indexed


def test_a_stopped_engine_ends_its_process(qtbot, make_window, tiny_model_path):
    window = make_window(tiny_model_path)
    qtbot.waitUntil(lambda: window.engine.process is not None and window.engine.process.is_alive(),
                    timeout=RESULT_TIMEOUT_MS)
    process = window.engine.process
    window.engine.stop()
    assert not process.is_alive() and process.exitcode == 0
