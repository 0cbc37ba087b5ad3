"""Adversarial training benchmark: a standard and a PGD-trained digits classifier, side by side.

Both arms train from ``configs/adversarial_digits.yaml`` (natural handwritten digits, grey
16x16, the same small ResNet, seed, epochs and augmentation); the standard arm only switches
adversarial training off (``method: none``, so it still logs robust validation accuracy). The
last epoch's weights are evaluated on the 359 held-out test digits: clean accuracy, robust
accuracy under PGD-20 (random start) at L-inf eps 0.05, 0.1 and 0.2, and under the evaluation
cascade (APGD-CE, targeted APGD-DLR, then the black-box Square attack, each on the points still
standing), which guards against gradient masking. Target: PGD training keeps at least 70%
robust accuracy at eps 0.1 (the lower of the PGD-20 and the cascade accuracies, each an
aggregate over the test set) while losing at most 5 points of clean accuracy; one training seed,
so each part is decided by its value (``workbench.experiments.stats``). The JSON carries a
``provenance`` block (commit, command, host, versions, threads).

Usage: python benchmarks/bench_adversarial_training.py --out bench_out [--epochs 20]
Writes OUT/adversarial_training.json and OUT/adversarial_training.png; prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.threat import ThreatModel
from workbench.evaluation.cascade import autoattack_stages, run_cascade
from workbench.experiments import stats
from workbench.experiments.provenance import Recorder
from workbench.models.lightning_cli import build

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "adversarial_digits.yaml"
EPS = (0.05, 0.1, 0.2)
ROBUST_TARGET, CLEAN_DROP_TARGET = 0.70, 0.05
ROBUST_MEASURE = (
    "the lower of the PGD-20 and the cascade accuracies, each an aggregate over the test set, "
    "not a per-example worst case"
)
ARMS = {
    "standard": ["--model.init_args.adversarial", "{method: none, val_eps: 0.1, val_steps: 10}"],
    "pgd": [],
}


def train(
    arm: str, out: Path, epochs: int
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, float]:
    """Trains one arm; returns the model (eval mode), the test images and labels, and seconds."""
    cli = build(["-c", str(CONFIG), "--trainer.max_epochs", str(epochs),
                 "--trainer.default_root_dir", str(out / "runs"),
                 "--trainer.enable_progress_bar", "false", *ARMS[arm]],
                run_name=f"adversarial_{arm}")  # fmt: skip
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = time.perf_counter() - start
    cli.datamodule.setup("test")
    test = cli.datamodule.datasets["test"]
    x = torch.stack([test[i]["image"] for i in range(len(test))])
    y = torch.stack([test[i]["label"] for i in range(len(test))])
    return cli.model.eval(), x, y, seconds


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x)["logits"].argmax(1) == y).float().mean())


def evaluate(model, x, y, steps: int, queries: int, targets: int) -> dict:
    """Clean accuracy, PGD-20 and cascade robust accuracy at every eps, and the time taken."""
    start = time.perf_counter()
    result = {"clean": accuracy(model, x, y), "pgd20": {}, "cascade": {}, "cascade_stages": {}}
    for eps in EPS:
        threat = ThreatModel("linf", eps)
        x_adv = build_attack("pgd", model, threat, steps=20, seed=0)(x, y)
        result["pgd20"][str(eps)] = accuracy(model, x_adv, y)
        cascade = run_cascade(model, x, y, threat, autoattack_stages(steps, queries, targets))
        result["cascade"][str(eps)] = cascade.accuracy
        result["cascade_stages"][str(eps)] = cascade.stages
    result["eval_seconds"] = time.perf_counter() - start
    return result


def plot(results: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for arm, color in (("standard", "tab:blue"), ("pgd", "tab:red")):
        r = results["arms"][arm]
        xs = [0.0, *EPS]
        axis.plot(xs, [r["clean"], *(r["pgd20"][str(e)] for e in EPS)], "o-", color=color,
                  label=f"{arm}: PGD-20")  # fmt: skip
        axis.plot(xs, [r["clean"], *(r["cascade"][str(e)] for e in EPS)], "s--", color=color,
                  label=f"{arm}: cascade")  # fmt: skip
    axis.axhline(0.7, color="grey", lw=0.8, ls=":")
    axis.set(xlabel="L-inf eps", ylabel="test accuracy", ylim=(0, 1.02),
             title="Digits 16x16: standard vs PGD training")  # fmt: skip
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cascade-steps", type=int, default=50, help="APGD steps per stage")
    parser.add_argument("--cascade-queries", type=int, default=1000, help="Square queries")
    parser.add_argument("--cascade-targets", type=int, default=3, help="APGD-T target classes")
    args = parser.parse_args()
    recorder = Recorder(seeds={"seed_everything": 0, "pgd": 0, "cascade": 0})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "config": str(CONFIG.relative_to(ROOT)),
        "epochs": args.epochs,
        "cascade": {"steps": args.cascade_steps, "queries": args.cascade_queries,
                    "targets": args.cascade_targets},
        "arms": {},
    }  # fmt: skip
    for arm in ARMS:
        model, x, y, seconds = train(arm, out, args.epochs)
        result = evaluate(model, x, y, args.cascade_steps, args.cascade_queries,
                          args.cascade_targets)  # fmt: skip
        result["train_seconds"] = seconds
        results["arms"][arm] = result
    results["target"] = target(results)
    results["provenance"] = recorder.block()
    worst, drop = results["target"]["robust_at_0.1"], results["target"]["clean_drop"]
    (out / "adversarial_training.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "adversarial_training.png")

    header = f"{'arm':<9} {'clean':>6} " + " ".join(
        f"{'pgd20@' + str(e):>10} {'casc@' + str(e):>9}" for e in EPS
    )
    print(header + f" {'train s':>8}")
    for arm, r in results["arms"].items():
        cells = " ".join(f"{r['pgd20'][str(e)]:>10.3f} {r['cascade'][str(e)]:>9.3f}" for e in EPS)
        print(f"{arm:<9} {r['clean']:>6.3f} {cells} {r['train_seconds']:>8.0f}")
    print(
        f"target (robust >= 0.70 at eps 0.1, clean drop <= 0.05): robust {worst:.3f}, "
        f"drop {drop:+.3f} -> {'met' if results['target']['met'] else 'NOT met'}"
    )
    print(f"wrote {out / 'adversarial_training.json'} and {out / 'adversarial_training.png'}")


def target(results: dict) -> dict:
    """The target's two parts, each one measurement decided by its value, and whether both
    are met."""
    standard, pgd = results["arms"]["standard"], results["arms"]["pgd"]
    worst = min(pgd["pgd20"]["0.1"], pgd["cascade"]["0.1"])
    drop = standard["clean"] - pgd["clean"]
    decisions = [
        {"name": f"PGD-trained robust accuracy at 0.1 >= {100 * ROBUST_TARGET:.0f}%",
         "difference": False, **stats.decide([worst], ROBUST_TARGET)},
        {"name": f"clean accuracy lost <= {100 * CLEAN_DROP_TARGET:.0f} points",
         "difference": True, **stats.decide([drop], CLEAN_DROP_TARGET, "<=")},
    ]  # fmt: skip
    return {
        "robust_at_0.1": worst,
        "robust_measure": ROBUST_MEASURE,
        "clean_drop": drop,
        "decisions": decisions,
        "met": all(d["decision"] == "met" for d in decisions),
    }


def markdown(results: dict) -> str:
    """The README's table and target, from ``adversarial_training.json``."""
    cascade = results["cascade"]
    header = " | ".join(f"PGD-20 @{e:g} | cascade @{e:g}" for e in EPS)
    lines = [
        (
            f"{results['epochs']} epochs of `{results['config']}`; test accuracy (%); the "
            f"cascade: APGD-CE {cascade['steps']} steps, targeted APGD-DLR on "
            f"{cascade['targets']} classes, Square {cascade['queries']} queries, each on the "
            "points still standing."
        ),
        "",
        f"| model | clean | {header} |",
        "|---|---|" + "---|---|" * len(EPS),
    ]
    for arm, name in (("standard", "standard"), ("pgd", "PGD-trained")):
        r = results["arms"][arm]
        cells = " | ".join(
            f"{100 * r['pgd20'][str(e)]:.1f} | {100 * r['cascade'][str(e)]:.1f}" for e in EPS
        )
        lines.append(f"| {name} | {100 * r['clean']:.1f} | {cells} |")
    decided = target(results)
    standard, pgd = results["arms"]["standard"]["clean"], results["arms"]["pgd"]["clean"]
    stages = results["arms"]["pgd"]["cascade_stages"]["0.1"]
    lines += [
        "",
        (
            f"Target (at least {100 * ROBUST_TARGET:.0f}% at 0.1 with at most "
            f"{100 * CLEAN_DROP_TARGET:.0f} points of clean accuracy lost): "
            f"{'met' if decided['met'] else '**missed**'}. Robust accuracy at 0.1: "
            f"{100 * decided['robust_at_0.1']:.1f}%, {ROBUST_MEASURE}; clean accuracy "
            f"{100 * standard:.2f} -> {100 * pgd:.2f}, {100 * decided['clean_drop']:.2f} points "
            f"lost. Decisions: {stats.RULE_POINT} (one training seed)."
        ),
        "",
        "Cascade stages on the PGD-trained model at 0.1: "
        + "; ".join(f"{s['stage']} broke {s['broken']} of {s['attacked']}" for s in stages)
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
