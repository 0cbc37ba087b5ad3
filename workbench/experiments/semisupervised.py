"""``workbench experiment semisupervised``: ensemble pseudo-labels in rounds, as the training
lecture describes them, against training on the few labels alone and against adding rendered
digits.

Protocol (grey 16 px, the same network, budget and draws for every classifier):

* k natural labels per class (k in 1, 3) from the natural training split; the rest of that split
  is the unlabelled pool (its labels are used only to score the pseudo-labels);
* ``k only``: one classifier on the k labels; ``k + rendered``: the k labels and the rendered
  digits of ``scenes/digits_sim2real.yaml``, drawn 1:1;
* pseudo-label rounds: round 0 trains M members on the k labels (seeds ``100 * seed + m``); each
  later round labels the pool with the previous round's ensemble (mean softmax; kept when every
  member agrees and the mean confidence reaches 0.8, below the 0.91 that the recipe's label
  smoothing allows; ``workbench pseudo-label``'s library call) and retrains each member from
  scratch on the k labels and the kept pool items, drawn 1:1; per round the pseudo-labels'
  accuracy and count, the members' mean test accuracy and the ensemble's;
* every arm over 3 seeds: mean, sample std and n; the last round's members minus ``k only`` as
  paired differences with a 95% Student t interval; target: at least +3 points at k = 1.

Each training run is a unit of :mod:`workbench.execution` (saved as it ends, so a stopped study
resumes; spread over Ray workers with ``--workers``); the members of a round run at once, the
rounds one after another. Results carry a ``provenance`` block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from workbench.checkpoint import load_module
from workbench.data.datamodule import Subset
from workbench.data.sources import DigitsSource
from workbench.execution import Unit
from workbench.experiments import stats
from workbench.experiments.common import StudyBase, render_scene, run_study
from workbench.resources import scenes_dir
from workbench.training.pseudo_label import pseudo_label
from workbench.training.recipe import (
    TrainBudget,
    accuracy,
    natural,
    natural_images,
    train_classifier,
)

TARGET_POINTS = 0.03


@dataclass
class StudyConfig:
    """Budget of the study; ``quick`` is the reduced machinery check used by the tests."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ks: list[int] = field(default_factory=lambda: [1, 3])
    members: int = 3
    rounds: int = 3
    # the recipe's label smoothing (0.1 over 10 classes) caps a confident softmax near 0.91, so
    # the command's default 0.9 keeps almost nothing (25 of 1,249 items at k = 1 in a full run)
    min_confidence: float = 0.8
    agree: str = "all"
    rendered: int = 2000
    image_size: int = 16
    classifier: TrainBudget = field(default_factory=lambda: TrainBudget(epochs=6, epoch_size=1536))

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            seeds=[0],
            ks=[1],
            members=3,
            rounds=1,
            min_confidence=0.0,
            agree="majority",
            rendered=40,
            classifier=TrainBudget(width=8, epochs=2, epoch_size=256, batch_size=32),
        )


def fit_member(config: StudyConfig, sources: list[dict], seed: int, save: str) -> dict[str, Any]:
    """One unit: trains the study's classifier on ``sources``, saves it to ``save`` and returns
    its natural test accuracy (overall and per class)."""
    budget = replace(config.classifier, image_size=config.image_size)
    model = train_classifier(sources, budget, seed)
    model.trainer.save_checkpoint(save)
    return accuracy(model, *natural_images("test", budget))


def unlabelled_pool(k: int) -> Subset:
    """The natural training split without its first ``k`` items per class (the labelled ones,
    as ``per_class: k`` picks them)."""
    full = DigitsSource("train")
    labels = full.labels()
    labelled = np.concatenate([np.flatnonzero(labels == c)[:k] for c in range(10)])
    return Subset(full, np.setdiff1d(np.arange(len(full)), labelled))


