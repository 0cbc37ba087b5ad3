"""Tuning and parallel-study benchmark, side by side in one run; prints ratios and writes JSON.

* ASHA against FIFO: the same random search (same seed, so the same trials) of
  ``configs/space_classifier_digits.yaml`` over ``configs/classifier_digits.yaml``, once with
  ASHA stopping poor trials and once with every trial run to the end; the best validation
  accuracy of each and the epochs each spent;
* the tuned configuration (``best.yaml`` of the FIFO sweep) against the config as shipped, both
  trained for the shipped number of epochs, on the natural test split over several seeds: the
  paired difference with its 95% interval;
* ``workbench experiment sim2real`` with one seed on 2 workers against 1 (one torch thread per
  run in both): the wall time ratio, and whether the numbers are the same.

The rendered digits the config reads (``demo_out/digits``) are rendered into the work folder
first, as ``make demo`` does. The JSON carries a ``provenance`` block.

Usage: python benchmarks/bench_tune.py --out bench_out [--trials 16] [--epochs 6] [--seeds 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from workbench.experiments import stats
from workbench.experiments.provenance import Recorder

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "classifier_digits.yaml"
SPACE = ROOT / "configs" / "space_classifier_digits.yaml"
METRIC = "val/acc/natural"
BEST_TARGET, EPOCHS_TARGET, WORKERS_TARGET = 0.005, 0.40, 1.7
SHIPPED_EPOCHS = 15  # trainer.max_epochs of configs/classifier_digits.yaml


def workbench(*args: str, cwd: Path) -> tuple[str, float]:
    """Runs ``workbench ARGS`` in ``cwd``; returns its output and wall seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"workbench {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout, time.perf_counter() - start


def sweep(work: Path, scheduler: str, trials: int, epochs: int) -> dict:
    """One sweep in ``work/<scheduler>``; returns its summary, table and wall seconds."""
    out = work / scheduler
    _, seconds = workbench("tune", "-c", str(CONFIG), "--space", str(SPACE), "--out", str(out),
                           "--num-samples", str(trials), "--scheduler", scheduler,
                           "--max-epochs", str(epochs), "--seed", "0", cwd=work)  # fmt: skip
    with (out / "trials.csv").open() as handle:
        table = list(csv.DictReader(handle))
    summary = json.loads((out / "summary.json").read_text())
    return {"summary": summary, "table": table, "seconds": seconds}


def compare_schedulers(work: Path, trials: int, epochs: int) -> dict:
    """ASHA against FIFO on the same trials."""
    fifo, asha = sweep(work, "fifo", trials, epochs), sweep(work, "asha", trials, epochs)
    keys = list(fifo["summary"]["best"]["values"])
    same = [[r[k] for k in keys] for r in fifo["table"]] == [
        [r[k] for k in keys] for r in asha["table"]
    ]
    if not same:
        raise RuntimeError("the two sweeps sampled different trials; the comparison is void")
    best = {name: s["summary"]["best"]["validation"] for name, s in (("fifo", fifo),
                                                                     ("asha", asha))}  # fmt: skip
    epochs_run = {name: s["summary"]["epochs_run"] for name, s in (("fifo", fifo), ("asha", asha))}
    return {
        "trials": trials,
        "max_epochs": epochs,
        "best_val": best,
        "best_val_gap": best["fifo"] - best["asha"],
        "epochs_run": epochs_run,
        "epochs_ratio": epochs_run["asha"] / epochs_run["fifo"],
        "seconds": {"fifo": fifo["seconds"], "asha": asha["seconds"]},
        "status": asha["summary"]["status"],
        "best_values": fifo["summary"]["best"]["values"],
    }


