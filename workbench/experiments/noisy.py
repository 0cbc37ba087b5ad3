"""``workbench experiment noisy``: what helps when labels are wrong, measured honestly.

Protocol (natural digits, grey 16 px, the same network, budget and draws for every classifier):

* noise settings on the natural training split: none, 20% and 40% symmetric, 20% asymmetric
  (the usual digit confusions); the flips of seed s use seed s (``noise:`` on the source);
* arms per setting and seed:

  - ``plain``: trained on the noisy labels;
  - ``cleaned``: ``workbench clean`` (5-fold cross-fitting with the same recipe, confident
    learning) flags suspects, then the classifier retrains without them (``exclude:``);
  - ``self-paced``: the loss-scored curriculum (easy first, the pool from 30% to all by 70% of
    training), which puts high-loss items, often the mislabelled ones, last;
  - ``teacher``: the curriculum scored by a teacher trained on the same noisy labels (the
    ``plain`` arm's model);
  - ``+ rendered``: the noisy natural labels and rendered digits, whose labels cannot be wrong,
    drawn 1:1;

* natural test accuracy over 3 seeds (mean, sample std, n); each arm minus ``plain`` as paired
  differences over seeds with a 95% Student t interval; cleaning's precision and recall against
  the known flips, and its precision at the true noise rate;
* targets: at 40% symmetric noise cleaning recovers at least half of the accuracy the noise cost
  (per seed: (cleaned - plain) / (no noise - plain) >= 0.5, decided on the interval); cleaning's
  precision at the true rate at least 0.8; for each curriculum and setting, whether it beats
  ``plain`` (decided on the interval).

Every run is a unit of :mod:`workbench.execution` (saved as it ends; ``--workers`` spreads them
over Ray), in two stages: first plain, self-paced, + rendered and the cleaning runs; then the
arms that need them (cleaned, teacher). Results carry a ``provenance`` block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from matplotlib.figure import Figure
from tqdm import tqdm

from workbench.execution import Unit
from workbench.experiments import stats
from workbench.experiments.common import (
    StudyBase,
    grouped_bars,
    render_scene,
    run_study,
    slug,
)
from workbench.resources import scenes_dir
from workbench.training.cleaning.run import CleanOptions, clean
from workbench.training.recipe import (
    TrainBudget,
    accuracy,
    natural,
    natural_images,
    recipe_config,
    train_classifier,
)

SETTINGS = {
    "no noise": None,
    "20% symmetric": {"kind": "symmetric", "rate": 0.2},
    "40% symmetric": {"kind": "symmetric", "rate": 0.4},
    "20% asymmetric": {"kind": "asymmetric", "rate": 0.2},
}
ARMS = ("plain", "cleaned", "self-paced", "teacher", "+ rendered")
CURRICULUM = {"pacing": "linear", "start": 0.3, "full_at": 0.7}
RECOVERY_TARGET, PRECISION_TARGET = 0.5, 0.8


@dataclass
class StudyConfig:
    """Budget of the study; ``quick`` is the reduced machinery check used by the tests."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    settings: list[str] = field(default_factory=lambda: list(SETTINGS))
    folds: int = 5
    rendered: int = 2000
    image_size: int = 16
    classifier: TrainBudget = field(default_factory=lambda: TrainBudget(epochs=6, epoch_size=1536))

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            seeds=[0],
            settings=["no noise", "40% symmetric"],
            folds=2,
            rendered=40,
            classifier=TrainBudget(width=8, epochs=2, epoch_size=256, batch_size=32),
        )

    @property
    def budget(self) -> TrainBudget:
        """The classifier recipe at the study's image size."""
        return replace(self.classifier, image_size=self.image_size)


def noisy_natural(setting: str, seed: int, exclude: str | None = None) -> dict[str, Any]:
    """The natural digits with the setting's noise (flips seeded by ``seed``)."""
    source = natural()
    if SETTINGS[setting] is not None:
        source["noise"] = {**SETTINGS[setting], "seed": seed}
    if exclude is not None:
        source["exclude"] = exclude
    return source


