"""The sim-to-real study's machinery on a reduced budget (the numbers come from `make bench`)."""

import json

from tests.conftest import run_cli


def test_quick_study_writes_table_json_and_plot_and_resumes(tmp_path):
    out = tmp_path / "study"
    done = run_cli("experiment", "sim2real", "--quick", "--threads", "1", "--out", str(out),
                   timeout=600)  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    arms = summary["arms"]
    assert set(arms) == {"natural only", "mixed", "pretrain + fine-tune", "mixed + curriculum"}
    for per_k in arms.values():
        assert set(per_k) == {"1", "all"}
        for stats in per_k.values():
            assert 0.0 <= stats["mean"] <= 1.0 and len(stats["values"]) == 1
    assert 0.0 <= summary["zero_shot"]["mean"] <= 1.0
    assert (
        summary["best_curriculum"]
        in json.loads((out / "curriculum_choice.json").read_text())["val_acc"]
    )
    table = (out / "results.md").read_text()
    assert "| k labels per class |" in table and "| all |" in table and table in done.stdout
    assert (out / "results.png").stat().st_size > 10_000
    runs = sorted(p.name for p in (out / "runs").glob("*.json"))
    assert len(runs) == 1 + 1 + 2 * 4
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    run_cli("experiment", "sim2real", "--quick", "--threads", "1", "--out", str(out), timeout=600)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not redone

    # the same runs as Ray tasks on two workers give the same numbers
    spread = tmp_path / "spread"
    run_cli("experiment", "sim2real", "--quick", "--threads", "1", "--workers", "2",
            "--out", str(spread), timeout=600)  # fmt: skip
    parallel = json.loads((spread / "results.json").read_text())
    assert parallel["execution"] == {"workers": 2, "threads": 1}
    for key in ("zero_shot", "arms", "best_curriculum", "differences"):
        assert parallel[key] == summary[key], key

