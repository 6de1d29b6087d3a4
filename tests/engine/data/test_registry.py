"""The dataset registry: the known kinds, their splits, folder detection, and the errors it gives."""
import json

import pytest

from engine.data.datasets import registry
from engine.data.datasets.registry import dataset_kinds, dataset_layouts, default_split, detect_kind, open_dataset
from engine.data.errors import DatasetError

#: kind -> (reader class name, training split, evaluation split), as the kinds were named before the registry.
KNOWN = {
    "synthetic-cvnaf": ("SyntheticCvnafReader", "train", "eval"), "cvnaf": ("CvnafReader", "train", "eval"),
    "synthetic-vigor": ("SyntheticVigorReader", "train", "test"), "vigor": ("VigorReader", "train", "test"),
    "cvusa": ("CvusaReader", "train", "val"), "cvact": ("CvactReader", "train", "val"),
    "cvcities": ("CvCitiesReader", "train", "test"),
}


def test_the_known_kinds_layouts_and_splits():
    assert set(dataset_kinds()) == set(KNOWN)
    assert set(dataset_layouts()) == {"cvnaf", "vigor", "cvusa", "cvact", "cvcities", "synthetic"}
    for kind, (name, train, evaluation) in KNOWN.items():
        reader = registry.reader_class(kind)
        assert reader.__name__ == name and reader.kind == kind
        assert default_split(kind, training=True) == train and default_split(kind, training=False) == evaluation
    assert registry.reader_class("cvact").splits == ("train", "val", "test")
    assert registry.reader_class("cvcities").splits == ("train", "test", "all")


def test_unknown_kinds_and_layouts_name_the_choices(tmp_path):
    for call in (lambda: registry.reader_class("kitti"), lambda: default_split("kitti", True),
                 lambda: open_dataset("kitti", tmp_path)):
        with pytest.raises(DatasetError, match=r"unknown dataset kind 'kitti'; choose from cvact, .*vigor"):
            call()
    with pytest.raises(DatasetError, match=r"unknown layout 'kitti'; choose from cvact, .*synthetic, vigor"):
        detect_kind(tmp_path, "kitti")


def test_a_kind_is_registered_once():
    cvnaf = registry.reader_class("cvnaf")

    class AnotherCvnaf(cvnaf):
        kind = "cvnaf"

    with pytest.raises(ValueError, match="'cvnaf' is already registered by CvnafReader"):
        registry.register_dataset(AnotherCvnaf)
    assert registry.reader_class("cvnaf") is cvnaf

    class Nameless(cvnaf):
        kind = ""

    class BadSplit(cvnaf):
        kind, eval_split = "cvnaf-bad-split", "test"

    with pytest.raises(ValueError, match="declares no dataset kind"):
        registry.register_dataset(Nameless)
    with pytest.raises(ValueError, match="evaluation split 'test'"):
        registry.register_dataset(BadSplit)
    assert "cvnaf-bad-split" not in dataset_kinds()


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


@pytest.mark.parametrize("files,kind", [
    (["ACT_data.mat"], "cvact"),
    (["splits/train-19zl.csv"], "cvusa"),
    (["splits/val-19zl.csv", "splits/NewYork/satellite_list.txt"], "cvusa"),     # CVUSA's splits outrank VIGOR's
    (["Miami/img_info_eval.csv"], "cvnaf"),
    (["Miami/img_info_train.csv", "London/img_info.csv"], "cvnaf"),
    (["London/img_info.csv"], "cvcities"),
    (["splits/NewYork/satellite_list.txt"], "vigor"),
    (["splits_new/Chicago/satellite_list.txt"], "vigor"),
])
def test_public_layouts_are_recognised_by_their_files(tmp_path, files, kind):
    assert detect_kind(_touch(tmp_path / "data", *files)) == kind


def test_folders_that_are_no_dataset(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        detect_kind(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="cannot tell the dataset layout; give --layout"):
        detect_kind(_touch(tmp_path, "notes.txt"))
    with pytest.raises(DatasetError, match="not a synthetic CVNAF or synthetic VIGOR dataset"):
        detect_kind(tmp_path, "synthetic")
    assert detect_kind(tmp_path, "cvusa") == "cvusa"          # a layout of one kind is taken at its word


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    generate = pytest.importorskip("engine.synth.generate", reason="synthetic world generator not importable")
    from engine.synth.export import export_cvnaf, export_vigor
    from engine.synth.photos import PhotoSpec

    world = generate.generate_world("suburban", 8, size_m=200.0)
    root = tmp_path_factory.mktemp("exports")
    spec = PhotoSpec(6, (40.0, 110.0), (96, 64))
    return {"synthetic-cvnaf": export_cvnaf([world], spec, 2, root / "cvnaf", chip_px=96, eval_fraction=0.5),
            "synthetic-vigor": export_vigor([world], spec, 2, root / "vigor", tile_px=64, test_fraction=0.5)}


@pytest.mark.parametrize("kind", ["synthetic-cvnaf", "synthetic-vigor"])
def test_synthetic_exports_are_detected_and_open_as_their_kind(exports, kind):
    root = exports[kind]
    reader = registry.reader_class(kind)
    assert reader.detect(root) and detect_kind(root) == kind and detect_kind(root, "synthetic") == kind
    others = [registry.reader_class(name) for name in KNOWN if name != kind]
    others = [other for other in others if other.detect(root)]
    assert all(other.detect_priority < reader.detect_priority for other in others)   # it outranks them
    assert detect_kind(root, json.loads((root / "dataset.json").read_text())["layout"]) == kind[len("synthetic-"):]
    training, evaluation = open_dataset(kind, root, training=True), open_dataset(kind, root)
    assert type(training) is type(evaluation) is reader
    assert (training.split, evaluation.split) == KNOWN[kind][1:]
    assert {item.dataset for item in training} == {kind}
