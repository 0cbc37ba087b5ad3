"""``workbench experiment gan``: why the conditional GAN covered so little of the data, and what
each standard remedy buys, measured one at a time.

Protocol (grey 16 px digits, every GAN on all natural training labels, the augment study's
network: latent 32, width 32, hinge loss, spectral normalisation, EMA generator):

* two training budgets: ``short`` (the augment study's former 20 epochs of 2048 draws, 640 steps)
  and ``long`` (200 epochs, 6400 steps); the stated guess for the collapse was the short budget;
* at each budget, the baseline and each remedy alone (DiffAugment, R1 with gamma 1, minibatch
  standard deviation), and all three together;
* per GAN: its training time (wall and CPU seconds of the training process), 2000 samples
  (``workbench sample``), their Classification Accuracy Score (a classifier trained on the
  samples only, tested on the natural test split; overall and per class) against the same
  classifier trained on the real images, and FID, KID, precision and recall against the natural
  test split in that real-data classifier's features;
* three seeds; each remedy's effect as paired differences from the baseline at the same budget;
  the targets (recall >= 0.3, CAS / real >= 0.95, no class below 80% CAS, at most 10 CPU minutes
  of training) decided per configuration on the per-seed values.

Every model and result is written as soon as it is made, so an interrupted study resumes.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from workbench.checkpoint import load_module
from workbench.data.reader import is_finished
from workbench.execution import Executor, Unit
from workbench.experiments import stats
from workbench.experiments.augment import StudyConfig as AugmentConfig
from workbench.experiments.augment import Workspace
from workbench.experiments.common import StudyBase, grouped_bars, run_study, slug
from workbench.generative.grid import grid_figure, save_sample_grid
from workbench.generative.sampling import write_samples
from workbench.training.recipe import TrainBudget, natural

REMEDIES: dict[str, dict[str, Any]] = {
    "baseline": {},
    "+ DiffAugment": {"diffaugment": True},
    "+ R1": {"r1_weight": 1.0},
    "+ minibatch std": {"minibatch_std": True},
    "all three": {"diffaugment": True, "r1_weight": 1.0, "minibatch_std": True},
}
RECALL_TARGET, CAS_RATIO_TARGET, CLASS_TARGET, CPU_MINUTES_TARGET = 0.3, 0.95, 0.8, 10.0


@dataclass
class StudyConfig:
    """Budget of the study; ``quick`` is the reduced machinery check used by the tests."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    image_size: int = 16
    samples: int = 2000
    budgets: dict[str, int] = field(default_factory=lambda: {"short": 20, "long": 200})
    epoch_size: int = 2048
    gan: dict[str, Any] = field(default_factory=lambda: {"latent_dim": 32, "width": 32})
    classifier: TrainBudget = field(default_factory=lambda: TrainBudget(epochs=6, epoch_size=1536))

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            seeds=[0],
            samples=40,
            budgets={"short": 1, "long": 2},
            epoch_size=64,
            gan={"latent_dim": 4, "width": 4},
            classifier=TrainBudget(width=4, epochs=1, epoch_size=64, batch_size=32),
        )

    def workspace(self, out: str | Path) -> Workspace:
        """The augment study's workspace (its training, CAS and quality steps) on this budget."""
        augment = AugmentConfig(
            seeds=self.seeds,
            image_size=self.image_size,
            samples=self.samples,
            classifier=self.classifier,
            generator_epoch_size=self.epoch_size,
            epochs={"gan": max(self.budgets.values())},
            options={"gan": dict(self.gan)},
        )
        return Workspace(out, augment)


def _tag(remedy: str, budget: str, seed: int) -> str:
    return f"gan_{slug(remedy)}_{budget}_seed{seed}"


