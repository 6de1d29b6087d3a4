"""Session files: project files (read, and the helpers the session writes them with) and exports that report
what they wrote. Files are written atomically (temp file + rename)."""
from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.pipeline.export import write_results_csv, write_results_geojson, write_results_html
from engine.pipeline.results import FAILED, LocalizationResult
from engine.pipeline.session_values import ExportSummary, SessionError

PROJECT_FORMAT, PROJECT_VERSION, PROJECT_SUFFIX = "viewfinder-project", 1, ".vfproj"
EXPORT_KINDS = ("geojson", "csv", "html")


@dataclass
class ProjectFile:
    path: str
    map_path: str | None = None
    model_path: str | None = None
    photos: list[str] = field(default_factory=list)
    results: dict[str, LocalizationResult] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    view: dict = field(default_factory=dict)          # layers, view, selected_photo (the app's business)


def read_project(path: str | os.PathLike) -> ProjectFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SessionError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SessionError(f"{path}: not a Viewfinder project ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise SessionError(f"{path}: not a Viewfinder project (format field missing)")
    if int(data.get("version", 0)) > PROJECT_VERSION:
        raise SessionError(f"{path}: made by a newer Viewfinder (project version {data['version']})")
    folder = path.parent.resolve()
    view = dict(data.get("app") or {})
    view.update(layers=data.get("layers") or {}, selected_photo=_absolute(data.get("selected_photo"), folder),
                view=tuple(float(v) for v in data["view"]) if data.get("view") else None)
    project = ProjectFile(str(path.resolve()), _absolute(data.get("map"), folder), _absolute(data.get("model"), folder),
                          view=view)
    try:
        for item in data.get("photos", []):
            photo = _absolute(item["path"], folder)
            project.photos.append(photo)
            project.flags[photo] = list(item.get("flags") or [])
            if item.get("result"):
                project.results[photo] = replace(LocalizationResult.from_json(item["result"]), photo=photo)
    except (KeyError, TypeError, ValueError) as exc:
        raise SessionError(f"{path}: damaged photo entry ({exc})") from None
    return project


def _relative(path: str | None, folder: Path) -> str | None:
    if path is None:
        return None
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(folder).as_posix()
    except ValueError:
        return str(absolute)


def _absolute(path: str | None, folder: Path) -> str | None:
    if path is None:
        return None
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else (folder / candidate).resolve())


def _write_atomic(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent.resolve())
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_results(kind: str, results: list[LocalizationResult], path: str, map_path: str | None) -> ExportSummary:
    """Write one export with the engine's writers, then count what the file holds (the status bar says that)."""
    failed = sum(1 for r in results if r.status == FAILED)
    photos = len({r.photo for r in results})
    if kind == "csv":
        write_results_csv(results, path)
        with open(path, newline="", encoding="utf-8") as stream:
            rows = sum(1 for _ in csv.DictReader(stream))
    elif kind == "geojson":
        write_results_geojson(results, path, map_path=map_path)
        rows = len(json.loads(Path(path).read_text(encoding="utf-8")).get("features", []))
    else:
        if map_path is None:
            raise SessionError(f"{path}: an HTML map needs the session's map")
        write_results_html(results, map_path, path)
        rows = sum(1 for r in results if r.status != FAILED and r.best is not None)
    return ExportSummary(str(path), kind, rows, photos, failed)
