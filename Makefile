# Viewfinder: `make run` and `make test` are the whole quick start.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run screenshots test test-fast typecheck bench bench-accuracy bench-pose train-pose lint clean contact-sheet

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

QT_APT = libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 \
	libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0 libxcb-randr0 libegl1 libgl1 libfontconfig1 libdbus-1-3

# Qt names only the first X11 library it misses: on Linux, say the whole apt line before starting.
run: $(STAMP)
	@if [ "$$(uname)" = Linux ] && [ -z "$$QT_QPA_PLATFORM" ] && ! ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0; then \
		echo "Qt needs system libraries first: sudo apt-get install -y $(QT_APT)"; exit 1; fi
	$(BIN)/viewfinder-gui --demo

# The app on the demo scene, captured into docs/images/app-*.png: on a virtual X display when xvfb-run works,
# else with Qt's offscreen platform.
screenshots: $(STAMP)
	(command -v xvfb-run >/dev/null 2>&1 && xvfb-run -a -s "-screen 0 1920x1200x24" $(BIN)/python -m app.screenshots docs/images) \
	|| QT_QPA_PLATFORM=offscreen $(BIN)/python -m app.screenshots docs/images

# Two pytest processes: the GUI responsiveness tests measure the event loop in an interpreter of their own.
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not fresh_process" --durations=25
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m fresh_process

# The quick loop while editing: everything but the tests marked slow (and the fresh-process GUI timing).
test-fast: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -x -m "not slow and not fresh_process"

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m tests.bench.run_all

# Trains and evaluates the three arms of the accuracy benchmark; see tests/bench/bench_accuracy.py for the
# VIEWFINDER_BENCH_* settings (budget, data size, device).
bench-accuracy: $(STAMP)
	$(BIN)/python -m tests.bench.run_all accuracy

# Pose estimation on held-out worlds: GPS alone, the colour BEV baseline, the previous CAFR fine head and PoseNet.
bench-pose: $(STAMP)
	$(BIN)/python -m tests.bench.run_all pose

# The CPU recipe of the shipped pose model (about 4 hours on 2 cores): 80 minutes on worlds 0-319 with a
# 64-cell BEV, a warm start for 65 minutes on worlds 320-639 it never saw, a warm start onto the 96-cell
# BEV (48 m reach) for 75 minutes on worlds 640-959, then calibration and install.
train-pose: $(STAMP)
	$(BIN)/python -m engine.train.pose_recipe --bev-cells 64 --worlds 320 --minutes 80 --out out/pose-run
	$(BIN)/python -m engine.train.pose_recipe --bev-cells 64 --init out/pose-run/posenet.safetensors \
		--first-chunk 4 --worlds 320 --minutes 65 --lr 1e-3 --out out/pose-run2
	$(BIN)/python -m engine.train.pose_recipe --init out/pose-run2/posenet.safetensors --first-chunk 8 \
		--worlds 320 --minutes 75 --lr 1e-3 --out out/pose-run3
	$(BIN)/python -m engine.pipeline.pose_ship out/pose-run3/posenet.safetensors --photos 32

lint: $(STAMP)
	$(BIN)/ruff check engine app tests
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build *.egg-info

contact-sheet: $(STAMP)
	$(BIN)/python -m engine.synth.contact_sheet docs/images/synth-contact-sheet.png