def train(out: str, config: StudyConfig, remedy: str, budget: str, seed: int) -> dict[str, Any]:
    """Trains (or finds) one GAN, times its training and writes its samples; returns the
    samples' folder and the training seconds (wall and CPU of this process)."""
    space = config.workspace(out)
    tag = _tag(remedy, budget, seed)
    timing = space.checkpoint(tag).with_suffix(".time.json")
    if not timing.is_file():
        space.checkpoint(tag).unlink(missing_ok=True)  # a fit whose time was not recorded
        wall, cpu = time.perf_counter(), time.process_time()
        space.fit_module("gan", tag, [natural()], seed, REMEDIES[remedy], config.budgets[budget])
        seconds = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
        timing.write_text(json.dumps(seconds))
    folder = space.out / "samples" / tag
    if not is_finished(folder):
        checkpoint = space.checkpoint(tag)
        write_samples(
            load_module(checkpoint, ["gan"]), folder, config.samples, seed=seed,
            provenance={"kind": "gan", "checkpoint": str(checkpoint)}, progress=False,
        )  # fmt: skip
    return {"samples": str(folder), **json.loads(timing.read_text())}


def work(out: str, config: StudyConfig, step: str, **kwargs: Any) -> Any:
    """One unit of the study: :func:`train`, or a workspace step (``classify``, ``cas``,
    ``quality``)."""
    if step == "train":
        return train(out, config, **kwargs)
    return getattr(config.workspace(out), step)(**kwargs)


