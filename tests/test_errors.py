"""One error root: every error class the engine defines derives from engine.errors.ViewfinderError (beside the
built-in base callers catch), so `except ViewfinderError` catches the engine's own failures and nothing else."""
import importlib
import inspect
import pkgutil

import engine
from engine.errors import ViewfinderError


def engine_modules() -> list:
    names = [info.name for info in pkgutil.walk_packages(engine.__path__, "engine.") if info.name != "engine.cli"]
    return [importlib.import_module(name) for name in ["engine.cli", *names]]


def test_every_engine_error_derives_from_viewfinder_error():
    errors, outside = [], []
    for module in engine_modules():
        for _, value in inspect.getmembers(module, inspect.isclass):
            # a KeyboardInterrupt kind (the warm server's RequestCancelled) is not an Exception: not an error
            if value.__module__ == module.__name__ and issubclass(value, Exception):
                errors.append(value)
                if not issubclass(value, ViewfinderError):
                    outside.append(f"{value.__module__}.{value.__qualname__}")
    assert outside == [], f"errors that do not derive from ViewfinderError: {outside}"
    assert len(errors) >= 20      # the walk found the engine's errors


def test_typed_errors_keep_their_built_in_base():
    from engine.geo.errors import RasterError
    from engine.server.paths import ServerPathError
    from engine.train import ConfigError
    assert issubclass(RasterError, ValueError) and issubclass(ConfigError, ValueError)
    assert issubclass(ServerPathError, OSError)
