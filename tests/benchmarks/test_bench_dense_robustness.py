"""The dense robustness benchmark's summary and README table, from a report shaped as the dense
evaluation writes it."""

from __future__ import annotations

import pytest

from tests.conftest import load_benchmark


def _bench():
    return load_benchmark("bench_dense_robustness")


def _report(scale: float) -> dict:
    eps = ["0.00784314", "0.0313725"]
    return {
        "clean": {"miou": 0.75 * scale, "pixel_acc": 0.9, "iou": {"road": 0.9}, "absrel": 0.2},
        "worst_case": {"seg": {e: {"miou": 0.5 * scale / (i + 1)} for i, e in enumerate(eps)},
                       "depth": {e: {"absrel": 0.4 * (i + 1)} for i, e in enumerate(eps)}},
        "targeted": {"per_eps": {e: {"target_hits": 0.3 * (i + 1)} for i, e in enumerate(eps)}},
        "corruptions": {"fog_3d": {"1": {"miou": 0.4, "absrel": 0.3},
                                   "2": {"miou": 0.2, "absrel": 0.5}},
                        "contrast": {"1": {"miou": 0.6, "absrel": 0.2},
                                     "2": {"miou": 0.5, "absrel": 0.25}}},
        "conditions": {"clone": {"miou": 0.75, "absrel": 0.2, "pixel_acc": 0.9}},
        "checks": [{"name": "monotone sweep (miou)", "status": "PASS"},
                   {"name": "budget stability (miou)", "status": "FAIL"}],
    }  # fmt: skip


def test_summary_separates_common_and_depth_aware_corruptions():
    summary = _bench().summary(_report(1.0))
    assert summary["corruptions"]["depth_aware"] == {
        "miou": pytest.approx(0.3),
        "absrel": pytest.approx(0.4),
        "count": 1,
    }
    assert summary["corruptions"]["common"]["miou"] == pytest.approx(0.55)
    assert summary["targeted"] == {"0.00784314": 0.3, "0.0313725": 0.6}
    assert "iou" not in summary["clean"]


def test_markdown_shows_both_arms_per_radius_and_names_failed_checks():
    bench = _bench()
    arms = {
        arm: bench.summary(_report(scale))
        for arm, scale in zip(bench.ARMS, (1.0, 0.8), strict=True)
    }
    text = bench.markdown({"arms": arms, "n": 64, "steps": 20,
                           "settings": {"severities": [1, 2]}})  # fmt: skip
    assert "| eps 2/255: mIoU / AbsRel | 50.0% / 0.400 | 40.0% / 0.400 |" in text
    assert "| car pixels made road, eps 8/255 | 60.0% | 60.0% |" in text
    assert "mean over 1 x 2 severities" in text
    assert "budget stability (miou): FAIL" in text and "monotone" not in text
