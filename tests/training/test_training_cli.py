"""``workbench fit|validate|test`` through the real Lightning CLI: logs, checkpoints, exact resume
after SIGKILL, DDP on two CPU processes, and one-line errors for bad configs."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.conftest import kill_cli_when, run_cli


def _config(tmp: Path, rendered: Path | None = None, **model) -> Path:
    sources = [{"kind": "digits", "name": "natural"}]
    if rendered is not None:
        sources.append(
            {
                "kind": "rendered",
                "path": str(rendered),
                "name": "rendered",
                "weights": {"train": 1.0, "val": 1.0, "test": 0.0},
            }
        )
    config = {
        "seed_everything": 3,
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1,
                    "default_root_dir": str(tmp / "runs"), "enable_progress_bar": False,
                    "log_every_n_steps": 1},
        "model": {"class_path": "workbench.training.classifier.Classifier",
                  "init_args": {"backbone": "small_cnn",
                                "backbone_options": {"width": 8, "depth": 2},
                                "lr": 0.01, **model}},
        "data": {"class_path": "workbench.data.datamodule.MixedDataModule",
                 "init_args": {"image_size": 16, "channels": 1, "batch_size": 32, "epoch_size": 256,
                               "sources": sources, "augment": {"degrees": 10, "translate": 0.05}}},
    }  # fmt: skip
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _rows(run_dir: Path) -> list[dict[str, str]]:
    (metrics,) = run_dir.glob("version_*/metrics.csv")
    with metrics.open() as handle:
        return list(csv.DictReader(handle))


def _last(rows: list[dict[str, str]], key: str) -> float:
    return float([r[key] for r in rows if r.get(key)][-1])


def test_fast_dev_run_fits_without_a_log_folder(tmp_path):
    done = run_cli("fit", "-c", str(_config(tmp_path)), "--trainer.fast_dev_run", "true")
    assert done.returncode == 0
    assert not list((tmp_path / "runs").glob("*/version_*/split.json"))


def test_print_config_shows_the_resolved_config():
    done = run_cli("fit", "--print_config", "-c", "configs/classifier_digits.yaml")
    config = yaml.safe_load(done.stdout)
    assert config["model"]["class_path"] == "workbench.training.classifier.Classifier"
    assert config["seed_everything"] == 0
    assert config["data"]["init_args"]["sources"][1]["kind"] == "rendered"


def test_fit_logs_per_source_metrics_and_test_writes_confusion(tmp_path, rendered_dir):
    config = _config(tmp_path, rendered_dir)
    run_cli("fit", "-c", str(config))
    run_dir = tmp_path / "runs" / "tiny"
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {
        "epoch000.ckpt",
        "epoch001.ckpt",
        "last.ckpt",
    }
    rows = _rows(run_dir)
    for key in (
        "val/acc/all",
        "val/acc/natural",
        "val/acc/rendered",
        "val/ece/natural",
        "train/cls_loss",
    ):
        assert any(r.get(key) for r in rows), key
    assert list(run_dir.glob("version_0/events.out.tfevents.*")), "TensorBoard log"
    split = json.loads((run_dir / "version_0" / "split.json").read_text())
    assert split["test"] == {"natural": 359} and split["leak_check"].startswith("passed")
    assert split["train"]["natural"] == 1259 and split["val"]["natural"] == 179
    run_cli("test", "-c", str(config), "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"))
    (confusion,) = run_dir.glob("version_1/confusion_test.csv")
    matrix = list(csv.reader(confusion.open()))
    assert matrix[0][1:] == [str(d) for d in range(10)]
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == 359
    run_cli("predict", "-c", str(config), "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt"))
    (predictions,) = run_dir.glob("version_2/predictions.csv")
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 359 and {r["source"] for r in rows} == {"natural"}
    assert abs(sum(float(rows[0][f"p_{d}"]) for d in range(10)) - 1) < 1e-4


def test_sigkill_then_resume_from_last_gives_the_same_metrics(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    longer = ("--trainer.max_epochs", "5", "--data.init_args.epoch_size", "1024")
    run_cli("fit", "-c", str(_config(straight)), *longer)
    expected = _rows(straight / "runs" / "tiny")

    killed = tmp_path / "killed"
    killed.mkdir()
    config = _config(killed)
    checkpoint = killed / "runs" / "tiny" / "checkpoints" / "epoch000.ckpt"
    kill_cli_when(["fit", "-c", str(config), *longer], checkpoint.exists)
    assert (
        checkpoint.exists()
        and not (killed / "runs" / "tiny" / "checkpoints" / "epoch004.ckpt").exists()
    )
    run_cli("fit", "-c", str(config), *longer, "--ckpt_path", "last")
    (resumed_csv,) = sorted((killed / "runs" / "tiny").glob("version_*/metrics.csv"))[-1:]
    with resumed_csv.open() as handle:
        resumed = list(csv.DictReader(handle))
    for key in ("val/acc/all", "val/loss", "val/ece/all"):
        assert _last(resumed, key) == pytest.approx(_last(expected, key), abs=1e-6), key


def test_ddp_on_two_cpu_processes(tmp_path):
    config = _config(tmp_path)
    run_cli(
        "fit",
        "-c",
        str(config),
        "--trainer.max_epochs",
        "1",
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
        timeout=600,
    )
    rows = _rows(tmp_path / "runs" / "tiny")
    assert any(r.get("val/acc/natural") for r in rows)
    assert (tmp_path / "runs" / "tiny" / "checkpoints" / "last.ckpt").exists()


def _one_line(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0]


def test_bad_configs_are_one_line(tmp_path, rendered_dir):
    config = _config(tmp_path)
    _one_line(
        run_cli("fit", "-c", str(config), "--model.init_args.no_such_key", "3", check=False),
        "no_such_key",
        "not accepted",
    )
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    _one_line(
        run_cli(
            "fit",
            "-c",
            str(config),
            "--data.init_args.sources",
            json.dumps([{"kind": "imagefolder", "path": str(empty)}]),
            check=False,
        ),
        "empty ImageFolder",
    )
    other = tmp_path / "letters"
    for name in ("a", "b"):
        (other / name).mkdir(parents=True)
        Image.new("L", (8, 8), 255).save(other / name / "x.png")
    _one_line(
        run_cli(
            "fit",
            "-c",
            str(config),
            "--data.init_args.sources",
            json.dumps([{"kind": "digits"}, {"kind": "imagefolder", "path": str(other)}]),
            check=False,
        ),
        "class names differ",
        "['0', '1'",
        "['a', 'b']",
    )


def test_nan_loss_stops_naming_the_step_and_keeps_a_checkpoint(tmp_path):
    config = _config(tmp_path, lr=1e30, optimizer="sgd")
    done = run_cli("fit", "-c", str(config), check=False)
    _one_line(done, "training loss is ", " at step ", "Lower model.lr")
    assert (
        tmp_path / "runs" / "tiny" / "checkpoints" / "last.ckpt"
    ).is_file()  # saved on the error


def test_curriculum_from_yaml_logs_a_growing_pool_and_resumes(tmp_path, rendered_dir):
    config = _config(tmp_path, rendered_dir)
    curriculum = tmp_path / "curriculum.yaml"
    curriculum.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "class_path": "workbench.curriculum.CurriculumDataModule",
                    "init_args": {
                        "curriculum": {
                            "scorer": "domain",
                            "pacing": "linear",
                            "start": 0.2,
                            "full_at": 0.8,
                            "class_balanced": True,
                        }
                    }
                }
            }
        )
    )
    run_cli("fit", "-c", str(config), "-c", str(curriculum), "--trainer.max_epochs", "3")
    rows = _rows(tmp_path / "runs" / "tiny+curriculum")
    pool = [float(r["curriculum/pool_size"]) for r in rows if r.get("curriculum/pool_size")]
    assert len(pool) == 3 and pool[0] < pool[1] < pool[2]
    run_cli(
        "fit",
        "-c",
        str(config),
        "-c",
        str(curriculum),
        "--trainer.max_epochs",
        "4",
        "--ckpt_path",
        "last",
    )
