"""The GAN remedies study's machinery on a reduced budget (the numbers come from the full run)."""

import json

from tests.conftest import run_cli
from workbench.experiments.gan import REMEDIES


def test_quick_study_measures_every_remedy_at_both_budgets(tmp_path):
    out = tmp_path / "study"
    done = run_cli("experiment", "gan", "--quick", "--threads", "1", "--out", str(out),
                   timeout=600)  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    names = [f"{r} ({b})" for b in ("short", "long") for r in REMEDIES]
    assert list(summary["results"]) == names
    for result in summary["results"].values():
        metrics = result["metrics"]
        assert set(metrics) == {"cas", "cas_ratio", "worst_class", "cpu_minutes", "wall_minutes",
                                "fid", "kid", "precision", "recall"}  # fmt: skip
        assert metrics["cpu_minutes"]["mean"] > 0 and 0 <= metrics["recall"]["mean"] <= 1
    assert result["epochs"] == 2  # the long quick budget
    assert set(summary["effects"]["long"]) == {f"{r} - baseline" for r in list(REMEDIES)[1:]}
    assert [t["name"] for t in summary["targets"]["baseline (long)"]] == [
        "recall >= 0.3", "CAS / real >= 0.95", "worst class CAS >= 80%",
        "training <= 10 CPU minutes (every seed)",
    ]  # fmt: skip
    table = (out / "results.md").read_text()
    assert "| remedy (budget) | epochs | recall |" in table and table in done.stdout
    assert (out / "results.png").stat().st_size > 10_000
    assert (out / "samples.png").stat().st_size > 1000
    # every GAN's training time is kept beside its checkpoint, so a resumed study reports it
    timing = json.loads((out / "runs" / "gan_R1_long_seed0.time.json").read_text())
    assert timing["cpu_s"] > 0 and timing["wall_s"] > 0
