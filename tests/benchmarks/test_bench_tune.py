"""The tuning benchmark's README table and targets, from a results dict shaped as it writes."""

from __future__ import annotations

from tests.conftest import load_benchmark


def _bench():
    return load_benchmark("bench_tune")


def test_markdown_reports_each_comparison_and_decides_the_targets():
    bench = _bench()
    from workbench.experiments import stats

    results = {
        "schedulers": {"trials": 16, "max_epochs": 6, "best_val": {"fifo": 0.97, "asha": 0.968},
                       "best_val_gap": 0.002, "epochs_run": {"fifo": 96, "asha": 30},
                       "epochs_ratio": 30 / 96},
        "configs": {"epochs": 15,
                    "difference": stats.paired_difference([0.95, 0.96, 0.97], [0.94, 0.95, 0.95])},
        "workers": {"one_s": 600.0, "two_s": 400.0, "speedup": 1.5, "same_numbers": True},
    }  # fmt: skip
    results["targets"] = bench.targets(results)
    decisions = {t["name"]: t["decision"] for t in results["targets"]}
    assert decisions == {
        "FIFO best - ASHA best (validation)": "met",
        "ASHA epochs / FIFO epochs": "met",
        "sim2real, 2 workers / 1 worker": "missed",
    }
    table = bench.markdown(results)
    assert "97.00% vs 96.80%" in table and "30 / 96 = **0.31**" in table
    assert "+1.33 points [" in table and "n = 3 seeds" in table
    assert "**1.50x** (same numbers: yes)" in table
