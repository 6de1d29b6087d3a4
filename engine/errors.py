"""The root of every error the engine raises on purpose (after rasterio's RasterioError).

Each typed error keeps the built-in base callers already catch (ValueError, OSError, ...) beside this root,
so `except ViewfinderError` catches all of the engine's own failures and nothing else: the command line
prints those as one line and lets a real bug show its traceback.
"""
from __future__ import annotations


class ViewfinderError(Exception):
    """An error of the engine's own: bad input, a refused plan, a broken file, a stopped run."""