def test_accuracy(work: Path, root: Path, seed: int, overlay: Path | None, epochs: int) -> float:
    """Trains the shipped config (with ``overlay`` when given) for ``epochs`` into ``root``;
    returns the natural test accuracy of the final weights."""
    configs = [CONFIG, *([overlay] if overlay else [])]
    common = [arg for path in configs for arg in ("-c", str(path))]
    common += ["--seed_everything", str(seed), "--trainer.default_root_dir", str(root),
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    workbench("fit", *common, "--trainer.max_epochs", str(epochs), cwd=work)
    run = root / "+".join(path.stem for path in configs)
    workbench("test", *common, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), cwd=work)
    latest = max(run.glob("version_*"), key=lambda p: int(p.name[8:]))
    with (latest / "metrics.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("test/acc/natural")]
    return float(rows[-1]["test/acc/natural"])


def compare_configs(work: Path, best: Path, seeds: int, epochs: int = SHIPPED_EPOCHS) -> dict:
    """The tuned config against the shipped one, paired by seed, both trained for ``epochs``
    (the shipped config's number by default, whatever the sweep's trials ran)."""
    shipped = [test_accuracy(work, work / f"shipped_{s}", s, None, epochs) for s in range(seeds)]
    tuned = [test_accuracy(work, work / f"tuned_{s}", s, best, epochs) for s in range(seeds)]
    return {
        "epochs": epochs,
        "shipped": stats.summary(shipped),
        "tuned": stats.summary(tuned),
        "difference": stats.paired_difference(tuned, shipped),
    }


def compare_workers(work: Path) -> dict:
    """The sim-to-real study (one seed) on 1 and on 2 workers, one torch thread per run."""
    timings, results = {}, {}
    for workers in (1, 2):
        out = work / f"sim2real_{workers}"
        _, timings[workers] = workbench("experiment", "sim2real", "--seeds", "1", "--threads",
                                        "1", "--workers", str(workers), "--out", str(out),
                                        cwd=work)  # fmt: skip
        results[workers] = json.loads((out / "results.json").read_text())
    same = all(results[1][k] == results[2][k] for k in ("zero_shot", "arms", "best_curriculum"))
    return {"one_s": timings[1], "two_s": timings[2], "speedup": timings[1] / timings[2],
            "same_numbers": same}  # fmt: skip


def targets(results: dict) -> list[dict]:
    """ASHA's best validation accuracy within 0.5 points of FIFO's, on at most 40% of its
    epochs; 2 workers at least 1.7x one (one measurement each, decided by its value)."""
    s, w = results["schedulers"], results["workers"]
    return [
        {"name": "FIFO best - ASHA best (validation)", "difference": True,
         **stats.decide([s["best_val_gap"]], BEST_TARGET, "<=")},
        {"name": "ASHA epochs / FIFO epochs", "difference": False,
         **stats.decide([s["epochs_ratio"]], EPOCHS_TARGET, "<=")},
        {"name": "sim2real, 2 workers / 1 worker", "difference": False,
         **stats.decide([w["speedup"]], WORKERS_TARGET)},
    ]  # fmt: skip


def markdown(results: dict) -> str:
    """The README's table, computed from ``results``."""
    s, c, w = results["schedulers"], results["configs"], results["workers"]
    decided = {t["name"]: t for t in results["targets"]}
    diff = c["difference"]
    low, high = diff["interval"] or (diff["mean"], diff["mean"])
    rows = [
        "| measurement | value | target | |",
        "|---|---|---|---|",
        f"| {s['trials']} random trials of `configs/space_classifier_digits.yaml`, "
        f"{s['max_epochs']} epochs at most: best validation accuracy, FIFO vs ASHA | "
        f"{100 * s['best_val']['fifo']:.2f}% vs {100 * s['best_val']['asha']:.2f}% | "
        f"gap <= {100 * BEST_TARGET:.1f} points | "
        f"{stats.verdict(decided['FIFO best - ASHA best (validation)'])} |",
        f"| epochs ASHA spent / FIFO's | {s['epochs_run']['asha']} / {s['epochs_run']['fifo']}"
        f" = **{s['epochs_ratio']:.2f}** | <= {EPOCHS_TARGET:.2f} | "
        f"{stats.verdict(decided['ASHA epochs / FIFO epochs'])} |",
        f"| tuned (FIFO's `best.yaml`) - shipped config, natural test accuracy, {c['epochs']} "
        f"epochs each, n = {diff['n']} seeds | {100 * diff['mean']:+.2f} points "
        f"[{100 * low:+.2f}, {100 * high:+.2f}] | reported | |",
        f"| `workbench experiment sim2real --seeds 1 --threads 1`, 2 workers against 1 | "
        f"{w['one_s']:.0f} s vs {w['two_s']:.0f} s: **{w['speedup']:.2f}x** (same numbers: "
        f"{'yes' if w['same_numbers'] else 'NO'}) | >= {WORKERS_TARGET}x | "
        f"{stats.verdict(decided['sim2real, 2 workers / 1 worker'])} |",
    ]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.seeds = 2, 1, 1
    out = Path(args.out).resolve()
    work = out / "tune_work"
    work.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(seeds={"search": 0, "configs": list(range(args.seeds))})
    workbench("render", "digits", "--num", "64" if args.quick else "600", "--out",
              str(work / "demo_out" / "digits"), "--quiet", cwd=work)  # fmt: skip
    results = {"schedulers": compare_schedulers(work, args.trials, args.epochs)}
    print(f"ASHA vs FIFO: {results['schedulers']}")
    epochs = 1 if args.quick else SHIPPED_EPOCHS
    results["configs"] = compare_configs(work, work / "fifo" / "best.yaml", args.seeds, epochs)
    print(f"tuned vs shipped: {results['configs']['difference']}")
    if not args.quick:
        results["workers"] = compare_workers(work)
        print(f"workers: {results['workers']}")
        results["targets"] = targets(results)
    results["provenance"] = recorder.block()
    (out / "tune.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'tune.json'}")


if __name__ == "__main__":
    main()
