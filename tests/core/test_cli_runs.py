"""``tlgui runs``, ``runs show`` and ``runs compare`` on run folders written by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runfolders import make_run
from tlgui.cli import main
from tlgui.core.config import PhaseConfig, TrainConfig
from tlgui.core.run_catalog import set_label

T0 = time.mktime((2026, 11, 30, 10, 0, 0, 0, 0, -1))


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TLGUI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "runs"


def test_runs_lists_name_and_duration(runs_root: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs"]) == 0
    assert "No runs yet." in capsys.readouterr().out
    a = make_run(runs_root, "20261130-100000-d", tmp_path / "d", started_unix=T0)
    make_run(runs_root, "20261130-110000-d", tmp_path / "d", started_unix=T0 + 3600,
             state="cancelled", phases=((0.5,),))
    set_label(a, "Baseline")
    assert main(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "NAME", "STATE", "BACKBONE", "SIZE", "PHASE", "1",
                                "PHASE", "2", "EPOCHS", "TIME", "DATASET"]
    assert lines[1].split()[:3] == ["20261130-110000-d", "-", "cancelled"]
    first = lines[2].split()
    assert first[:3] == ["20261130-100000-d", "Baseline", "complete"]
    assert first[5:9] == ["76.0%", "88.0%", "5", "0:20"]


def test_runs_show_prints_everything_about_one_run(runs_root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = make_run(runs_root, "20261130-100000-d", tmp_path / "d", recalls=(1.0, 0.8, 0.6))
    set_label(path, "Baseline", "first try")
    assert main(["runs", "show", "20261130-100000-d"]) == 0
    out = capsys.readouterr().out
    assert 'Run       20261130-100000-d  "Baseline"' in out
    assert "Note      first try" in out
    assert f"Dataset   {tmp_path / 'd'}" in out
    assert "phase2.learning_rate" in out and "0.0001" in out
    assert "phase 1  76.0%" in out and "phase 2  88.0%" in out
    assert "accuracy 80.0%" in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith("blue")] == [
        ["blue", "71.4%", "100.0%", "10"]]
    assert "model.keras" in out and "evaluation.json" in out
    # a path works as well as a folder name
    assert main(["runs", "show", str(path)]) == 0
    assert "Baseline" in capsys.readouterr().out


def test_runs_compare_tables_accuracy_recall_and_differences(
        runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_run(runs_root, "a", tmp_path / "d", recalls=(1.0, 0.8, 0.6))
    make_run(runs_root, "b", tmp_path / "d", phases=((0.5, 0.6),),
             config=TrainConfig(weights="none", image_size=32,
                                phase2=PhaseConfig(epochs=0, learning_rate=1e-4)))
    assert main(["runs", "compare", "a", "b"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"[1] a ({runs_root / 'a'})" and lines[1] == f"[2] b ({runs_root / 'b'})"
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert rows["red"] == ["60.0%", "–"]
    assert rows["evaluation"] == ["80.0%", "–"]
    assert rows["phase2.epochs"] == ["10", "0"]
    assert "seed" not in rows  # equal settings are not listed


def test_runs_errors_name_the_run(runs_root: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    make_run(runs_root, "a", tmp_path / "d")
    assert main(["runs", "compare", "a", "zzz-missing"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: No run 'zzz-missing'")
    with pytest.raises(SystemExit) as exc:
        main(["runs", "compare", "a"])
    assert exc.value.code == 2


def test_runs_show_missing_run_in_a_fresh_process(tmp_path: Path) -> None:
    env = {**os.environ, "TLGUI_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "tlgui", "runs", "show", "no-such-run"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: No run 'no-such-run': give a run folder or a folder name in "
        f"{tmp_path / 'data' / 'runs'}."]


def test_a_run_saved_before_a_setting_existed_compares_as_its_default(
        runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    old = make_run(runs_root, "old", tmp_path / "d")
    config = json.loads((old / "config.json").read_text())
    for phase in ("phase1", "phase2"):
        del config[phase]["schedule"]  # as written before the schedule setting
    (old / "config.json").write_text(json.dumps(config))
    make_run(runs_root, "new", tmp_path / "d")
    make_run(runs_root, "falling", tmp_path / "d", config=TrainConfig(
        weights="none", image_size=32, phase2=PhaseConfig(epochs=10, learning_rate=1e-4,
                                                          schedule="cosine")))
    assert main(["runs", "compare", "old", "new"]) == 0
    assert "schedule" not in capsys.readouterr().out
    assert main(["runs", "compare", "old", "falling"]) == 0
    rows = {line.split()[0]: line.split()[1:]
            for line in capsys.readouterr().out.splitlines()[2:] if line.strip()}
    assert rows["phase2.schedule"] == ["constant", "cosine"]


def test_a_run_saved_by_a_newer_tlgui_opens_with_its_known_settings(
        runs_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tlgui.core.runs import load_config

    newer = make_run(runs_root, "newer", tmp_path / "d", config=TrainConfig(
        weights="none", image_size=32, phase2=PhaseConfig(epochs=7, learning_rate=3e-5)))
    config = json.loads((newer / "config.json").read_text())
    # Settings this version does not know, at the top and inside each nested group.
    config["future_option"] = 1
    for group in ("phase1", "phase2", "augment", "split"):
        config[group]["warmup_epochs"] = 2
    (newer / "config.json").write_text(json.dumps(config))
    loaded = load_config(newer)
    assert loaded.phase2.epochs == 7 and loaded.phase2.learning_rate == 3e-5
    # "show" prints the file as it is, the unknown setting too; "compare" reads it.
    assert main(["runs", "show", "newer"]) == 0
    assert "phase1.warmup_epochs" in capsys.readouterr().out
    make_run(runs_root, "today", tmp_path / "d")
    assert main(["runs", "compare", "newer", "today"]) == 0
    assert "phase2.epochs" in capsys.readouterr().out


@pytest.mark.parametrize("group", ["phase1", "phase2", "augment", "split"])
def test_a_settings_group_that_is_not_an_object_is_refused(
        runs_root: Path, tmp_path: Path, group: str) -> None:
    import json

    from tlgui.core.runs import load_config

    run = make_run(runs_root, "edited", tmp_path / "d")
    config = json.loads((run / "config.json").read_text())
    config[group] = [1]
    (run / "config.json").write_text(json.dumps(config))
    # ValueError is what every opener of a run catches and names the file with.
    with pytest.raises(ValueError, match=f"{group} is not an object"):
        load_config(run)


@pytest.mark.parametrize(("group", "key", "value"), [
    ("phase1", "epochs", "x"), ("phase2", "learning_rate", -1), ("split", "seed", "s"),
    ("augment", "views", 0)])
def test_a_setting_of_the_wrong_kind_is_refused_when_the_run_is_opened(
        runs_root: Path, tmp_path: Path, group: str, key: str, value: object) -> None:
    import json

    from tlgui.core.runs import load_config

    run = make_run(runs_root, "edited", tmp_path / "d")
    config = json.loads((run / "config.json").read_text())
    config[group][key] = value
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=key.replace("_", " ") if key != "seed" else "seed"):
        load_config(run)
