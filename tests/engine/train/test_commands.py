"""`viewfinder train` and `viewfinder eval` on the tiny dataset: outputs, resume, one-line errors."""
from __future__ import annotations

import json

from engine.cli import main
from tests.engine.train.conftest import tiny_config_dict


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_toml(path, raw: dict) -> None:
    lines = []
    for table, values in raw.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None]
    path.write_text("\n".join(lines) + "\n")


def test_train_resume_and_eval(tiny_dataset, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    raw = tiny_config_dict(tiny_dataset, tmp_path / "unused")
    del raw["train"]["out"]
    write_toml(config, raw)
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "training completed: 1 epochs" in printed and str(out / "last.safetensors") in printed
    assert (out / "best.safetensors").exists()

    assert main(["train", str(config), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already holds a training run" in err

    assert main(["train", str(config), "--out", str(out), "--epochs", "2", "--resume", "--quiet"]) == 0
    assert "training completed: 2 epochs" in capsys.readouterr().out
    assert len(json.loads((out / "history.json").read_text())) == 2

    report_dir = tmp_path / "report"
    assert main(["eval", "--model", str(out / "best.safetensors"), "--dataset", str(tiny_dataset),
                 "--out", str(report_dir), "--workers", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "synthetic-cvnaf" in printed and "R@1" in printed and "all queries" in printed
    report = json.loads((report_dir / "report.json").read_text())
    assert report["queries"] == 8 and (report_dir / "recall_at_k.png").exists()


def test_command_errors_are_one_line(tiny_dataset, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\nroot = "x"\n[optim]\nlearning_rate = 1\n')
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key(s) in [optim]: learning_rate" in err
    assert main(["train", str(bad), "--set", "optim"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err

    config = tmp_path / "tiny.toml"
    write_toml(config, tiny_config_dict(tmp_path / "no-such-data", tmp_path / "run"))
    assert main(["train", str(config), "--quiet"]) == 2
    assert "no-such-data" in capsys.readouterr().err

    assert main(["eval", "--model", str(tmp_path / "none.safetensors"), "--dataset", str(tiny_dataset)]) == 2
    assert "none.safetensors: no such file" in capsys.readouterr().err
