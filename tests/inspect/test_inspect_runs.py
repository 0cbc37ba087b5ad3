"""Runs: discovery, metric curves from CSVLogger files, and fits started only from a checked
config, typed options and a checkpoint under the root (every escape tried, and refused)."""

from __future__ import annotations

import os
import pickle
import re
import time

import pytest
import yaml

from tests.app.test_training_page import TINY
from workbench.errors import WorkbenchError
from workbench.inspect.fit_options import check_config, fit_options
from workbench.inspect.jobs import JobRegistry
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


GOOD = """trainer: {max_epochs: 1,
  callbacks: [{class_path: pytorch_lightning.callbacks.EarlyStopping,
  init_args: {monitor: val/loss}}]}
model: {class_path: workbench.training.classifier.Classifier, init_args: {lr: 0.01}}
data: {class_path: workbench.data.datamodule.MixedDataModule,
  init_args: {sources: [{kind: rendered, path: data/digits}]}}
"""

ATTACKS = {
    "trainer: {default_root_dir: /tmp/x}": "trainer.default_root_dir: '/tmp/x' leads outside",
    "ckpt_path: http://evil.example/x.ckpt": "ckpt_path: URLs are not allowed",
    "data: {init_args: {sources: [{path: s3://bucket/x}]}}": "sources[0].path: URLs",
    "data: {init_args: {sources: [{path: ../../outside}]}}": "sources[0].path: '../../outside'",
    "trainer: {logger: {init_args: {save_dir: ~/logs}}}": "save_dir: '~/logs' leads outside",
    "config: /etc/passwd": "config: not allowed",
    "weights_only: false": "weights_only: not allowed",
    "trainer: {callbacks: [{class_path: os.system}]}": "callbacks[0].class_path: class 'os.system'",
    "model: subprocess.Popen": "model: 'subprocess.Popen' reads as an import path",
    "model: '{class_path: os.system}'": "model.class_path: class 'os.system'",
    "model: configs/other.yaml": "other.yaml: trainer.default_root_dir: '/etc' leads outside",
    "data: {init_args: {sources: [{path: link/x}]}}": "'link/x' leads outside",
}


@pytest.mark.parametrize("text", ATTACKS)
def test_configs_that_escape_the_root_are_refused(root, text, tmp_path_factory):
    (root / "configs" / "other.yaml").write_text("trainer: {default_root_dir: /etc}\n")
    (root / "link").symlink_to(tmp_path_factory.mktemp("outside"))
    (root / "configs" / "bad.yaml").write_text(text + "\n")
    with pytest.raises(WorkbenchError, match=re.escape(ATTACKS[text])) as info:
        start_fit(root, "configs/bad.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("configs/")
    assert not JobRegistry(root).jobs()


class _Payload:
    """Unpickling this runs a shell command: what a hostile checkpoint would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_the_command_holds_only_typed_fields_and_a_pickled_checkpoint_runs_nothing(root):
    (root / "configs" / "good.yaml").write_text(GOOD)
    assert check_config(root, "configs/good.yaml")["trainer"]["max_epochs"] == 1
    (root / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    evil = root / "runs" / "tiny" / "checkpoints" / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": _Payload(root / "PWNED")}))
    options = fit_options(max_epochs=3, learning_rate=0.5, batch_size=8, seed=4, devices=1)
    job = start_fit(root, "configs/tiny.yaml", options, "runs/tiny/checkpoints/evil.ckpt")
    runs = root.resolve() / "runs"
    assert job.command[1:] == [
        "-P", "-m", "workbench.cli", "fit", "-c", str(root.resolve() / "configs/tiny.yaml"),
        "--trainer.default_root_dir", str(runs), "--trainer.max_epochs", "3",
        "--model.init_args.lr", "0.5", "--data.init_args.batch_size", "8",
        "--seed_everything", "4", "--trainer.devices", "1", "--weights_only", "true",
        "--ckpt_path", str(evil.resolve()),
    ]  # fmt: skip
    assert job.target == "runs/tiny"
    registry = JobRegistry(root)
    deadline = time.monotonic() + 400
    while registry.get(job.id).running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert registry.get(job.id).status == "failed"
    assert "Weights only load failed" in job.tail(200) and not (root / "PWNED").exists()


def test_fit_refuses_bad_options_checkpoints_and_a_second_fit_of_one_config(root, tmp_path):
    outside = tmp_path.parent / "x.yaml"
    outside.write_text("{}\n")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        start_fit(root, str(outside))
    with pytest.raises(WorkbenchError, match="no such config"):
        start_fit(root, "configs/missing.yaml")
    for values, field in [({"max_epochs": 0}, "max_epochs"),
                          ({"learning_rate": 5}, "learning_rate"),
                          ({"devices": 99}, "devices"),
                          ({"ckpt_path": "x"}, "ckpt_path")]:  # fmt: skip
        with pytest.raises(WorkbenchError, match=f"^{field}: "):
            fit_options(**values)
    with pytest.raises(WorkbenchError, match="no such checkpoint"):
        start_fit(root, "configs/tiny.yaml", checkpoint="configs/tiny.yaml")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        start_fit(root, "configs/tiny.yaml", checkpoint="../elsewhere.ckpt")
    (root / "configs" / "gan.yaml").write_text(
        "model: {class_path: workbench.generative.gan.ConditionalGAN}\n"
    )
    with pytest.raises(WorkbenchError, match="learning_rate: the model of configs/gan.yaml"):
        start_fit(root, "configs/gan.yaml", fit_options(learning_rate=0.1))
    first = start_fit(root, "configs/tiny.yaml")
    with pytest.raises(WorkbenchError, match=f"runs/tiny: fit job {first.id}"):
        start_fit(root, "configs/tiny.yaml")
    JobRegistry(root).stop(first.id)
