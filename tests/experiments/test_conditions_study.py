"""The dense conditions study's machinery on a reduced budget (the numbers come from make bench)."""

import json

from tests.conftest import run_cli
from workbench.experiments.conditions import ARMS


def test_quick_study_scores_every_arm_on_every_condition_and_resumes(tmp_path):
    out = tmp_path / "study"
    args = ("experiment", "conditions", "--quick", "--threads", "1", "--out", str(out))
    done = run_cli(*args, timeout=600)
    summary = json.loads((out / "results.json").read_text())
    conditions = ["clone", "fog", "night"]
    for metric in ("miou", "absrel", "pixel_acc", "delta1"):
        assert list(summary["metrics"][metric]) == list(ARMS)
        for per_condition in summary["metrics"][metric].values():
            assert list(per_condition) == conditions
            assert all(len(s["values"]) == 1 for s in per_condition.values())
    miou = summary["metrics"]["miou"]["clone only"]
    drop = summary["miou_drop_from_clone"]["clone only"]["fog"]
    assert drop["values"][0] == miou["fog"]["values"][0] - miou["clone"]["values"][0]
    iou = summary["iou_per_class"]["clone only"]["clone"]
    assert list(iou)[:2] == ["background", "road"] and len(iou) == 7
    names = [t["name"] for t in summary["targets"]]
    assert names == [
        "clone only, mIoU on clone test renders >= 60%",
        "randomisation recovers >= 50% of clone only's mIoU drop under fog",
        "randomisation recovers >= 50% of clone only's mIoU drop under night",
        "the curriculum adds mIoU over randomisation (mean over conditions)",
    ]
    # paired test renders: every condition folder holds the same scenes, unseen in training
    pairs = json.loads((out / "test" / "conditions.json").read_text())
    assert pairs["conditions"] == conditions and pairs["seed"] == 1
    table = (out / "results.md").read_text()
    assert "| test condition | clone only | condition randomisation |" in table
    assert table in done.stdout
    assert summary["provenance"]["gl"]["gl_renderer"]
    for figure in ("results.png", "predictions.png"):
        assert (out / figure).stat().st_size > 10_000
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    run_cli(*args, timeout=600)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not redone
