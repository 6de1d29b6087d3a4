"""Project files: a session (map, photos, results with corrections, layer settings, view) as JSON.

Paths are stored relative to the project file when they sit beside or below it, so a project folder can
move as a whole. Files are written atomically (temp file + rename).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.pipeline import LocalizationResult

PROJECT_FORMAT = "viewfinder-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".vfproj"


class ProjectError(ValueError):
    """A project file that cannot be read; the message names the file."""


@dataclass
class Project:
    map_path: str | None = None
    photos: list[str] = field(default_factory=list)
    results: dict[str, LocalizationResult] = field(default_factory=dict)   # by photo path
    layers: dict = field(default_factory=dict)
    view: tuple[float, float, float, float] | None = None
    model_path: str | None = None
    selected_photo: str | None = None


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


def project_to_json(project: Project, folder: Path) -> dict:
    photos = []
    for photo in project.photos:
        result = project.results.get(photo)
        photos.append({"path": _relative(photo, folder), "result": result.to_json() if result else None})
    return {
        "format": PROJECT_FORMAT, "version": PROJECT_VERSION,
        "map": _relative(project.map_path, folder), "model": _relative(project.model_path, folder),
        "photos": photos, "layers": project.layers,
        "view": list(project.view) if project.view is not None else None,
        "selected_photo": _relative(project.selected_photo, folder),
    }


def save_project(project: Project, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix != PROJECT_SUFFIX:
        path = path.with_name(path.name + PROJECT_SUFFIX)
    folder = path.parent.resolve()
    text = json.dumps(project_to_json(project, folder), indent=1) + "\n"
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
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
    return path


def load_project(path: str | os.PathLike) -> Project:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{path}: file not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path}: not a Viewfinder project ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise ProjectError(f"{path}: not a Viewfinder project (format field missing)")
    if int(data.get("version", 0)) > PROJECT_VERSION:
        raise ProjectError(f"{path}: made by a newer Viewfinder (project version {data['version']})")
    folder = path.parent.resolve()
    project = Project(map_path=_absolute(data.get("map"), folder), model_path=_absolute(data.get("model"), folder),
                      layers=data.get("layers") or {}, selected_photo=_absolute(data.get("selected_photo"), folder))
    if data.get("view"):
        project.view = tuple(float(v) for v in data["view"])
    try:
        for item in data.get("photos", []):
            photo = _absolute(item["path"], folder)
            project.photos.append(photo)
            if item.get("result"):
                project.results[photo] = replace(LocalizationResult.from_json(item["result"]), photo=photo)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProjectError(f"{path}: damaged photo entry ({exc})") from None
    return project