class Study(StudyBase):
    """Runs the study into ``out``; see the module docstring and :class:`StudyBase`."""

    def _unit(self, key: str, sources: list[dict], seed: int) -> Unit:
        save = str(self.runs / f"{key}.ckpt")
        return Unit(key, fit_member, dict(config=self.config, sources=sources, seed=seed,
                                          save=save))  # fmt: skip

    def _member(self, k: int, seed: int, round_: int, member: int) -> str:
        return f"k{k}_seed{seed}_round{round_}_member{member}"

    def _pseudo(self, k: int, seed: int, round_: int) -> dict[str, Any]:
        """Labels the pool of ``k`` with the ensemble of round ``round_ - 1``; returns the
        summary with the folder."""
        c = self.config
        folder = self.out / "pseudo" / f"k{k}_seed{seed}_round{round_}"
        members = [str(self.runs / f"{self._member(k, seed, round_ - 1, m)}.ckpt")
                   for m in range(c.members)]  # fmt: skip
        summary = pseudo_label(members, unlabelled_pool(k), f"digits train without {k} per class",
                               folder, c.agree, c.min_confidence, progress=False)  # fmt: skip
        return {**summary, "folder": str(folder)}

    def _ensemble_accuracy(self, k: int, seed: int, round_: int) -> float:
        c = self.config
        images, labels = natural_images("test", replace(c.classifier, image_size=c.image_size))
        probs = 0
        with torch.no_grad():
            for m in range(c.members):
                path = self.runs / f"{self._member(k, seed, round_, m)}.ckpt"
                probs = probs + torch.softmax(
                    load_module(path, ["classifier"])(images)["logits"], 1
                )
        return float((probs.argmax(1) == labels).float().mean())

    def run(self) -> dict[str, Any]:
        c = self.config
        rendered = self.out / "rendered"
        self.recorder.gl = render_scene(scenes_dir() / "digits_sim2real.yaml", rendered,
                                        c.rendered, c.image_size)  # fmt: skip
        cells = [(k, seed) for k in c.ks for seed in c.seeds]
        total = len(cells) * (2 + c.members * (c.rounds + 1))
        self.bar = tqdm(total=total, desc="semisupervised", unit="run")
        extra = {"kind": "rendered", "path": str(rendered), "name": "rendered"}
        units = [self._unit(f"k{k}_seed{seed}_only", [natural(k)], seed) for k, seed in cells]
        units += [self._unit(f"k{k}_seed{seed}_rendered", [natural(k), extra], seed)
                  for k, seed in cells]  # fmt: skip
        units += [self._unit(self._member(k, seed, 0, m), [natural(k)], 100 * seed + m)
                  for k, seed in cells for m in range(c.members)]  # fmt: skip
        done = self.executor.run(units, self.tick)
        pseudo: dict[tuple[int, int, int], dict[str, Any]] = {}
        for round_ in range(1, c.rounds + 1):
            units = []
            for k, seed in cells:
                pseudo[k, seed, round_] = self._pseudo(k, seed, round_)
                source = {"kind": "pseudo", "path": pseudo[k, seed, round_]["folder"],
                          "name": "pseudo"}  # fmt: skip
                units += [self._unit(self._member(k, seed, round_, m), [natural(k), source],
                                     100 * seed + m) for m in range(c.members)]  # fmt: skip
            done |= self.executor.run(units, self.tick)
        self.bar.close()
        summary = self._summary(done, pseudo, cells)
        self._write(summary)
        return summary

    def _summary(self, done: dict, pseudo: dict, cells: list[tuple[int, int]]) -> dict[str, Any]:
        c = self.config
        values: dict[str, dict[str, list[float]]] = {"k only": {}, "k + rendered": {}}
        rounds: dict[str, list[dict[str, Any]]] = {}
        for k, seed in cells:
            values["k only"].setdefault(str(k), []).append(
                done[f"k{k}_seed{seed}_only"]["accuracy"]
            )
            values["k + rendered"].setdefault(str(k), []).append(
                done[f"k{k}_seed{seed}_rendered"]["accuracy"]
            )
        for k in c.ks:
            per_round = []
            for round_ in range(c.rounds + 1):
                members = [
                    float(np.mean([done[self._member(k, s, round_, m)]["accuracy"]
                                   for m in range(c.members)]))
                    for s in c.seeds
                ]  # fmt: skip
                row = {
                    "round": round_,
                    "member_accuracy": stats.summary(members),
                    "ensemble_accuracy": stats.summary(
                        [self._ensemble_accuracy(k, s, round_) for s in c.seeds]
                    ),
                }
                if round_ > 0:
                    made = [pseudo[k, s, round_] for s in c.seeds]
                    row["pseudo_label_accuracy"] = stats.summary([p["accuracy_kept"] for p in made])
                    row["kept"] = stats.summary([p["kept"] for p in made])
                    row["pool"] = made[0]["items"]
                per_round.append(row)
                values.setdefault(f"round {round_} (members)", {})[str(k)] = members
            rounds[str(k)] = per_round
        last = f"round {c.rounds} (members)"
        differences = {
            str(k): {
                f"{arm} - k only": stats.paired_difference(values[arm][str(k)],
                                                           values["k only"][str(k)])
                for arm in ("k + rendered", last)
            }
            for k in c.ks
        }  # fmt: skip
        k1 = str(min(c.ks))
        target = {
            "name": f"{last} - k only >= +{100 * TARGET_POINTS:.0f} points at k = {k1}",
            "difference": True,
            **stats.decide(differences[k1][f"{last} - k only"]["values"], TARGET_POINTS),
        }
        return {
            "config": asdict(c),
            "arms": {
                arm: {k: stats.summary(v) for k, v in per_k.items()}
                for arm, per_k in values.items()
            },  # fmt: skip
            "rounds": rounds,
            "differences": differences,
            "targets": [target],
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
            "provenance": self.recorder.block(resumed=self.resumed),
        }

    def _write(self, summary: dict[str, Any]) -> None:
        self.save(summary, tables, _plot)


