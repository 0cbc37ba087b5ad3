"""Dense robustness benchmark: the conditions study's clone-only and condition-randomised
street models (segmentation and depth) under attack and corruption, side by side.

Reads seed 0 of both arms and the paired test renders of ``workbench experiment conditions
--out OUT/conditions`` (``make bench`` runs the study first) and evaluates each model with
``workbench robustness``'s dense evaluation at the standard budget, on the same 64 clone test
images: PGD and APGD on the per-pixel loss at eps 1, 2, 4 and 8 / 255 (20 steps), the worst
case, the targeted attack that makes every car pixel road, the 11 common and 5 depth-aware
corruptions at severities 1 to 5, every test condition, and the honesty checks. Writes
``OUT/dense_robustness.json`` (both reports' headline numbers and a ``provenance`` block); the
full reports (``report.json``, ``report.html``) are under ``OUT/dense_robustness/<arm>/``.

Usage: python benchmarks/bench_dense_robustness.py --out bench_out [--quick]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from workbench.evaluation.dense_runner import DenseRobustnessOptions, evaluate_dense_checkpoint
from workbench.evaluation.depth_corruptions import DEPTH_CORRUPTIONS
from workbench.experiments.common import dataset_renderer, slug
from workbench.experiments.provenance import Recorder

ARMS = ("clone only", "condition randomisation")
TARGET = {"target_class": "road", "target_region": "car"}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one dense report."""
    depth_aware = [n for n in report["corruptions"] if n in DEPTH_CORRUPTIONS]
    common = [n for n in report["corruptions"] if n not in DEPTH_CORRUPTIONS]

    def mean(names: list[str], metric: str) -> float | None:
        values = [v[metric] for n in names for v in report["corruptions"][n].values()]
        return sum(values) / len(values) if values else None

    return {
        "clean": {k: v for k, v in report["clean"].items() if k != "iou"},
        "worst_case": {head: {e: {m: v[m] for m in ("miou", "absrel") if m in v}
                              for e, v in per.items()}
                       for head, per in report["worst_case"].items()},  # fmt: skip
        "targeted": {e: v["target_hits"] for e, v in (report["targeted"] or {}).get(
            "per_eps", {}).items()},  # fmt: skip
        "corruptions": {
            "common": {"miou": mean(common, "miou"), "absrel": mean(common, "absrel"),
                       "count": len(common)},
            "depth_aware": {"miou": mean(depth_aware, "miou"),
                            "absrel": mean(depth_aware, "absrel"), "count": len(depth_aware)},
        },  # fmt: skip
        "conditions": {c: {"miou": v["miou"], "absrel": v["absrel"]}
                       for c, v in report["conditions"].items()},  # fmt: skip
        "checks": {c["name"]: c["status"] for c in report["checks"]},
    }


def markdown(results: dict[str, Any]) -> str:
    """The README table: the two arms' worst-case mIoU and AbsRel against epsilon, the targeted
    attack, the corruptions and the checks."""
    arms = results["arms"]
    first = arms[ARMS[0]]
    eps = list(first["worst_case"]["seg"])
    severities = len(results["settings"]["severities"])
    counts = {kind: first["corruptions"][kind]["count"] for kind in ("common", "depth_aware")}

    def row(name: str, cell) -> str:
        return f"| {name} | " + " | ".join(cell(arms[a]) for a in ARMS) + " |"

    lines = [
        f"Worst case over PGD and APGD ({results['steps']} steps, L-inf) on "
        f"{results['n']} clone test images, seed 0 of each arm of the conditions study:",
        "",
        "| measurement | " + " | ".join(ARMS) + " |",
        "|---|" + "---|" * len(ARMS),
        row("clean mIoU / AbsRel",
            lambda a: f"{100 * a['clean']['miou']:.1f}% / {a['clean']['absrel']:.3f}"),
        *(row(f"eps {float(e) * 255:.0f}/255: mIoU / AbsRel",
              lambda a, e=e: f"{100 * a['worst_case']['seg'][e]['miou']:.1f}% / "
                             f"{a['worst_case']['depth'][e]['absrel']:.3f}") for e in eps),
        *(row(f"car pixels made road, eps {float(e) * 255:.0f}/255",
              lambda a, e=e: f"{100 * a['targeted'][e]:.1f}%") for e in eps),
        row(f"common corruptions, mean over {counts['common']} x {severities} severities: "
            "mIoU / AbsRel",
            lambda a: f"{100 * a['corruptions']['common']['miou']:.1f}% / "
                      f"{a['corruptions']['common']['absrel']:.3f}"),
        row(f"depth-aware corruptions, mean over {counts['depth_aware']} x {severities} "
            "severities: mIoU / AbsRel",
            lambda a: f"{100 * a['corruptions']['depth_aware']['miou']:.1f}% / "
                      f"{a['corruptions']['depth_aware']['absrel']:.3f}"),
        row("honesty checks", lambda a: ", ".join(
            f"{n}: {s}" for n, s in a["checks"].items() if s != "PASS") or "all pass"),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--quick", action="store_true", help="a smoke run (not publishable)")
    args = parser.parse_args()
    out = Path(args.out)
    study = out / "conditions"
    options = {"budget": "quick" if args.quick else "standard", **TARGET}
    if args.quick:
        options.update(n=4, steps=2, corruptions=["gaussian_noise", "fog_3d"])
    settings = DenseRobustnessOptions(**options).settings()
    recorder = Recorder(seeds={"attacks": settings.seed, "model": 0},
                        gl=dataset_renderer(study / "test" / "clone"))  # fmt: skip
    arms, reports = {}, {}
    for arm in ARMS:
        folder = out / "dense_robustness" / slug(arm)
        evaluate_dense_checkpoint(study / "runs" / f"{slug(arm)}_seed0.ckpt",
                                  str(study / "test"), folder, settings)  # fmt: skip
        reports[arm] = json.loads((folder / "report.json").read_text())
        arms[arm] = summary(reports[arm])
        print(f"{arm}: clean mIoU {arms[arm]['clean']['miou']:.3f}, checks {arms[arm]['checks']}")
    results = {
        "arms": arms,
        "n": reports[ARMS[0]]["n"],
        "steps": settings.steps,
        "settings": reports[ARMS[0]]["settings"],
        "quick": args.quick,
        "provenance": recorder.block(),
    }
    path = out / "dense_robustness.json"
    path.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
