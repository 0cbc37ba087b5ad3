"""The label-noise study's machinery on a reduced budget (the numbers come from make bench)."""

import json

from tests.conftest import run_cli
from workbench.experiments.common import slug


def test_quick_study_writes_tables_cleaning_and_targets_and_resumes(tmp_path):
    out = tmp_path / "study"
    done = run_cli("experiment", "noisy", "--quick", "--threads", "1", "--out", str(out),
                   timeout=600)  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["arms"]) == ["plain", "cleaned", "self-paced", "teacher", "+ rendered"]
    for per_setting in summary["arms"].values():
        assert list(per_setting) == ["no noise", "40% symmetric"]
    # cleaning ran through workbench clean, scored against the flips it knows of
    cleaning = summary["cleaning"]["40% symmetric"]
    assert set(cleaning) == {"precision", "recall", "precision_at_noise_rate"}
    folder = out / "cleaning" / f"{slug('40% symmetric')}_seed0" / "clean"
    report = json.loads((folder / "report.json").read_text())
    assert report["noise"]["made"]["natural"]["rate"] == 0.4
    assert report["noise"]["detection"]["precision"] == cleaning["precision"]["values"][0]
    names = [t["name"] for t in summary["targets"]]
    assert names[0].startswith("cleaning recovers >= 50%") and len(names) == 1 + 1 + 2 * 2
    table = (out / "results.md").read_text()
    assert "| noise | plain | cleaned |" in table and table in done.stdout
    assert (out / "results.png").stat().st_size > 10_000
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    run_cli("experiment", "noisy", "--quick", "--threads", "1", "--out", str(out), timeout=600)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not redone
