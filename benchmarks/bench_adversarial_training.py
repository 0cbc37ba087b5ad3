"""Adversarial training benchmark: a standard and a PGD-trained digits classifier, side by side,
both evaluated by ``workbench robustness`` itself.

Both arms train from ``configs/adversarial_digits.yaml`` (natural handwritten digits, grey
16x16, the same small ResNet, seed, epochs and augmentation); the standard arm only switches
adversarial training off (``method: none``, so it still logs robust validation accuracy). Each
arm's final weights are saved as a checkpoint and evaluated on every one of the held-out test
digits by the ``workbench robustness`` command (a subprocess), with the same arguments for both
arms, so at equal budget: every L-inf attack of the sweep at eps 0.05, 0.1 and 0.2, each on
its own, then the full AutoAttack ``standard`` cascade (APGD-CE, APGD-T, FAB-T, Square) on the
points none of them broke; the worst case is per example (a point counts as robust only when
every attack failed on it). Clean and worst-case accuracy per eps, the per-attack accuracies,
the cascade stages and the honesty checks come from each arm's ``report.json``; the budget is
the ``--budget`` preset of ``workbench robustness`` (``standard``: 100 steps, 9 target
classes, 5000 Square queries). Target: PGD training keeps at least 70% worst-case accuracy at
eps 0.1 while losing at most 5 points of clean accuracy; one training seed, so each part is
decided by its value (``workbench.experiments.stats``).

Wall and CPU seconds are recorded per arm for training (this process) and evaluation (the
subprocess), with the load average before and after each: under contention wall time grows
while CPU time does not, so the two together tell a slow arm from a busy machine. The JSON
carries a ``provenance`` block (commit, command, host, versions, threads).

The two arms are units of :mod:`workbench.execution`: one after another by default (the timings
then come from a machine running one arm at a time), as Ray tasks with ``--workers 2`` or
``--ray-address``; each finished arm is saved under ``OUT/adversarial_training/units/``, so a
rerun of the same command resumes.

Usage: python benchmarks/bench_adversarial_training.py --out bench_out [--epochs 20]
       [--budget standard] [--workers 1] [--threads T] [--ray-address HOST:PORT] [--quick]
       (quick: 1 epoch, the quick budget; a smoke run that publish.py refuses)
Writes OUT/adversarial_training.json and OUT/adversarial_training.png (the reports under
OUT/adversarial_training/); prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from workbench.data.sources import DigitsSource
from workbench.execution import Executor, Unit
from workbench.experiments import stats
from workbench.experiments.provenance import Recorder
from workbench.training.lightning_cli import build

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "adversarial_digits.yaml"
EPS = (0.05, 0.1, 0.2)
ROBUST_TARGET, CLEAN_DROP_TARGET = 0.70, 0.05
ROBUST_MEASURE = (
    "the per-example worst case over every attack of the sweep and the standard cascade, as "
    "`workbench robustness` reports it (`worst_case_acc`)"
)
ARMS = {
    "standard": ["--model.init_args.adversarial", "{method: none, val_eps: 0.1, val_steps: 10}"],
    "pgd": [],
}
NAMES = {"standard": "standard", "pgd": "PGD-trained"}


def _clock() -> dict:
    """Wall time, this process's CPU time, its waited-for children's CPU time, the load."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": time.perf_counter(),
        "cpu": time.process_time(),
        "children_cpu": children.ru_utime + children.ru_stime,
        "load": os.getloadavg()[0],
    }


def _elapsed(start: dict, key: str = "cpu") -> dict:
    end = _clock()
    return {
        "wall_s": round(end["wall"] - start["wall"], 2),
        "cpu_s": round(end[key] - start[key], 2),
        "load_before": round(start["load"], 2),
        "load_after": round(end["load"], 2),
    }


def train(arm: str, out: Path, epochs: int) -> tuple[Path, dict]:
    """Trains one arm from scratch; returns its final checkpoint and the time it took."""
    cli = build(["-c", str(CONFIG), "--trainer.max_epochs", str(epochs),
                 "--trainer.default_root_dir", str(out / "runs"),
                 "--trainer.enable_progress_bar", "false", *ARMS[arm]],
                run_name=f"adversarial_{arm}")  # fmt: skip
    start = _clock()
    cli.trainer.fit(cli.model, cli.datamodule)
    seconds = _elapsed(start)
    ckpt = out / f"{arm}.ckpt"
    cli.trainer.save_checkpoint(ckpt)
    return ckpt, seconds


def robustness_args(ckpt: Path, report: Path, budget: str, threads: int) -> list[str]:
    """The ``workbench robustness`` arguments of one arm (the same for both but the paths)."""
    return ["robustness", "--ckpt", str(ckpt), "--data", "digits", "--out", str(report),
            "--eps", ",".join(f"{e:g}" for e in EPS), "--n", str(len(DigitsSource("test"))),
            "--budget", budget, "--cascade", "standard", "--corruptions", "none", "--seed", "0",
            "--threads", str(threads), "--quiet"]  # fmt: skip


