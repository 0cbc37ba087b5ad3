"""The semi-supervised study's machinery on a reduced budget (the numbers come from make bench)."""

import json

from tests.conftest import run_cli
from workbench.data.reader import open_dataset


def test_quick_study_writes_rounds_tables_and_plot_and_resumes(tmp_path):
    out = tmp_path / "study"
    done = run_cli("experiment", "semisupervised", "--quick", "--threads", "1", "--out", str(out),
                   timeout=600)  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["arms"]) == ["k only", "k + rendered", "round 0 (members)",
                                     "round 1 (members)"]  # fmt: skip
    rounds = summary["rounds"]["1"]
    assert [r["round"] for r in rounds] == [0, 1] and "kept" not in rounds[0]
    pool = rounds[1]["pool"]
    assert pool == 1259 - 10 and 0 < rounds[1]["kept"]["mean"] <= pool
    assert 0.0 <= rounds[1]["pseudo_label_accuracy"]["mean"] <= 1.0
    # the pseudo-labels are a dataset in the contract, made by round 0's ensemble
    pseudo = out / "pseudo" / "k1_seed0_round1"
    manifest = json.loads((pseudo / "manifest.json").read_text())
    assert manifest["kind"] == "pseudo" and len(manifest["ensemble"]) == 3
    assert len(open_dataset(pseudo, modalities=("rgb",))) == rounds[1]["kept"]["mean"]
    table = (out / "results.md").read_text()
    assert "| k | round | kept / pool |" in table and table in done.stdout
    assert (out / "results.png").stat().st_size > 10_000
    assert summary["targets"][0]["name"].startswith("round 1 (members) - k only >= +3 points")
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    run_cli("experiment", "semisupervised", "--quick", "--threads", "1", "--out", str(out),
            timeout=600)  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not redone
