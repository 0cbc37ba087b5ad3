"""``workbench tune``: the space and overlay rules, one-line errors with nothing written, and
real sweeps on a local Ray cluster (ASHA, Optuna, best.yaml, a SIGKILL and a resume)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import kill_cli_when, run_cli
from workbench.errors import WorkbenchError
from workbench.training.tuning.overlay import apply, check_keys, overlay
from workbench.training.tuning.space import parse_space

CONFIG = {
    "seed_everything": 3,
    "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1,
                "enable_progress_bar": False, "log_every_n_steps": 1},
    "model": {"class_path": "workbench.training.classifier.Classifier",
              "init_args": {"backbone": "small_cnn", "backbone_options": {"width": 8, "depth": 2},
                            "lr": 0.01}},
    "data": {"class_path": "workbench.data.datamodule.MixedDataModule",
             "init_args": {"image_size": 8, "channels": 1, "batch_size": 32, "epoch_size": 192,
                           "sources": [{"kind": "digits", "name": "natural"}]}},
}  # fmt: skip
SPACE = {
    "model.init_args.lr": {"type": "loguniform", "low": 1.0e-4, "high": 0.3},
    "data.init_args.batch_size": {"type": "choice", "values": [16, 32, 64]},
}


def _files(tmp: Path, space: dict | None = None, **changes) -> tuple[Path, Path]:
    config = json.loads(json.dumps(CONFIG))
    config["model"]["init_args"].update(changes)
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(config))
    (tmp / "space.yaml").write_text(yaml.safe_dump(space or SPACE, sort_keys=False))
    return tmp / "tiny.yaml", tmp / "space.yaml"


def _tune(tmp: Path, out: str, *extra: str, space: dict | None = None, check: bool = True):
    config, space_file = _files(tmp, space)
    return run_cli("tune", "-c", str(config), "--space", str(space_file), "--out",
                   str(tmp / out), *extra, check=check, timeout=600)  # fmt: skip


def _table(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "loguniform", "low": 1.0, "high": 0.1}, "x: low must be below high"),
        ({"type": "loguniform", "low": 0.0, "high": 0.1}, "x: low must be above 0 for loguniform"),
        ({"type": "normal"}, "x.type: must be one of loguniform, uniform, quniform, randint"),
        ({"type": "choice", "values": []}, "x.values: List should have at least 1 item"),
        ({"type": "quniform", "low": 0, "high": 1}, "x.q: required"),
        ({"type": "randint", "low": 0.5, "high": 3}, "x.low: Input should be a valid integer"),
        ({"type": "uniform", "low": 0, "high": 1, "step": 2}, "x.step: not an option; allowed"),
    ],
)
def test_a_bad_distribution_is_one_line_naming_the_key(entry, message):
    with pytest.raises(WorkbenchError, match=f"^s.yaml: {message}"):
        parse_space({"x": entry}, "s.yaml")


def test_space_keys_must_be_dotted_config_keys():
    with pytest.raises(WorkbenchError, match="'a b' is not a dotted config key"):
        parse_space({"a b": {"type": "choice", "values": [1]}}, "s.yaml")
    key = "data.init_args.sources[1].weights.train"
    space = parse_space({key: {"type": "uniform", "low": 0, "high": 1}})
    assert list(space) == [key]


def test_overlay_sets_values_and_carries_whole_lists():
    config = {
        "model": {"class_path": "M", "init_args": {"lr": 0.1, "wd": 0.0}},
        "data": {"init_args": {"sources": [{"kind": "a"}, {"kind": "b", "w": 1.0}]}},
    }
    values = {"model.init_args.lr": 0.5, "data.init_args.sources[1].w": 0.3}
    assert apply(config, values)["data"]["init_args"]["sources"][1]["w"] == 0.3
    assert config["data"]["init_args"]["sources"][1]["w"] == 1.0  # the original is untouched
    assert overlay(config, values) == {
        "model": {"class_path": "M", "init_args": {"lr": 0.5}},
        "data": {"init_args": {"sources": [{"kind": "a"}, {"kind": "b", "w": 0.3}]}},
    }
    unknown = "unknown config key 'lrr' under model.init_args; known: lr, wd"
    with pytest.raises(WorkbenchError, match=unknown):
        check_keys(config, ["model.init_args.lrr"])
    with pytest.raises(WorkbenchError, match="sources has no item 2 \\(it has 2\\)"):
        check_keys(config, ["data.init_args.sources[2].kind"])


@pytest.mark.parametrize(
    ("space", "extra", "message"),
    [
        ({"model.init_args.lrate": {"type": "uniform", "low": 0.1, "high": 0.2}}, [],
         "model.init_args.lrate: unknown config key 'lrate' under model.init_args; known: "),
        ({"model.init_args.lr": {"type": "uniform", "low": 0.2, "high": 0.1}}, [],
         "model.init_args.lr: low must be below high, got low 0.2 and high 0.1"),
        ({"data.init_args.batch_size": {"type": "choice", "values": [16, "many"]}}, [],
         "data.init_args.batch_size"),
        (SPACE, ["--metric", "val/acc/nope"],
         "--metric: the run never logs 'val/acc/nope'; it logs: "),
        (SPACE, ["--ray-address", "127.0.0.1:9"], "--ray-address: cannot reach 127.0.0.1:9"),
        (SPACE, ["--num-samples", "0"], "--num-samples: Input should be greater than or equal"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, space, extra, message):
    done = _tune(tmp_path, "sweep", "--num-samples", "2", *extra, space=space, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "sweep").exists()


def test_metric_error_lists_the_logged_metrics(tmp_path):
    done = _tune(tmp_path, "sweep", "--metric", "val/accuracy", check=False)
    assert done.returncode == 2
    assert "val/acc/natural" in done.stderr and "val/loss" in done.stderr


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory) -> Path:
    """An uninterrupted sweep: 4 trials, ASHA, one trial at a time (2 CPUs each)."""
    tmp = tmp_path_factory.mktemp("tune")
    _tune(tmp, "whole", "--num-samples", "4", "--cpus-per-trial", "2", "--seed", "5")
    return tmp


def test_sweep_writes_table_best_config_plot_and_a_single_test(asha_sweep):
    out = asha_sweep / "whole"
    table = _table(out / "trials.csv")
    assert [row["trial"] for row in table] == ["0", "1", "2", "3"]
    assert {row["status"] for row in table} <= {"completed", "stopped"}
    assert any(row["status"] == "completed" for row in table)
    for row in table:
        epochs = int(row["epochs"])
        assert all(row[f"epoch_{i + 1}"] for i in range(epochs))
        assert 1e-4 <= float(row["model.init_args.lr"]) <= 0.3
    summary = json.loads((out / "summary.json").read_text())
    best = [row for row in table if row["best"] == "True"]
    assert len(best) == 1 and int(best[0]["trial"]) == summary["best"]["trial"]
    assert best[0]["status"] == "completed"
    assert "test/acc/natural" in summary["test"]
    assert "evaluated once" in summary["test_note"]
    assert summary["epochs_run"] == sum(int(row["epochs"]) for row in table)
    assert (out / "tune.png").stat().st_size > 10_000
    overlay_config = yaml.safe_load((out / "best.yaml").read_text())
    lr = overlay_config["model"]["init_args"]["lr"]
    assert lr == pytest.approx(float(best[0]["model.init_args.lr"]))
    # best.yaml runs as is on top of the swept config
    run_cli("fit", "-c", str(asha_sweep / "tiny.yaml"), "-c", str(out / "best.yaml"),
            "--trainer.fast_dev_run", "true")  # fmt: skip


def test_a_killed_sweep_resumes_to_the_same_table(asha_sweep):
    """SIGKILL once the first trial is done, rerun the same command: the finished trial is not
    rerun and the table equals the uninterrupted sweep's (seconds aside)."""
    config, space = asha_sweep / "tiny.yaml", asha_sweep / "space.yaml"
    args = ["tune", "-c", str(config), "--space", str(space), "--out", str(asha_sweep / "cut"),
            "--num-samples", "4", "--cpus-per-trial", "2", "--seed", "5"]  # fmt: skip
    first = asha_sweep / "cut" / "runs" / "trial_00000" / "checkpoints" / "last.ckpt"
    second = asha_sweep / "cut" / "runs" / "trial_00001"
    assert kill_cli_when(args, second.exists, timeout=300)
    assert first.is_file()
    stamp = first.stat().st_mtime_ns
    done = run_cli(*args[0:], timeout=600)
    assert _table(asha_sweep / "cut" / "trials.csv") == _table(asha_sweep / "whole" / "trials.csv")
    assert first.stat().st_mtime_ns == stamp, "the finished trial ran again"
    assert "best trial" in done.stdout


def test_optuna_search_and_weights_of_trials_asha_ends_at_the_last_epoch(tmp_path):
    """With one epoch ASHA stops every trial at its first report: the weights of that epoch
    must be on disk before the report (the best trial is tested from them)."""
    done = _tune(tmp_path, "tpe", "--num-samples", "2", "--search", "optuna",
                 "--max-epochs", "1", "--cpus-per-trial", "2")  # fmt: skip
    table = _table(tmp_path / "tpe" / "trials.csv")
    assert [row["status"] for row in table] == ["completed", "completed"]
    assert "[2/2] trial" in done.stdout
    assert "test/acc/natural" in json.loads((tmp_path / "tpe" / "summary.json").read_text())["test"]
    for trial in ("trial_00000", "trial_00001"):
        assert (tmp_path / "tpe" / "runs" / trial / "checkpoints" / "last.ckpt").is_file()
    assert yaml.safe_load((tmp_path / "tpe" / "best.yaml").read_text())["trainer"] == {
        "max_epochs": 1
    }