def evaluate(ckpt: Path, report: Path, budget: str, threads: int) -> tuple[dict, dict]:
    """Runs ``workbench robustness`` on one checkpoint; returns its report and the time."""
    args = robustness_args(ckpt, report, budget, threads)
    command = [sys.executable, "-m", "workbench.cli", *args]
    start = _clock()
    subprocess.run(command, check=True)
    seconds = _elapsed(start, "children_cpu")
    return json.loads((report / "report.json").read_text()), seconds


def run_arm(arm: str, work: str, epochs: int, budget: str) -> dict:
    """One arm as a unit of :mod:`workbench.execution`: trains it, evaluates it with
    ``workbench robustness`` at this unit's torch threads, returns what the benchmark keeps."""
    ckpt, train_seconds = train(arm, Path(work), epochs)
    threads = torch.get_num_threads()
    report, eval_seconds = evaluate(ckpt, Path(work) / f"robustness_{arm}", budget, threads)
    return {**summarise(report), "train": train_seconds, "evaluation": eval_seconds}


def summarise(report: dict) -> dict:
    """What the benchmark keeps of one arm's report."""
    return {
        "clean": report["clean_acc"],
        "worst_case": report["worst_case_acc"],
        "per_attack": report["robust_acc"],
        "cascade_stages": report["cascade"],
        "cascade_preset": report["cascade_preset"],
        "checks_passed": report["checks_passed"],
        "checks": {c["name"]: c["status"] for c in report["checks"]},
        "n_examples": report["n_examples"],
        "settings": report["settings"],
        "report_seconds": report["seconds"],
    }


