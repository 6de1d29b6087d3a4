"""CVACT: north-aligned street-view panoramas of Canberra and aerial images centred on them.

Layout: ACT_data.mat (read with scipy.io.loadmat, no pickle) holds panoIds (one id per panorama), utm
(N x 2 UTM pair per panorama, stored as the file has it) and the structs trainSet.trainInd / valSet.valInd
(1-based indices into panoIds). Images: ANU_data_small/streetview/{id}_grdView.jpg and
ANU_data_small/satview_polish/{id}_satView_polish.jpg; the test split lies the same way under ANU_data_test/
and is every id found there. Pairs with a missing image are skipped.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from engine.data.datasets.base import CrossViewReader
from engine.data.datasets.records import PANORAMA, CrossViewItem
from engine.data.datasets.registry import register_dataset

CVACT_MAT = "ACT_data.mat"
#: What scipy raises on a damaged or foreign file (it does not wrap its parser errors).
MAT_ERRORS = (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, NotImplementedError, MatReadError,
              struct.error, zlib.error)
CVACT_SPLITS = {"train": ("trainSet", "trainInd", "ANU_data_small"),
                "val": ("valSet", "valInd", "ANU_data_small"),
                "test": (None, None, "ANU_data_test")}
GROUND_SUFFIX = "_grdView.jpg"
SATELLITE_SUFFIX = "_satView_polish.jpg"
#: CVACT panoramas are north-aligned with north at the centre column (see panorama.py).
CVACT_NORTH_X_FRACTION = 0.5


def mat_strings(values) -> list[str]:
    """A MATLAB char matrix (loaded as an array of str) or cell array of strings -> list of str."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return [str(v).strip() for v in array.ravel()]
    if array.dtype == object:
        out = []
        for cell in array.ravel():
            inner = np.asarray(cell).ravel()
            if inner.size != 1 or inner.dtype.kind != "U":
                raise ValueError(f"expected one string per cell, got {inner!r}")
            out.append(str(inner[0]).strip())
        return out
    raise ValueError(f"expected strings, got an array of {array.dtype}")


def mat_struct_field(mat: dict, struct: str, field: str) -> np.ndarray:
    """mat[struct].field as a flat array (loadmat gives a 1 x 1 structured array of object cells)."""
    if struct not in mat:
        raise ValueError(f"no variable {struct!r}")
    value = np.asarray(mat[struct])
    if value.dtype.names is None or field not in value.dtype.names:
        raise ValueError(f"{struct} has no field {field!r}")
    return np.asarray(value[field].ravel()[0]).ravel()


@register_dataset
class CvactReader(CrossViewReader):
    """CVACT pairs of split "train", "val" (indexed by ACT_data.mat) or "test" (the ANU_data_test folder)."""

    dataset_name = "CVACT"
    kind = "cvact"
    splits = tuple(CVACT_SPLITS)
    train_split, eval_split = "train", "val"
    signature_files = (CVACT_MAT,)
    detect_priority = 40

    def _load_mat(self, required: bool) -> dict | None:
        path = self.root / CVACT_MAT
        if not path.is_file():
            if required:
                self._skip(path, "missing")
            return None
        try:
            return scipy.io.loadmat(str(path))
        except MAT_ERRORS as exc:
            self._skip(path, f"unreadable MAT file ({type(exc).__name__}: {exc})")
            return None

    def _index(self) -> None:
        struct, field, folder = CVACT_SPLITS[self.split]
        mat = self._load_mat(required=struct is not None)
        mat_path = self.root / CVACT_MAT
        ids: list[str] = []
        utm = np.zeros((0, 2))
        if mat is not None:
            try:
                ids = mat_strings(mat["panoIds"]) if "panoIds" in mat else []
                if not ids:
                    raise ValueError("no panoIds")
                utm = np.asarray(mat.get("utm", np.zeros((0, 2))), dtype=float).reshape(-1, 2)
            except ValueError as exc:
                self._skip(mat_path, f"unusable MAT file ({exc})")
                ids, mat = [], None
        utm_of = {pano_id: tuple(float(v) for v in utm[i]) for i, pano_id in enumerate(ids) if i < len(utm)}

        if struct is not None:
            if mat is None:
                return
            try:
                indices = mat_struct_field(mat, struct, field)
            except ValueError as exc:
                self._skip(mat_path, f"unusable MAT file ({exc})")
                return
            split_ids = []
            for position, index in enumerate(indices):
                number = int(index)
                if number != index or not 1 <= number <= len(ids):
                    self._malformed(mat_path, position + 1,
                                    f"{struct}.{field} entry {index} is not an index in 1..{len(ids)}")
                    continue
                split_ids.append(ids[number - 1])
        else:
            split_ids = self._ids_in_folder(self.root / folder)

        for pano_id in split_ids:
            utm_xy = utm_of.get(pano_id)
            self._add(CrossViewItem(
                item_id=pano_id, dataset="cvact", split=self.split, city="Canberra",
                ground_path=self.root / folder / "streetview" / f"{pano_id}{GROUND_SUFFIX}",
                satellite_path=self.root / folder / "satview_polish" / f"{pano_id}{SATELLITE_SUFFIX}",
                ground_kind=PANORAMA, fov_deg=360.0, north_x_fraction=CVACT_NORTH_X_FRACTION,
                map_xy=utm_xy))

    def _ids_in_folder(self, folder: Path) -> list[str]:
        """Every id with a ground or a satellite image in the test folder (a missing partner is reported)."""
        found = set()
        for sub, suffix in (("streetview", GROUND_SUFFIX), ("satview_polish", SATELLITE_SUFFIX)):
            directory = folder / sub
            if not directory.is_dir():
                self._skip(directory, "missing")
                continue
            found.update(p.name[:-len(suffix)] for p in directory.iterdir() if p.name.endswith(suffix))
        return sorted(found)
