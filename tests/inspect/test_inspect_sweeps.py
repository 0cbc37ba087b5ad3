"""Sweeps under a data root: found with their trial counts, read within the root and limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.inspect import paths
from workbench.inspect.sweeps import find_sweeps, read_sweep

TABLE = "trial,model.init_args.lr,status,epochs,last,best\n0,0.01,completed,2,0.5,True\n" \
        "1,0.1,stopped,1,0.2,False\n"  # fmt: skip
SUMMARY = {"metric": "val/acc/natural", "best": {"trial": 0, "validation": 0.5},
           "test_note": "the test split was evaluated once"}  # fmt: skip


def make_sweep(folder: Path, finished: bool = True) -> Path:
    """A sweep folder as `workbench tune` leaves it (finished or with its first trials)."""
    folder.mkdir(parents=True)
    (folder / "tune.json").write_text("{}")
    (folder / "trials.csv").write_text(TABLE)
    if finished:
        (folder / "summary.json").write_text(json.dumps(SUMMARY))
        (folder / "best.yaml").write_text("model:\n  init_args:\n    lr: 0.01\n")
        Image.new("RGB", (40, 20), "white").save(folder / "tune.png")
    return folder


def test_sweeps_are_found_with_their_trials_and_read(tmp_path):
    make_sweep(tmp_path / "sweeps" / "a")
    make_sweep(tmp_path / "b", finished=False)
    (tmp_path / "sweeps" / "a" / "runs" / "trial_00000").mkdir(parents=True)
    (tmp_path / "sweeps" / "a" / "runs" / "trial_00000" / "tune.json").write_text("{}")
    found = {s.path: s for s in find_sweeps(tmp_path)}
    assert set(found) == {"sweeps/a", "b"}  # nothing below a sweep is taken for another
    assert found["sweeps/a"].trials == 2 and found["sweeps/a"].finished
    assert not found["b"].finished
    sweep = read_sweep(tmp_path, "sweeps/a")
    assert [row["status"] for row in sweep.table] == ["completed", "stopped"]
    assert sweep.summary["best"]["trial"] == 0
    assert "lr: 0.01" in sweep.best_yaml and sweep.plot.name == "tune.png"
    running = read_sweep(tmp_path, "b")
    assert running.summary is None and running.plot is None and len(running.table) == 2


def test_reading_stays_under_the_root_and_within_limits(tmp_path, monkeypatch):
    make_sweep(tmp_path / "root" / "s")
    make_sweep(tmp_path / "outside")
    with pytest.raises(WorkbenchError):
        read_sweep(tmp_path / "root", "../outside")
    (tmp_path / "root" / "plain").mkdir()
    with pytest.raises(WorkbenchError, match="plain: not a sweep folder"):
        read_sweep(tmp_path / "root", "plain")
    (tmp_path / "root" / "s" / "summary.json").write_text("{not json")
    with pytest.raises(WorkbenchError, match="summary.json: not JSON"):
        read_sweep(tmp_path / "root", "s")
    (tmp_path / "root" / "s" / "summary.json").write_text(json.dumps(SUMMARY))
    monkeypatch.setattr(paths, "MAX_TEXT_BYTES", 10)
    with pytest.raises(WorkbenchError, match="summary.json: over"):
        read_sweep(tmp_path / "root", "s")
