"""Attack benchmark against torchattacks and the Adversarial Robustness Toolbox (ART), side by
side in one process at equal budgets; prints a summary, writes JSON.

Same model, same examples, one batch, and at every budget (``--budgets``, steps of every
white-box attack; 10 and 100 by default) the same steps, restarts, target classes and queries
on every side:

* PGD (L-inf), ours against torchattacks' with the same steps and step size: time per step
  (paired ratios over repeats, order alternating) and robust accuracy at every eps (ours no
  higher);
* our cascade, preset ``standard`` (APGD-CE, APGD-T, FAB-T, Square;
  :func:`workbench.evaluation.cascade.cascade_stages`), against torchattacks' APGD, APGDT,
  FAB (multi-targeted) and Square at the same budget, combined per example by its
  ``MultiAttack`` as its ``AutoAttack`` does, and against ART's APGD-CE, targeted APGD-DLR and
  Square composed the same way (ART has no FAB). Targets: our worst case within 0.5 points of
  each reference (never higher by more), our time at most 1.0x torchattacks'.

Outcomes on every side are decided by one fresh forward pass on the returned images, which are
checked against the eps ball and the [0, 1] box.

torchattacks is a benchmark-only dependency, installed without its dependencies (its
torchvision import is not needed for these attacks): ``pip install --no-deps
torchattacks==3.5.1``; ART comes with the ``bench`` extra.

The JSON carries the budgets (``budget``), the machine's load averages and a ``provenance``
block (commit, command, host, versions, threads).

Usage: python benchmarks/bench_attacks.py --out bench_out [--ckpt CKPT] [--n 256]
    [--budgets 10,100] [--queries 5000] [--repeats 11] [--cascade-repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.model import LogitsModel
from workbench.adversarial.threat import ThreatModel
from workbench.checkpoint import load_module
from workbench.data.sources import DigitsSource
from workbench.data.transforms import harmonise
from workbench.evaluation.cascade import capped_targets, cascade_stages, predict, run_cascade
from workbench.evaluation.data import load_eval_data
from workbench.experiments import stats
from workbench.experiments.provenance import Recorder
from workbench.training.classifier import Classifier

log = logging.getLogger(__name__)

REFERENCES = ("torchattacks", "art")
NAMES = {"torchattacks": "torchattacks'", "art": "ART's"}
HALF_POINT = 0.005
BUDGETS = (10, 100)  # steps of the budgets make bench runs
COMPOSITION = {
    "ours": "workbench cascade, preset standard: APGD-CE, APGD-T (DLR), FAB-T, Square",
    "torchattacks": (
        "torchattacks: APGD (ce), APGDT, FAB (multi_targeted) and Square with the same steps, "
        "restarts, target classes and queries, combined per example by its MultiAttack."
    ),
    "art": (
        "ART: AutoProjectedGradientDescent (cross-entropy; then targeted, DLR loss, on the same "
        "most likely wrong classes) and SquareAttack with the same budget, composed per example "
        "in AutoAttack's order; ART has no FAB, so its column lacks the FAB-T stage."
    ),
}


def train_digits(image_size: int = 16, epochs: int = 15, eps: float = 0.1) -> Classifier:
    """A small CNN trained on the natural digits' training split with fast adversarial training
    (FGSM from a random start, step 1.25 eps; Wong et al. 2020), so that robust accuracy at
    the benchmark's eps is neither 0 nor 1 and the attacks' strength can be told apart."""
    torch.manual_seed(0)
    source = DigitsSource("train")
    x = torch.stack([harmonise(source[i], image_size, 1)["image"] for i in range(len(source))])
    y = torch.from_numpy(source.labels())
    model = Classifier(
        backbone="small_cnn",
        backbone_options={"width": 16, "depth": 2},
        image_size=image_size,
        in_channels=1,
    )
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    fgsm = build_attack("pgd", model, ThreatModel("linf", eps), steps=1, step_size=1.25 * eps)
    model.train()
    for epoch in range(epochs):
        fgsm.seed = epoch
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start : start + 64]
            x_adv = fgsm(x[batch], y[batch])
            loss = F.cross_entropy(model(x_adv)["logits"], y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def accuracy(model: torch.nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy from one fresh forward pass."""
    return float((predict(model, x_adv, 512) == y).float().mean())


