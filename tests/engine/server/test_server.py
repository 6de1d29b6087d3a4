"""`viewfinder serve` and `viewfinder localize --warm`: real server processes in private temp folders, real
commands on the small scene. A warm run must be indistinguishable from an in-process one."""
import csv
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engine.cli import main
from engine.server.lock import held_by_a_server
from engine.server.paths import server_paths
from engine.server.protocol import HEADER, MAX_MESSAGE, ProtocolError, receive, send
from tests.engine.server.conftest import ROOT, viewfinder

#: A fresh client process: runs the command, then says which heavy modules it had to import.
CLIENT = ("import sys; from engine.cli import main; code = main(sys.argv[1:]); "
          "print('heavy:', sorted(m for m in ('torch', 'numpy', 'tqdm', 'rasterio') if m in sys.modules)); "
          "sys.exit(code)")


def _localize(scene, checkpoint, *photos, out, extra=()):
    return ["localize", "--map", str(scene.map_path), *map(str, photos or [scene.folder / "photos"]),
            "--out", str(out), "--model", str(checkpoint), "--top-k", "3", *extra]


def _features(path: Path) -> dict:
    collection = json.loads(path.read_text())
    for feature in collection["features"]:
        feature["properties"].pop("time")           # when it ran: the one thing allowed to differ
    return collection


def _rows(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "time"} for row in csv.DictReader(path.open())]


def _running_server() -> int:
    """The pid of the folder's server, started (without warm-up) when none runs."""
    if viewfinder("serve", "--status").returncode != 0:
        assert viewfinder("serve", "--background", "--no-warm-up").returncode == 0
    return _server_pid()


def _server_pid() -> int:
    status = viewfinder("serve", "--status")
    assert status.returncode == 0, status.stdout + status.stderr
    return int(re.search(r"pid (\d+)", status.stdout).group(1))


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def own_runtime(monkeypatch):
    """A runtime folder of the test's own (its server does not meet the module's)."""
    with tempfile.TemporaryDirectory(prefix="vf-") as folder:
        monkeypatch.setenv("VIEWFINDER_RUNTIME_DIR", f"{folder}/run")
        yield Path(folder) / "run"
        viewfinder("serve", "--stop")