def plot(results: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    for arm, color in (("standard", "tab:blue"), ("pgd", "tab:red")):
        r = results["arms"][arm]
        xs = [0.0, *EPS]
        axis.plot(xs, [r["clean"], *(r["worst_case"][f"{e:g}"] for e in EPS)], "o-",
                  color=color, label=f"{NAMES[arm]}: worst case")  # fmt: skip
    axis.axhline(ROBUST_TARGET, color="grey", lw=0.8, ls=":")
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
    parser.add_argument("--budget", default="standard", choices=["standard", "quick"],
                        help="workbench robustness --budget for both arms")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="arms at once (Ray tasks above 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of each arm (default: torch's choice here)")
    parser.add_argument("--ray-address", default=None, help="HOST:PORT of a running Ray cluster")
    parser.add_argument("--quick", action="store_true", help="a smoke run (not publishable)")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.budget = 1, "quick"
    recorder = Recorder(seeds={"seed_everything": 0, "robustness": 0})
    out = Path(args.out)
    work = out / "adversarial_training"
    work.mkdir(parents=True, exist_ok=True)
    threads = args.threads or torch.get_num_threads()
    executor = Executor(workers=args.workers, ray_address=args.ray_address, threads=threads,
                        store=work / "units")  # fmt: skip
    units = [
        Unit(f"{arm}_epochs{args.epochs}_{args.budget}_threads{threads}", run_arm,
             {"arm": arm, "work": str(work), "epochs": args.epochs, "budget": args.budget})
        for arm in ARMS
    ]  # fmt: skip
    done = executor.run(units, lambda unit, _, s: print(f"{unit.key}: {s:.0f} s", flush=True))
    results = {
        "config": str(CONFIG.relative_to(ROOT)),
        "epochs": args.epochs,
        "robustness_command": "workbench "
        + " ".join(robustness_args(Path("CKPT"), Path("OUT"), args.budget, threads)),
        "arms": {arm: done[unit.key] for arm, unit in zip(ARMS, units, strict=True)},
        "execution": {"workers": args.workers, "threads": threads},
    }
    settings = [r.pop("settings") for r in results["arms"].values()]
    if settings[0] != settings[1]:
        raise SystemExit(f"the arms were evaluated with different settings: {settings}")
    results["settings"] = settings[0]
    results["target"] = target(results)
    results["provenance"] = recorder.block()
    (out / "adversarial_training.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "adversarial_training.png")
    print(markdown(results))
    print(f"wrote {out / 'adversarial_training.json'} and {out / 'adversarial_training.png'}")


def target(results: dict) -> dict:
    """The target's two parts, each one measurement decided by its value, and whether both
    are met."""
    standard, pgd = results["arms"]["standard"], results["arms"]["pgd"]
    worst = pgd["worst_case"]["0.1"]
    drop = standard["clean"] - pgd["clean"]
    decisions = [
        {"name": f"PGD-trained worst-case accuracy at 0.1 >= {100 * ROBUST_TARGET:.0f}%",
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


def _legacy_markdown(results: dict) -> str:
    """A JSON of the earlier script (PGD-20 and cascade aggregates computed in-process), shown
    as what it is until a run of this script replaces it."""
    arms = results["arms"]
    eps = [str(e) for e in EPS]
    lines = [
        (
            "**Written by an earlier version of this script, not by `workbench robustness`**: "
            "PGD-20 and an APGD-CE / APGD-T / Square cascade, each an aggregate accuracy over the "
            f"test set, not a per-example worst case; {results['epochs']} epochs of "
            f"`{results['config']}`, test accuracy (%). A full run of the current script "
            "replaces it."
        ),
        "",
        "| model | clean | " + " | ".join(f"PGD-20 @{e} | cascade @{e}" for e in eps) + " |",
        "|---|---|" + "---|---|" * len(eps),
    ]
    for arm in ARMS:
        r = arms[arm]
        cells = " | ".join(f"{100 * r['pgd20'][e]:.1f} | {100 * r['cascade'][e]:.1f}" for e in eps)
        lines.append(f"| {NAMES[arm]} | {100 * r['clean']:.1f} | {cells} |")
    standard, pgd = arms["standard"]["clean"], arms["pgd"]["clean"]
    lines += [
        "",
        (
            f"Clean accuracy {100 * standard:.2f} -> {100 * pgd:.2f}. No target is decided on "
            "these numbers: the lower of two aggregates is not the worst case."
        ),
    ]
    return "\n".join(lines) + "\n"


def markdown(results: dict) -> str:
    """The README's tables and target, from ``adversarial_training.json``."""
    if "settings" not in results:
        return _legacy_markdown(results)
    s = results["settings"]
    arms = results["arms"]
    eps = [f"{e:g}" for e in s["eps"]]
    attacks = list(arms["pgd"]["per_attack"])
    aimed = [a for a in attacks if a in ("apgd-dlr", "fab")]
    targeted = f"; {' and '.join(aimed)} targeted, as in the cascade" if aimed else ""
    lines = [
        (
            f"{results['epochs']} epochs of `{results['config']}`; accuracy (%) on the "
            f"{arms['pgd']['n_examples']} test digits, both checkpoints evaluated by "
            f"`{results['robustness_command']}` (budget `{s['budget']}`: {s['steps']} steps, "
            f"{s['restarts']} restart, {s['targets']} target classes, {s['queries']} Square "
            f"queries). Worst case: per example, over the sweep ({', '.join(attacks)}, each on "
            f"its own{targeted}) and the `{arms['pgd']['cascade_preset']}` cascade's stages not "
            "already swept, on the points none of them broke."
        ),
        "",
        "| model | clean | " + " | ".join(f"worst case @{e}" for e in eps) + " | checks |",
        "|---|---|" + "---|" * len(eps) + "---|",
    ]
    for arm in ARMS:
        r = arms[arm]
        cells = " | ".join(f"{100 * r['worst_case'][e]:.1f}" for e in eps)
        failed = [name for name, status in r["checks"].items() if status == "FAIL"]
        skipped = [name for name, status in r["checks"].items() if status == "SKIP"]
        checks = "**failed: " + ", ".join(failed) + "**" if failed else "no failure"
        checks += f" (skipped: {', '.join(skipped)})" if skipped else ""
        lines.append(f"| {NAMES[arm]} | {100 * r['clean']:.1f} | {cells} | {checks} |")
    lines += [
        "",
        "Each attack on its own (%): "
        + "; ".join(
            f"{attack} "
            + " / ".join(
                f"{100 * arms['standard']['per_attack'][attack][e]:.1f} -> "
                f"{100 * arms['pgd']['per_attack'][attack][e]:.1f}"
                for e in eps
            )
            for attack in attacks
        )
        + f" (standard -> PGD-trained at eps {' / '.join(eps)}).",
    ]
    decided = target(results)
    standard, pgd = arms["standard"]["clean"], arms["pgd"]["clean"]
    stages = arms["pgd"]["cascade_stages"]["0.1"]
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
        "Cascade stages on the PGD-trained model at 0.1, after the sweep: "
        + ("; ".join(f"{x['stage']} broke {x['broken']} of {x['attacked']}" for x in stages)
           or "none left to run (every stage is already in the sweep)")
        + ".",
        "",
        "Time per arm (wall / CPU minutes; load average before -> after): "
        + "; ".join(
            f"{NAMES[arm]}: training {_minutes(arms[arm]['train'])}, evaluation "
            f"{_minutes(arms[arm]['evaluation'])}"
            for arm in ARMS
        )
        + ".",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _minutes(seconds: dict) -> str:
    return (
        f"{seconds['wall_s'] / 60:.1f} / {seconds['cpu_s'] / 60:.1f} "
        f"({seconds['load_before']:.1f} -> {seconds['load_after']:.1f})"
    )


if __name__ == "__main__":
    main()