def checked(threat: ThreatModel, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Asserts the images lie in the ball and the box; returns them."""
    threat.assert_within(x_adv, x)
    return x_adv


def pgd_pair(model, x, y, eps: float, steps: int, seed: int):
    """Returns callables running our PGD and torchattacks' PGD with the same settings."""
    import torchattacks

    threat = ThreatModel("linf", eps)
    alpha = 2.5 * eps / steps
    ours = build_attack("pgd", model, threat, seed=seed, steps=steps, step_size=alpha)
    theirs = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)

    def run_theirs():
        torch.manual_seed(seed)
        return theirs(x, y)

    return (lambda: ours(x, y)), run_theirs, threat


def ours_cascade(model, x, y, threat: ThreatModel, budget: dict, classes: int, batch: int):
    """Our cascade, preset ``standard``, at ``budget``."""
    stages = cascade_stages(
        "standard",
        budget["steps"],
        budget["queries"],
        budget["targets"],
        budget["restarts"],
        classes,
    )
    return lambda: run_cascade(model, x, y, threat, stages, seed=0, batch_size=batch).x_adv


def torchattacks_cascade(model, eps: float, budget: dict, classes: int):
    """The torchattacks APGD-CE, APGD-T, FAB-T and Square at ``budget``, combined per example by
    its ``MultiAttack`` (as its ``AutoAttack`` does, whose inner attacks keep their defaults)."""
    import torchattacks as ta

    steps, restarts = budget["steps"], budget["restarts"]
    common = {"norm": "Linf", "eps": eps, "seed": 0}
    attacks = [
        ta.APGD(model, steps=steps, n_restarts=restarts, loss="ce", **common),
        ta.APGDT(model, steps=steps, n_restarts=restarts, n_classes=classes, **common),
        ta.FAB(
            model,
            steps=steps,
            n_restarts=restarts,
            multi_targeted=True,
            n_classes=classes,
            **common,
        ),
        ta.Square(model, n_queries=budget["queries"], n_restarts=1, **common),
    ]
    for attack in attacks[1:3]:
        attack.n_target_classes = budget["targets"]
    return ta.MultiAttack(attacks)