@pytest.mark.slow     # 15-40 s: the server's first command imports torch and loads the model
def test_warm_run_writes_what_an_in_process_run_writes_and_the_server_stays(scene, small_checkpoint, runtime,
                                                                           tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)           # outputs relative to the client's folder, not the server's
    extra = ["--quiet", "--make-dirs", "--csv", "{}/r.csv"]
    here = _localize(scene, small_checkpoint, out="here/r.geojson", extra=extra)
    assert main([x.format("here") for x in here]) == 0
    in_process = capsys.readouterr()
    warm = _localize(scene, small_checkpoint, out="warm/r.geojson", extra=[*extra, "--warm"])
    assert main([x.format("warm") for x in warm]) == 0          # starts the server, waits for it
    on_server = capsys.readouterr()
    assert on_server.out == in_process.out.replace("here/", "warm/") and "4 of 4 photos localised" in on_server.out
    assert on_server.err == in_process.err
    assert _features(tmp_path / "warm" / "r.geojson") == _features(tmp_path / "here" / "r.geojson")
    assert _rows(tmp_path / "warm" / "r.csv") == _rows(tmp_path / "here" / "r.csv")
    pid = _server_pid()
    assert f"checkpoint {small_checkpoint}" in viewfinder("serve", "--status").stdout

    photo = scene.folder / "photos" / scene.photos[1].name      # a second command: same process, model kept
    client = subprocess.run([sys.executable, "-c", CLIENT, *_localize(scene, small_checkpoint, photo,
                                                                      out=tmp_path / "one.geojson",
                                                                      extra=["--warm"])],
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert client.returncode == 0, client.stderr
    assert "1 of 1 photos localised" in client.stdout and f"model: checkpoint {small_checkpoint}" in client.stderr
    assert "heavy: []" in client.stdout                          # the client imported none of the engine's weight
    assert _server_pid() == pid and "commands served: 2" in viewfinder("serve", "--status").stdout


def test_bad_input_fails_on_the_server_as_it_does_in_process(scene, small_checkpoint, runtime, tmp_path, capsys):
    _running_server()              # (a client that starts one says so first)
    text_map = tmp_path / "map.tif"
    text_map.write_text("no raster")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"xx")
    bad_photo = tmp_path / "bad.jpg"
    bad_photo.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    photo = scene.folder / "photos" / scene.photos[0].name
    cases = [  # (argv, exit code): unreadable map, corrupt checkpoint, missing output folder, a failed photo
        (["localize", "--map", str(text_map), str(photo), "--out", str(tmp_path / "r.geojson"),
          "--model", str(small_checkpoint)], 2),
        (_localize(scene, broken, photo, out=tmp_path / "r.geojson"), 2),
        (_localize(scene, small_checkpoint, photo, out=tmp_path / "missing" / "r.geojson"), 2),
        (_localize(scene, small_checkpoint, photo, bad_photo, out=tmp_path / "r.geojson", extra=["--quiet"]), 1),
    ]
    for argv, code in cases:
        assert main(argv) == code
        in_process = capsys.readouterr()
        assert main([*argv, "--warm"]) == code
        on_server = capsys.readouterr()
        assert on_server.err == in_process.err and on_server.out == in_process.out
    assert "1 photo(s) failed" in on_server.err and str(bad_photo) in on_server.err
    (tmp_path / "r.geojson").unlink()
    argv, _ = cases[0]
    assert main([*argv, "--warm", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(text_map) in err and "not a readable raster" in err
    assert not (tmp_path / "r.geojson").exists()


def test_the_clients_environment_counts_not_the_servers(scene, small_checkpoint, runtime, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setenv("VIEWFINDER_CACHE", str(tmp_path / "own-cache"))
    photo = scene.folder / "photos" / scene.photos[0].name
    assert main(_localize(scene, small_checkpoint, photo, out=tmp_path / "r.geojson", extra=["--warm"])) == 0
    assert "1 of 1 photos localised" in capsys.readouterr().out
    assert list((tmp_path / "own-cache" / "galleries").glob("*.safetensors"))     # this client's cache folder


def test_ctrl_c_in_the_client_cancels_the_command_on_the_server(scene, small_checkpoint, runtime, tmp_path):
    pid = _running_server()
    out = tmp_path / "cancelled.geojson"
    many = [scene.folder / "photos"] * 25                       # 100 photos: long enough to be interrupted
    client = subprocess.Popen([sys.executable, "-m", "engine.cli",
                               *_localize(scene, small_checkpoint, *many, out=out, extra=["--warm"])],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = client.stderr.readline()                            # the server has started the command
    assert first.startswith("model: checkpoint"), first
    time.sleep(0.5)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=120)
    assert client.returncode == 130 and "viewfinder localize: interrupted" in err
    assert not out.exists()                                     # all outputs or none, as in a plain run
    assert _server_pid() == pid                                 # the server lives on


def test_no_server_to_be_had_runs_the_command_here(scene, small_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIEWFINDER_RUNTIME_DIR", str(tmp_path / ("x" * 120)))   # too long for a socket
    photo = scene.folder / "photos" / scene.photos[0].name
    assert main(_localize(scene, small_checkpoint, photo, out=tmp_path / "r.geojson", extra=["--warm"])) == 0
    captured = capsys.readouterr()
    note = [line for line in captured.err.splitlines() if "warm server" in line]
    assert len(note) == 1 and "unavailable" in note[0] and "running in this process" in note[0]
    assert "1 of 1 photos localised" in captured.out and (tmp_path / "r.geojson").exists()


def test_one_server_at_a_time_a_stale_socket_is_replaced_and_stop_ends_it(own_runtime):
    paths = server_paths()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)     # what a killed server leaves behind
    dead.bind(str(paths.socket))
    dead.close()
    status = viewfinder("serve", "--status")
    assert status.returncode == 1 and "dead server's socket" in status.stdout

    started = viewfinder("serve", "--background", "--no-warm-up")
    assert started.returncode == 0, started.stderr
    pid = int(re.search(r"pid (\d+)", started.stdout).group(1))
    assert _server_pid() == pid
    assert stat.S_IMODE(paths.folder.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(paths.socket.stat().st_mode) and stat.S_IMODE(paths.socket.stat().st_mode) == 0o600

    for second in (viewfinder("serve", "--no-warm-up"), viewfinder("serve", "--background")):
        assert second.returncode == 1
        assert len(second.stderr.strip().splitlines()) == 1 and f"already runs (pid {pid}" in second.stderr
    assert _server_pid() == pid

    stop = viewfinder("serve", "--stop")
    assert stop.returncode == 0 and f"stopped the warm server (pid {pid})" in stop.stdout
    assert not paths.socket.exists() and not held_by_a_server(paths.lock)
    status = viewfinder("serve", "--status")
    assert status.returncode == 1 and status.stdout.strip() == "no warm server runs"
    assert viewfinder("serve", "--stop").stdout.strip() == "no warm server runs"


def test_a_server_of_other_code_declines_and_makes_way(own_runtime):
    assert viewfinder("serve", "--background", "--no-warm-up").returncode == 0
    paths = server_paths()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(paths.socket))
        send(conn, {"type": "run", "argv": ["localize"], "cwd": "/", "env": {}, "umask": 0o22, "build": "other"})
        assert receive(conn)["type"] == "declined"
    deadline = time.monotonic() + 30
    while held_by_a_server(paths.lock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not held_by_a_server(paths.lock) and not paths.socket.exists()


def test_an_idle_server_stops_by_itself(own_runtime):
    start = time.monotonic()
    idle = viewfinder("serve", "--no-warm-up", "--idle-minutes", "0.02")            # 1.2 s
    assert idle.returncode == 0 and "idle for 1 s: stopping" in idle.stderr
    assert time.monotonic() - start < 60 and not server_paths().socket.exists()


def test_messages_are_length_prefixed_json_and_garbage_is_refused():
    left, right = socket.socketpair()
    with left, right:
        send(left, {"type": "out", "text": "é\n" * 1000})
        assert receive(right) == {"type": "out", "text": "é\n" * 1000}
        left.sendall(HEADER.pack(MAX_MESSAGE + 1))
        with pytest.raises(ProtocolError, match="refused"):
            receive(right)
        left.sendall(HEADER.pack(2) + b"[]")
        with pytest.raises(ProtocolError, match="JSON object"):
            receive(right)
        left.close()
        assert receive(right) is None


@pytest.mark.slow     # a second server, started cold
def test_a_server_dying_mid_command_is_reported_and_the_next_command_starts_a_new_one(scene, small_checkpoint,
                                                                                      runtime, tmp_path):
    pid = _running_server()
    many = [scene.folder / "photos"] * 25
    client = subprocess.Popen([sys.executable, "-m", "engine.cli",
                               *_localize(scene, small_checkpoint, *many, out=tmp_path / "r.geojson",
                                          extra=["--warm"])],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert client.stderr.readline().startswith("model: checkpoint")
    os.kill(pid, signal.SIGKILL)                                # out of memory, say: its socket file stays
    _, err = client.communicate(timeout=120)
    assert client.returncode == 1 and "the warm server ended before the command did" in err
    assert server_paths().socket.exists()
    photo = scene.folder / "photos" / scene.photos[0].name
    again = viewfinder(*_localize(scene, small_checkpoint, photo, out=tmp_path / "r.geojson",
                                  extra=["--warm", "--quiet"]))
    assert again.returncode == 0 and "1 of 1 photos localised" in again.stdout, again.stderr
    assert _server_pid() != pid
