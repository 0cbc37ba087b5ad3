"""Runs: discovery, metric curves from CSVLogger files, and background jobs that can be stopped."""

from __future__ import annotations

import sys
import time

import pytest

from workbench.errors import WorkbenchError
from workbench.inspect.jobs import Job
from workbench.inspect.runs import (
    find_checkpoints,
    find_configs,
    find_runs,
    read_metrics,
    run_checkpoints,
    start_fit,
)

CSV = """epoch,step,train/loss,val/acc/all,val/loss
0,9,2.25,,
0,9,,0.31,2.0
1,19,1.5,,
1,19,,0.62,1.25
"""


@pytest.fixture
def root(tmp_path):
    version = tmp_path / "runs" / "tiny" / "version_0"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_text(CSV)
    (version / "hparams.yaml").write_text("lr: 0.01\n")
    checkpoints = tmp_path / "runs" / "tiny" / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text("trainer: {max_epochs: 1}\n")
    return tmp_path


def test_runs_and_their_curves_are_read(root):
    (run,) = find_runs(root)
    assert (run.path, run.name, run.version) == ("runs/tiny/version_0", "tiny", "version_0")
    curves = read_metrics(root / run.path)
    assert list(curves) == ["train/loss", "val/acc/all", "val/loss"]
    assert curves["val/acc/all"] == {
        "step": [9.0, 19.0],
        "epoch": [0.0, 1.0],
        "value": [0.31, 0.62],
    }
    assert curves["train/loss"]["value"] == [2.25, 1.5]
    assert run_checkpoints(root, run.path) == ["runs/tiny/checkpoints/last.ckpt"]
    assert find_checkpoints(root) == ["runs/tiny/checkpoints/last.ckpt"]
    assert find_configs(root) == ["configs/tiny.yaml"]


def test_bad_metric_files_give_one_line_errors(root):
    path = root / "runs" / "tiny" / "version_0" / "metrics.csv"
    path.write_text("epoch,step,val/loss\n0,1,lots\n")
    with pytest.raises(WorkbenchError, match="line 2 is not numeric"):
        read_metrics(path)
    with pytest.raises(WorkbenchError, match="cannot read the metrics"):
        read_metrics(root / "nowhere.csv")


def test_fit_refuses_configs_outside_the_root_and_bad_overrides(root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.yaml"
    outside.write_text("{}\n")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        start_fit(root, str(outside))
    with pytest.raises(WorkbenchError, match="no such config"):
        start_fit(root, "configs/missing.yaml")
    with pytest.raises(WorkbenchError, match="overrides"):
        start_fit(root, "configs/tiny.yaml", "--trainer.max_epochs 'unclosed")


def test_a_job_logs_finishes_and_can_be_stopped(tmp_path):
    done = Job.start(
        [sys.executable, "-c", "print('one'); print('two')"], tmp_path / "a.log", tmp_path
    )
    done.popen.wait(timeout=60)
    assert done.status() == "finished" and done.tail(1) == "two"
    failed = Job.start([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "b.log", tmp_path)
    failed.popen.wait(timeout=60)
    assert failed.status() == "failed" and failed.returncode == 3
    code = "import time\nprint('ready', flush=True)\ntime.sleep(600)"
    slow = Job.start([sys.executable, "-c", code], tmp_path / "c.log", tmp_path)
    while "ready" not in slow.tail() and slow.returncode is None:
        time.sleep(0.05)
    assert slow.status() == "running"
    slow.stop()
    assert slow.status() == "stopped"