def art_cascade(model, x, y, eps: float, budget: dict, classes: int, batch: int):
    """The Adversarial Robustness Toolbox's APGD-CE, targeted APGD-DLR and Square at
    ``budget``, combined per example in AutoAttack's order (each on the points still standing,
    outcomes by a fresh forward pass). ART has no FAB, so this reference has no FAB-T stage;
    and ART's ``AutoAttack`` class cannot hold this budget (its targeted mode runs every listed
    attack against every class), so its attacks are composed here."""
    import numpy as np
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack
    from art.estimators.classification import PyTorchClassifier

    estimator = PyTorchClassifier(
        model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=classes,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    apgd = {
        "norm": np.inf,
        "eps": eps,
        "eps_step": 2 * eps,
        "max_iter": budget["steps"],
        "nb_random_init": budget["restarts"],
        "batch_size": batch,
        "verbose": False,
    }
    ce = AutoProjectedGradientDescent(estimator, loss_type="cross_entropy", **apgd)
    dlr_t = AutoProjectedGradientDescent(
        estimator, loss_type="difference_logits_ratio", targeted=True, **apgd
    )
    square = SquareAttack(
        estimator,
        norm=np.inf,
        eps=eps,
        max_iter=budget["queries"],
        p_init=0.8,
        nb_restarts=1,
        batch_size=batch,
        verbose=False,
    )
    with torch.no_grad():
        ranked = model(x).argsort(dim=1, descending=True)
    # the i-th most likely wrong class of each example (AutoAttack's targets)
    wrong = torch.stack([row[row != label] for row, label in zip(ranked, y, strict=True)])

    def run() -> torch.Tensor:
        np.random.seed(0)
        torch.manual_seed(0)
        x_adv, standing = x.clone(), predict(model, x, batch) == y
        plan = [(ce, None)] + [(dlr_t, i) for i in range(budget["targets"])] + [(square, None)]
        for attack, target in plan:
            index = standing.nonzero()[:, 0]
            if len(index) == 0:
                break
            labels = y[index] if target is None else wrong[index, target]
            found = torch.from_numpy(attack.generate(x[index].numpy(), labels.numpy()))
            fooled = predict(model, found, batch) != y[index]
            x_adv[index[fooled]] = found[fooled]
            standing[index[fooled]] = False
        return x_adv

    return run


def timed(runs: dict, repeats: int) -> tuple[dict, dict]:
    """Runs every callable ``repeats`` times, order reversed every other repeat; returns each
    one's outputs and seconds per repeat."""
    outputs: dict = {name: [] for name in runs}
    seconds: dict = {name: [] for name in runs}
    for repeat in range(repeats):
        order = list(runs) if repeat % 2 == 0 else list(runs)[::-1]
        for name in order:
            start = time.perf_counter()
            outputs[name].append(runs[name]())
            seconds[name].append(time.perf_counter() - start)
    return outputs, seconds


def pgd_row(model, x, y, eps_list: list[float], steps: int, repeats: int) -> dict:
    """PGD-``steps`` time per step (ours / torchattacks, paired by repeat) and robust accuracy
    at every eps."""
    ours, theirs, _ = pgd_pair(model, x, y, max(eps_list), steps, seed=0)
    ours(), theirs()  # warm both
    _, seconds = timed({"ours": ours, "torchattacks": theirs}, repeats)
    ratios = [a / b for a, b in zip(seconds["ours"], seconds["torchattacks"], strict=True)]
    rows = []
    for eps in eps_list:
        ours, theirs, threat = pgd_pair(model, x, y, eps, steps, seed=0)
        ours_acc = accuracy(model, checked(threat, ours(), x), y)
        theirs_acc = accuracy(model, checked(threat, theirs(), x), y)
        rows.append(
            {
                "eps": eps,
                "ours": ours_acc,
                "torchattacks": theirs_acc,
                "ours_no_higher": ours_acc <= theirs_acc,
            }
        )
    return {
        "steps": steps,
        "seconds_per_step": {k: statistics.median(v) / steps for k, v in seconds.items()},
        "seconds": seconds,
        "time_ratios": ratios,
        "time": stats.decide(ratios, 1.0, "<="),
        "accuracy": rows,
    }


def cascade_row(model, x, y, eps: float, budget: dict, classes: int, batch: int, repeats: int):
    """The three cascades at ``eps`` and ``budget``: robust accuracy (every repeat, checked in
    the ball), seconds per repeat, and the targets."""
    threat = ThreatModel("linf", eps)
    theirs = torchattacks_cascade(model, eps, budget, classes)
    runs = {
        "ours": ours_cascade(model, x, y, threat, budget, classes, batch),
        "torchattacks": lambda: theirs(x, y),
        "art": art_cascade(model, x, y, eps, budget, classes, batch),
    }
    outputs, seconds = timed(runs, repeats)
    acc = {
        name: [accuracy(model, checked(threat, a, x), y) for a in adv]
        for name, adv in outputs.items()
    }
    worst = {name: min(values) for name, values in acc.items()}
    ratios = [a / b for a, b in zip(seconds["ours"], seconds["torchattacks"], strict=True)]
    return {
        "eps": eps,
        "accuracy": worst,
        "accuracy_repeats": acc,
        "seconds": seconds,
        "time_ratios": ratios,
        "time": stats.decide(ratios, 1.0, "<="),
        "within": {
            ref: stats.decide([worst["ours"] - worst[ref]], HALF_POINT, "<=") for ref in REFERENCES
        },
    }


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages of the machine (timings are noisy under load)."""
    return [round(v, 2) for v in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--ckpt", default=None, help="classifier checkpoint (default: train one)")
    parser.add_argument("--n", type=int, default=256, help="examples of the digits test split")
    parser.add_argument(
        "--budgets", default=",".join(map(str, BUDGETS)), help="steps of every white-box attack"
    )
    parser.add_argument("--queries", type=int, default=5000, help="Square's queries")
    parser.add_argument("--restarts", type=int, default=1, help="restarts of white-box attacks")
    parser.add_argument("--repeats", type=int, default=11, help="PGD timing repeats")
    parser.add_argument("--cascade-repeats", type=int, default=3, help="cascade timing repeats")
    parser.add_argument("--eps", default="0.05,0.1", help="L-inf radii")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads of every side (1: steadiest timing)"
    )
    args = parser.parse_args()
    recorder = Recorder(seeds={"model": 0, "attacks": 0, "examples": 0})
    import art
    import torchattacks

    load_start = load()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    classifier = load_module(args.ckpt, ["classifier"]) if args.ckpt else train_digits()
    model = LogitsModel(classifier).eval()
    size, channels = int(classifier.hparams.image_size), int(classifier.hparams.in_channels)
    data = load_eval_data("digits", size, channels, n=args.n, seed=0)
    x, y = data.x, data.y
    with torch.no_grad():
        classes = int(model(x[:1]).shape[1])
    eps_list = [float(e) for e in args.eps.split(",")]
    budgets = [
        {
            "steps": int(s),
            "restarts": args.restarts,
            "targets": capped_targets(9, classes),
            "queries": args.queries,
        }
        for s in args.budgets.split(",")
    ]
    runs = []
    for budget in budgets:
        log.info("budget %s", budget)
        pgd = pgd_row(model, x, y, eps_list, budget["steps"], args.repeats)
        rows = [
            cascade_row(model, x, y, eps, budget, classes, len(x), args.cascade_repeats)
            for eps in eps_list
        ]
        runs.append({"budget": budget, "pgd": pgd, "cascade": rows})
        print(summary(runs[-1]), flush=True)

    result = {
        "model": args.ckpt or "small_cnn trained on digits in this run",
        "n": len(x),
        "image": [channels, size, size],
        "clean_acc": accuracy(model, x, y),
        "threads": torch.get_num_threads(),
        "batch": len(x),
        "budget": budgets,
        "composition": COMPOSITION,
        "load_average": {"start": load_start, "end": load()},
        "runs": runs,
        "torchattacks": torchattacks.__version__,
        "art": art.__version__,
        "torch": torch.__version__,
    }
    result["provenance"] = recorder.block()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "attacks.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out / 'attacks.json'}")


def summary(run: dict) -> str:
    """A few lines for the console: one budget's PGD and cascade rows."""
    b, pgd = run["budget"], run["pgd"]
    ratio = statistics.median(pgd["time_ratios"])
    decision = pgd["time"]["decision"]
    lines = [f"budget {b}: PGD-{pgd['steps']} time ours/torchattacks {ratio:.3f} ({decision})"]
    for row in run["cascade"]:
        acc = ", ".join(f"{k} {v:.4f}" for k, v in row["accuracy"].items())
        secs = ", ".join(f"{k} {statistics.median(v):.1f} s" for k, v in row["seconds"].items())
        lines.append(f"  eps {row['eps']:g}: {acc}; {secs}")
    return "\n".join(lines)


def _ratio(decided: dict) -> str:
    """A decided time ratio: estimate, interval when there is one, n and the verdict."""
    bounds = decided["interval"]
    shown = f", 95% interval [{bounds[0]:.2f}, {bounds[1]:.2f}]" if bounds else ""
    return f"{decided['estimate']:.2f}x{shown}, n = {decided['n']}: {stats.verdict(decided)}"


def markdown(result: dict) -> str:
    """The README's comparison tables, from ``attacks.json``."""
    if "budget" not in result:
        return _unbudgeted_markdown(result)
    lines = [
        (
            "| steps | L-inf eps | PGD ours | PGD torchattacks | our cascade (standard) | "
            "torchattacks, same budget | ART, same budget | seconds: ours / torchattacks / ART |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    targets = []
    for run in result["runs"]:
        steps, pgd = run["budget"]["steps"], run["pgd"]
        pgd_acc = {row["eps"]: row for row in pgd["accuracy"]}
        for row in run["cascade"]:
            acc, seconds = row["accuracy"], row["seconds"]
            shown = " / ".join(
                f"{statistics.median(seconds[k]):.1f}" for k in ("ours", *REFERENCES)
            )
            lines.append(
                f"| {steps} | {row['eps']:g} | {100 * pgd_acc[row['eps']]['ours']:.1f} | "
                f"{100 * pgd_acc[row['eps']]['torchattacks']:.1f} | {100 * acc['ours']:.1f} | "
                f"{100 * acc['torchattacks']:.1f} | {100 * acc['art']:.1f} | {shown} |"
            )
            for ref in REFERENCES:
                within = row["within"][ref]
                targets.append(
                    f"- {steps} steps, eps {row['eps']:g}: our worst case minus {NAMES[ref]} "
                    f"{100 * within['estimate']:+.1f} points, target <= +0.5: "
                    f"{stats.verdict(within)}"
                )
            targets.append(
                f"- {steps} steps, eps {row['eps']:g}: cascade time ours / torchattacks "
                f"{_ratio(row['time'])}"
            )
        no_higher = all(row["ours_no_higher"] for row in pgd["accuracy"])
        targets.append(
            f"- PGD-{steps} ours no higher than torchattacks at every eps: "
            f"{'met' if no_higher else '**missed**'}"
        )
        targets.append(
            f"- PGD-{steps} time ours / torchattacks ({1e3 * pgd['seconds_per_step']['ours']:.1f} "
            f"against {1e3 * pgd['seconds_per_step']['torchattacks']:.1f} ms per step): "
            f"{_ratio(pgd['time'])}"
        )
    budgets = "; ".join(
        f"{b['steps']} steps, {b['restarts']} restart(s), {b['targets']} target classes, "
        f"Square {b['queries']} queries"
        for b in result["budget"]
    )
    runs = result["runs"]
    cascade_repeats = len(runs[0]["cascade"][0]["time_ratios"])
    load = result["load_average"]
    lines += [
        "",
        (
            f"Robust accuracy in %, clean {100 * result['clean_acc']:.1f}%, n = {result['n']} "
            f"(one batch of {result['batch']}), torch threads {result['threads']}, all in one "
            f"process on the same model and examples. Budgets, equal on every side: {budgets}. "
            f"{result['composition']['torchattacks']} {result['composition']['art']} "
            "Every returned image is checked in the eps ball and the box; outcomes come from one "
            "fresh forward pass. Seconds are medians over "
            f"{cascade_repeats} repeats (PGD: {len(runs[0]['pgd']['time_ratios'])}), the order "
            "reversed every other repeat; time ratios are paired by repeat. The machine's load "
            f"average (1, 5, 15 min) was {load['start']} at the start and {load['end']} at the "
            "end: timings under load are noisy."
        ),
        "",
        f"Targets (accuracy: {stats.RULE_POINT}; time: {stats.RULE_INTERVAL}):",
        "",
        *targets,
    ]
    missing = [str(s) for s in BUDGETS if s not in {b["steps"] for b in result["budget"]}]
    if missing:
        budgets = " and ".join(missing)
        lines += ["", f"Not run for this JSON: the {budgets}-step budget of `make bench`."]
    return "\n".join(lines) + "\n"


def _unbudgeted_markdown(result: dict) -> str:
    """The comparison table of an ``attacks.json`` written before budgets were recorded."""
    lines = [
        (
            "| L-inf eps | PGD-20 ours | PGD-20 torchattacks | our cascade | torchattacks "
            "AutoAttack (standard) | cascade s | AutoAttack s |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["accuracy"]:
        lines.append(
            f"| {row['eps']:g} | {100 * row['pgd_acc_ours']:.1f} | "
            f"{100 * row['pgd_acc_torchattacks']:.1f} | {100 * row['cascade_acc_ours']:.1f} | "
            f"{100 * row['autoattack_acc_torchattacks']:.1f} | {row['cascade_seconds']:.1f} | "
            f"{row['autoattack_seconds']:.1f} |"
        )
    per_step = result["pgd_seconds_per_step"]
    timing = stats.decide([result["pgd_time_ratio"]], 1.0, "<=")
    no_higher = all(row["pgd_ours_no_higher"] for row in result["accuracy"])
    lines += [
        "",
        (
            f"Robust accuracy in %, clean {100 * result['clean_acc']:.1f}%, n = {result['n']}, "
            f"torch threads {result['threads']}. Our PGD-{result['pgd_steps']} no higher than "
            f"torchattacks' at every eps: {'met' if no_higher else '**missed**'}. PGD time per "
            f"step ({result['pgd_steps']} steps, batch {result['n']}, median of interleaved "
            "repeats): "
            f"{1e3 * per_step['ours']:.1f} ms against {1e3 * per_step['theirs']:.1f} ms, "
            f"**{result['pgd_time_ratio']:.2f}x**; target <= 1.0x: {stats.verdict(timing)} "
            f"({stats.RULE_POINT})."
        ),
    ]
    if "budget" not in result:
        lines += [
            "",
            (
                "The cascade columns are **not a like-for-like comparison**: this JSON records no "
                "attack budgets, and the script that wrote it ran our cascade with APGD-CE and "
                "APGD-T at 100 steps (9 targets) and Square at 5000 queries, but torchattacks' "
                "`AutoAttack(version='standard')` with its own defaults (APGD, APGD-T and FAB-T at "
                "10 steps). No target is claimed from them."
            ),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