class Study(StudyBase):
    """Runs the study into ``out``; see the module docstring."""

    def __init__(self, out: str | Path, config: StudyConfig, executor: Executor | None = None):
        super().__init__(out, config, executor)
        self.space = config.workspace(out)

    def _unit(self, key: str, step: str, **kwargs: Any) -> Unit:
        return Unit(key, work, dict(out=str(self.out), config=self.config, step=step, **kwargs))

    def _gans(self) -> list[tuple[str, str, int]]:
        c = self.config
        return [(r, b, s) for s in c.seeds for b in c.budgets for r in REMEDIES]

    def run(self) -> dict[str, Any]:
        c = self.config
        first = [
            self._unit(f"real_seed{s}", "classify", sources=[natural()], seed=s,
                       save=str(self.space.checkpoint(f"real_seed{s}")))
            for s in c.seeds
        ] + [
            self._unit(_tag(r, b, s), "train", remedy=r, budget=b, seed=s)
            for r, b, s in self._gans()
        ]  # fmt: skip
        self.bar = tqdm(total=len(first), desc="gan", unit="unit")
        trained = self.executor.run(first, self.tick)
        second = []
        for r, b, s in self._gans():
            samples = trained[_tag(r, b, s)]["samples"]
            features = str(self.space.checkpoint(f"real_seed{s}"))
            second += [
                self._unit(f"cas_{_tag(r, b, s)}", "cas", seed=s, samples=samples),
                self._unit(f"quality_{_tag(r, b, s)}", "quality", folder=samples,
                           features=features, seed=s),
            ]  # fmt: skip
        self.bar.total += len(second)
        self.bar.refresh()
        done = {**trained, **self.executor.run(second, self.tick)}
        self.bar.close()
        summary = self._summary(done)
        self._grids()
        self.save(summary, tables, _plot)
        return summary

    def _summary(self, done: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        real = [done[f"real_seed{s}"]["accuracy"] for s in c.seeds]
        classes = list(done[f"real_seed{c.seeds[0]}"]["per_class"])
        results: dict[str, dict[str, Any]] = {}
        for budget in c.budgets:
            for remedy in REMEDIES:
                tags = [_tag(remedy, budget, s) for s in c.seeds]
                cas = [done[f"cas_{t}"] for t in tags]
                quality = [done[f"quality_{t}"] for t in tags]
                per_seed = {
                    "cas": [r["accuracy"] for r in cas],
                    "cas_ratio": [r["accuracy"] / x for r, x in zip(cas, real, strict=True)],
                    "worst_class": [min(r["per_class"].values()) for r in cas],
                    "cpu_minutes": [done[t]["cpu_s"] / 60 for t in tags],
                    "wall_minutes": [done[t]["wall_s"] / 60 for t in tags],
                    **{m: [q[m] for q in quality] for m in ("fid", "kid", "precision", "recall")},
                }
                results[f"{remedy} ({budget})"] = {
                    "remedy": remedy,
                    "budget": budget,
                    "epochs": c.budgets[budget],
                    "metrics": {m: stats.summary(v) for m, v in per_seed.items()},
                    "cas_per_class": {
                        k: statistics.fmean(r["per_class"][k] for r in cas) for k in classes
                    },
                }
        summary = {
            "config": asdict(c),
            "real_accuracy": stats.summary(real),
            "results": results,
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
        }
        summary["effects"] = effects(summary)
        summary["targets"] = targets(summary)
        summary["provenance"] = self.recorder.block(resumed=self.resumed)
        return summary

    def _grids(self) -> None:
        """Sample grids of the first seed's baseline at both budgets and of every remedy at the
        long one."""
        seed, budgets = self.config.seeds[0], list(self.config.budgets)
        rows, names = [], []
        for remedy, budget in [("baseline", b) for b in budgets] + [
            (r, budgets[-1]) for r in list(REMEDIES)[1:]
        ]:
            gan = load_module(self.space.checkpoint(_tag(remedy, budget, seed)), ["gan"])
            rows.append(gan.generate(np.repeat(np.arange(10), 2).tolist(), seed))
            names.append(f"{remedy} ({budget})")
        grid_figure(np.stack(rows), names).savefig(self.out / "samples.png", dpi=100)
        best = load_module(self.space.checkpoint(_tag("baseline", budgets[-1], seed)), ["gan"])
        save_sample_grid(best, self.out / "samples_baseline_long.png", 10, seed)


def effects(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per budget, each remedy minus the baseline (recall, CAS / real, worst class), paired over
    seeds; and the long budget minus the short one for the baseline."""
    results, budgets = summary["results"], list(summary["config"]["budgets"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for budget in budgets:
        base = results[f"baseline ({budget})"]["metrics"]
        out[budget] = {
            f"{remedy} - baseline": {
                m: stats.paired_difference(
                    results[f"{remedy} ({budget})"]["metrics"][m]["values"], base[m]["values"]
                )
                for m in ("recall", "cas_ratio", "worst_class")
            }
            for remedy in list(REMEDIES)[1:]
        }
    short, long = (results[f"baseline ({b})"]["metrics"] for b in (budgets[0], budgets[-1]))
    out["budget"] = {
        f"baseline: {budgets[-1]} - {budgets[0]}": {
            m: stats.paired_difference(long[m]["values"], short[m]["values"])
            for m in ("recall", "cas_ratio", "worst_class")
        }
    }
    return out


def targets(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per configuration: recall, CAS / real and worst-class CAS decided on the per-seed values,
    and the training CPU minutes (every seed at most the target)."""
    out = {}
    for name, result in summary["results"].items():
        m = result["metrics"]
        cpu = m["cpu_minutes"]["values"]
        out[name] = [
            {"name": f"recall >= {RECALL_TARGET}", "difference": False,
             **stats.decide(m["recall"]["values"], RECALL_TARGET)},
            {"name": f"CAS / real >= {CAS_RATIO_TARGET}", "difference": False,
             **stats.decide(m["cas_ratio"]["values"], CAS_RATIO_TARGET)},
            {"name": f"worst class CAS >= {CLASS_TARGET:.0%}", "difference": False,
             **stats.decide(m["worst_class"]["values"], CLASS_TARGET)},
            {"name": f"training <= {CPU_MINUTES_TARGET:g} CPU minutes (every seed)",
             "estimate": max(cpu), "n": len(cpu),
             "decision": "met" if max(cpu) <= CPU_MINUTES_TARGET else "missed"},
        ]  # fmt: skip
    return out


def tables(summary: dict[str, Any]) -> str:
    """The study's tables in Markdown (``results.md`` and the README)."""
    results = summary["results"]
    n = summary["real_accuracy"]["n"]
    real = summary["real_accuracy"]["mean"]
    lines = [
        f"Every GAN trained on all natural labels; mean ± sample std over n = {n} seeds. CAS: a "
        "classifier trained on 2000 samples only, tested on the natural test split "
        f"(real data: {100 * real:.1f}%); quality against the natural test split in the "
        "real-data classifier's features.",
        "",
        "| remedy (budget) | epochs | recall | precision | FID | CAS / real | worst class CAS "
        "(%) | training CPU min | wall min | targets met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        m = result["metrics"]
        met = sum(t["decision"] == "met" for t in summary["targets"][name])
        lines.append(
            f"| {name} | {result['epochs']} | {_ms(m['recall'])} | {_ms(m['precision'])} | "
            f"{_ms(m['fid'], 2)} | {_ms(m['cas_ratio'])} | {stats.pct(m['worst_class']['values'])}"
            f" | {m['cpu_minutes']['mean']:.1f} | {m['wall_minutes']['mean']:.1f} | "
            f"{met} / {len(summary['targets'][name])} |"
        )
    lines += [
        "",
        "Effects (paired differences over seeds, mean [95% Student t interval]; recall and CAS "
        "/ real in hundredths, worst class in points):",
        "",
        "| change | recall | CAS / real | worst class CAS |",
        "|---|---|---|---|",
    ]
    for group in summary["effects"].values():
        for name, diffs in group.items():
            budget = "" if name.startswith("baseline") else f" ({_budget_of(summary, diffs)})"
            lines.append(
                f"| {name}{budget} | {stats.points(diffs['recall'])} | "
                f"{stats.points(diffs['cas_ratio'])} | {stats.points(diffs['worst_class'])} |"
            )
    lines += ["", "Targets per configuration:", "", "| configuration | " + " | ".join(
        t["name"] for t in next(iter(summary["targets"].values()))) + " |",
        "|---|" + "---|" * len(next(iter(summary["targets"].values())))]  # fmt: skip
    for name, decided in summary["targets"].items():
        cells = [f"{_estimate(t)} {stats.verdict(t)}" for t in decided]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _budget_of(summary: dict[str, Any], diffs: dict[str, Any]) -> str:
    for budget, group in summary["effects"].items():
        if any(d is diffs for d in group.values()):
            return budget
    return ""


def _ms(s: dict[str, Any], digits: int = 2) -> str:
    return f"{s['mean']:.{digits}f}" + ("" if s["std"] is None else f" ± {s['std']:.{digits}f}")


def _estimate(decided: dict[str, Any]) -> str:
    if "CPU" in decided["name"]:
        return f"max {decided['estimate']:.1f}"
    low_high = decided.get("interval")
    text = f"{decided['estimate']:.2f}"
    return text if not low_high else f"{text} [{low_high[0]:.2f}, {low_high[1]:.2f}]"


def _plot(summary: dict[str, Any], path: Path) -> None:
    results = summary["results"]
    budgets = list(summary["config"]["budgets"])
    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 3)
    for ax, metric, label in zip(
        axes,
        ("recall", "cas_ratio", "worst_class"),
        ("recall (dashed: target)", "CAS / real-data accuracy", "worst-class CAS"),
        strict=True,
    ):
        grouped_bars(
            ax,
            budgets,
            {r: {b: results[f"{r} ({b})"]["metrics"][metric] for b in budgets} for r in REMEDIES},
        )
        ax.set_title(label, fontsize=10)
        ax.set_xticks(range(len(budgets)), [f"{b} ({summary['config']['budgets'][b]} ep)"
                                             for b in budgets])  # fmt: skip
        ax.grid(axis="y", alpha=0.3)
    for ax, target in zip(axes, (RECALL_TARGET, CAS_RATIO_TARGET, CLASS_TARGET), strict=True):
        ax.axhline(100 * target, color="k", lw=0.8, ls="--", label="target")
        ax.set_ylabel("%")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment gan``); prints its tables."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)