def tables(summary: dict[str, Any]) -> str:
    """The study's tables in Markdown (``results.md`` and the README)."""
    arms, ks = summary["arms"], [str(k) for k in summary["config"]["ks"]]
    n = len(arms["k only"][ks[0]]["values"])
    lines = [
        f"Natural test accuracy (%, mean ± sample std over n = {n} seeds; members: the mean of "
        f"the {summary['config']['members']} members' accuracies).",
        "",
        *stats.table_by_k(list(arms), ks, lambda k, arm: stats.pct(arms[arm][k]["values"])),
        "",
        "Paired differences from k only over the seeds (percentage points, mean [95% Student t "
        "interval]):",
        "",
    ]
    diffs = summary["differences"]
    lines += stats.table_by_k(list(diffs[ks[0]]), ks, lambda k, arm: stats.points(diffs[k][arm]))
    lines += ["", "Per round: pseudo-labels kept from the pool and their accuracy (known here), "
              "the members' mean and the ensemble's test accuracy (%, means over seeds).", "",
              "| k | round | kept / pool | pseudo-label accuracy | members | ensemble |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for k in ks:
        for row in summary["rounds"][k]:
            kept = f"{row['kept']['mean']:.0f} / {row['pool']}" if "kept" in row else "labels only"
            made = (f"{100 * row['pseudo_label_accuracy']['mean']:.1f}"
                    if "pseudo_label_accuracy" in row else "")  # fmt: skip
            lines.append(
                f"| {k} | {row['round']} | {kept} | {made} | "
                f"{100 * row['member_accuracy']['mean']:.1f} | "
                f"{100 * row['ensemble_accuracy']['mean']:.1f} |"
            )
    lines += ["", *stats.target_table(summary["targets"])]
    return "\n".join(lines) + "\n"


def _plot(summary: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for k, rows in summary["rounds"].items():
        x = [r["round"] for r in rows]
        line = ax.plot(x, [100 * r["member_accuracy"]["mean"] for r in rows], "o-",
                       label=f"k = {k}: members")[0]  # fmt: skip
        ax.plot(x, [100 * r["ensemble_accuracy"]["mean"] for r in rows],
                "s--", color=line.get_color(), label=f"k = {k}: ensemble")  # fmt: skip
        ax.axhline(100 * summary["arms"]["k only"][k]["mean"], color=line.get_color(), ls=":",
                   label=f"k = {k}: k only")  # fmt: skip
    ax.set_xlabel("pseudo-label round (0: labels only)")
    ax.set_ylabel("natural test accuracy (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment semisupervised``); prints its tables.
    ``spread`` takes ``workers``, ``threads`` and ``ray_address`` (see :func:`run_study`)."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)