def fit_arm(config: StudyConfig, sources: list[dict], seed: int, curriculum: dict | None = None,
            save: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One unit: trains the recipe (on a curriculum when given), returns its natural test
    accuracy and saves it to ``save`` when given."""
    model = train_classifier(sources, config.budget, seed, curriculum)
    if save is not None:
        model.trainer.save_checkpoint(save)
    return accuracy(model, *natural_images("test", config.budget))


def clean_setting(config: StudyConfig, setting: str, seed: int, out: str) -> dict[str, Any]:
    """One unit: ``workbench clean`` of the setting's noisy labels with the study's recipe as a
    config (one thread, folds one after another); returns its report."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(recipe_config([noisy_natural(setting, seed)], config.budget,
                                                 seed)))  # fmt: skip
    options = CleanOptions(configs=[str(path)], out=str(folder / "clean"), folds=config.folds,
                           seed=seed, threads=torch.get_num_threads())  # fmt: skip
    return clean(options)


class Study(StudyBase):
    """Runs the study into ``out``; see the module docstring and :class:`StudyBase`."""

    def _key(self, arm: str, setting: str, seed: int) -> str:
        return f"{slug(arm)}_{slug(setting)}_seed{seed}"

    def _arm(self, arm: str, setting: str, seed: int, **options: Any) -> Unit:
        return Unit(self._key(arm, setting, seed), fit_arm,
                    dict(config=self.config, seed=seed, **options))  # fmt: skip

    def _first_stage(self) -> list[Unit]:
        units = []
        rendered = {"kind": "rendered", "path": str(self.out / "rendered"), "name": "rendered"}
        for setting in self.config.settings:
            for seed in self.config.seeds:
                noisy = noisy_natural(setting, seed)
                plain = str(self.runs / f"{self._key('plain', setting, seed)}.ckpt")
                units += [
                    self._arm("plain", setting, seed, sources=[noisy], save=plain),
                    self._arm("self-paced", setting, seed, sources=[noisy],
                              curriculum={"scorer": "loss", **CURRICULUM}),
                    self._arm("+ rendered", setting, seed, sources=[noisy, rendered]),
                    Unit(f"clean_{slug(setting)}_seed{seed}", clean_setting,
                         dict(config=self.config, setting=setting, seed=seed,
                              out=str(self.out / "cleaning" / f"{slug(setting)}_seed{seed}"))),
                ]  # fmt: skip
        return units

    def _second_stage(self) -> list[Unit]:
        units = []
        for setting in self.config.settings:
            for seed in self.config.seeds:
                folder = self.out / "cleaning" / f"{slug(setting)}_seed{seed}" / "clean"
                teacher = str(self.runs / f"{self._key('plain', setting, seed)}.ckpt")
                units += [
                    self._arm("cleaned", setting, seed, sources=[
                        noisy_natural(setting, seed, str(folder / "exclude.json"))]),
                    self._arm("teacher", setting, seed, sources=[noisy_natural(setting, seed)],
                              curriculum={"scorer": "teacher", "teacher_checkpoint": teacher,
                                          **CURRICULUM}),
                ]  # fmt: skip
        return units

    def run(self) -> dict[str, Any]:
        c = self.config
        scene = scenes_dir() / "digits_sim2real.yaml"
        self.recorder.gl = render_scene(scene, self.out / "rendered", c.rendered, c.image_size)
        first, second = self._first_stage(), self._second_stage()
        self.bar = tqdm(total=len(first) + len(second), desc="noisy", unit="run")
        done = self.executor.run(first, self.tick)
        done |= self.executor.run(second, self.tick)
        self.bar.close()
        summary = self._summary(done)
        self.save(summary, tables, _plot)
        return summary

    def _summary(self, done: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        values = {arm: {s: [done[self._key(arm, s, seed)]["accuracy"] for seed in c.seeds]
                        for s in c.settings} for arm in ARMS}  # fmt: skip
        detection = {
            s: {m: [done[f"clean_{slug(s)}_seed{seed}"]["noise"]["detection"][m]
                    for seed in c.seeds]
                for m in ("precision", "recall", "precision_at_noise_rate")}
            for s in c.settings if SETTINGS[s] is not None
        }  # fmt: skip
        differences = {
            s: {f"{arm} - plain": stats.paired_difference(values[arm][s], values["plain"][s])
                for arm in ARMS[1:]}
            for s in c.settings
        }  # fmt: skip
        summary = {
            "config": asdict(c),
            "arms": {arm: {s: stats.summary(v) for s, v in per.items()}
                     for arm, per in values.items()},  # fmt: skip
            "differences": differences,
            "cleaning": {s: {m: stats.summary(v) for m, v in per.items()}
                         for s, per in detection.items()},  # fmt: skip
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
        }
        summary["targets"] = targets(summary)
        summary["provenance"] = self.recorder.block(resumed=self.resumed)
        return summary


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's targets, decided on the per-seed values (see :func:`stats.decide`)."""
    arms, found = summary["arms"], []
    settings = list(arms["plain"])
    if "no noise" in settings and "40% symmetric" in settings:
        clean_ = arms["plain"]["no noise"]["values"]
        noisy = arms["plain"]["40% symmetric"]["values"]
        cleaned = arms["cleaned"]["40% symmetric"]["values"]
        recovered = [(c - n) / (a - n) if a != n else float("nan")
                     for c, n, a in zip(cleaned, noisy, clean_, strict=True)]  # fmt: skip
        found.append({"name": f"cleaning recovers >= {100 * RECOVERY_TARGET:.0f}% of the accuracy "
                              "40% symmetric noise cost",
                      "difference": False, **stats.decide(recovered, RECOVERY_TARGET)})  # fmt: skip
    for setting, metrics in summary["cleaning"].items():
        found.append({"name": f"cleaning precision at the true noise rate >= "
                              f"{100 * PRECISION_TARGET:.0f}%, {setting}", "difference": False,
                      **stats.decide(metrics["precision_at_noise_rate"]["values"],
                                     PRECISION_TARGET)})  # fmt: skip
    for setting, diffs in summary["differences"].items():
        for arm in ("self-paced", "teacher"):
            found.append({"name": f"{arm} beats plain, {setting}", "difference": True,
                          **stats.decide(diffs[f"{arm} - plain"]["values"], 0.0, ">")})  # fmt: skip
    return found


def tables(summary: dict[str, Any]) -> str:
    """The study's tables in Markdown (``results.md`` and the README)."""
    arms = summary["arms"]
    settings = list(arms["plain"])
    n = len(arms["plain"][settings[0]]["values"])
    lines = [
        f"Natural test accuracy (%, mean ± sample std over n = {n} seeds) by label noise on the "
        "natural training split.",
        "",
        "| noise | " + " | ".join(ARMS) + " |",
        "|---|" + "---|" * len(ARMS),
        *(f"| {s} | " + " | ".join(stats.pct(arms[a][s]["values"]) for a in ARMS) + " |"
          for s in settings),
        "",
        "Paired differences from plain over the seeds (percentage points, mean [95% Student t "
        "interval]):",
        "",
        "| noise | " + " | ".join(f"{a} - plain" for a in ARMS[1:]) + " |",
        "|---|" + "---|" * (len(ARMS) - 1),
        *(f"| {s} | " + " | ".join(stats.points(summary["differences"][s][f"{a} - plain"])
                                   for a in ARMS[1:]) + " |" for s in settings),
        "",
        "Cleaning (confident learning) against the known flips (mean over seeds):",
        "",
        "| noise | precision | recall | precision at the true noise rate |",
        "|---|---|---|---|",
        *(f"| {s} | {m['precision']['mean']:.2f} | {m['recall']['mean']:.2f} | "
          f"{m['precision_at_noise_rate']['mean']:.2f} |"
          for s, m in summary["cleaning"].items()),
        "",
        *stats.target_table(summary["targets"]),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _plot(summary: dict[str, Any], path: Path) -> None:
    arms = summary["arms"]
    settings = list(arms["plain"])
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    grouped_bars(ax, settings, {arm: arms[arm] for arm in ARMS})
    ax.set_xticks(range(len(settings)), settings)
    low = min(100 * arms[a][s]["mean"] for a in ARMS for s in settings)
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.set_ylabel("natural test accuracy (%)")
    ax.set_title("label noise on the natural training split", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment noisy``); prints its tables.
    ``spread`` takes ``workers``, ``threads`` and ``ray_address`` (see :func:`run_study`)."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)
