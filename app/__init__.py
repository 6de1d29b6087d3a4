"""Viewfinder desktop app (PySide6 + pyqtgraph); talks to the engine only through engine.pipeline/engine.train.

Importing the app asks OpenMP (torch's CPU threads) to sleep rather than spin while waiting: engine work runs
in worker processes beside the GUI, and spinning workers on a busy machine starve both the GUI and
each other (a tiny training step went from 0.2 s to 3 s on 2 loaded cores). It only takes effect when set
before torch is first imported, which the app's modules ensure by importing it through the engine later.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
