"""``workbench clean``: cross-fitting, the three rankings, the files, resume and bad input."""

import csv
import json

import pytest

from tests.conftest import run_cli
from workbench.data.datamodule import MixedDataModule

CONFIG = """
seed_everything: 0
trainer: {max_epochs: 4, accelerator: cpu, devices: 1, logger: false}
model:
  class_path: workbench.training.classifier.Classifier
  init_args: {backbone: small_cnn, backbone_options: {width: 16}, lr: 0.005}
data:
  class_path: workbench.data.datamodule.MixedDataModule
  init_args:
    image_size: 8
    channels: 1
    batch_size: 64
    sources:
      - {kind: digits, name: natural, noise: {kind: symmetric, rate: 0.3, seed: 0}}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "noisy.yaml"
    path.write_text(CONFIG)
    return str(path)


def clean(config, out, *options):
    return run_cli("clean", "-c", config, "--out", str(out), "--folds", "2", "--threads", "1",
                   *options, timeout=600)  # fmt: skip


def test_clean_finds_flipped_labels_writes_its_files_and_reuses_its_folds(config, tmp_path):
    out = tmp_path / "clean"
    done = clean(config, out)
    assert "[2/2] fold1_member0: held-out accuracy" in done.stdout
    report = json.loads((out / "report.json").read_text())
    detection = report["noise"]["detection"]
    assert detection["flipped"] == report["noise"]["made"]["natural"]["flipped"] > 300
    assert detection["precision"] > 0.7 and detection["recall"] > 0.5
    with open(out / "suspects.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["flagged"] and [int(r["rank"]) for r in rows][:3] == [1, 2, 3]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(r["given"] != r["predicted"] for r in rows[:20])
    exclude = json.loads((out / "exclude.json").read_text())
    assert exclude["items"]["natural"] == sorted(int(r["item"]) for r in rows)

    # a source trained on the cleaned data leaves the flagged items out
    cleaned = MixedDataModule([{"kind": "digits", "name": "natural",
                                "exclude": str(out / "exclude.json")}], image_size=8)  # fmt: skip
    cleaned.setup("fit")
    assert len(cleaned.datasets["train"]) == report["items"] - report["flagged"]

    # another method reuses the saved folds (no model is trained again)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "folds").iterdir()}
    clean(config, out, "--method", "loss")
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert json.loads((out / "report.json").read_text())["method"] == "loss"

    # a reviewer's decisions survive a rerun
    first, unflagged = int(rows[0]["item"]), min(set(range(50)) - set(exclude["items"]["natural"]))
    exclude["reviewed"] = {f"natural/{first}": "keep", f"natural/{unflagged}": "exclude"}
    (out / "exclude.json").write_text(json.dumps(exclude))
    clean(config, out)
    items = json.loads((out / "exclude.json").read_text())["items"]["natural"]
    assert first not in items and unflagged in items

    # the folds on two Ray workers give the serial run's suspects
    spread = tmp_path / "spread"
    clean(config, spread, "--workers", "2")
    assert (spread / "suspects.csv").read_text() == (out / "suspects.csv").read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--folds", "1"], "--folds: must lie in [2, "),
        (["--folds", "999"], "the smallest class has"),
        (["--method", "ensemble", "--members", "1"], "--members: the ensemble method needs"),
        (["--ray-address", "127.0.0.1:1"], "--ray-address: cannot reach 127.0.0.1:1"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(config, tmp_path, options, message):
    out = tmp_path / "clean"
    done = run_cli("clean", "-c", config, "--out", str(out), *options, check=False)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
