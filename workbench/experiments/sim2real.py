"""``workbench experiment sim2real``: what rendered digits and curricula buy on real digits.

Protocol (all runs the same model, input size and number of training draws):

* render ``scenes/digits_sim2real.yaml`` once (resumable);
* zero-shot: train on rendered digits only, test on the natural test split; these runs are
  also the pre-training of the fine-tuning arm (one per seed);
* for k natural labels per class (k in 1, 3, 10, all): natural only; mixed (natural and
  rendered draws 1:1); pre-train on rendered then fine-tune on natural; and mixed with the
  best curriculum, chosen on the natural *validation* split at k = 10, seed 0 among a few
  candidates (never on the test split);
* every arm over several seeds: mean, sample standard deviation and n of natural test accuracy;
  paired differences between arms over seeds with a 95% Student t interval; the targets decided
  on those intervals (:mod:`workbench.experiments.stats`).

Every run's result is written as soon as it ends, so an interrupted study resumes. The results
carry a ``provenance`` block (:mod:`workbench.experiments.provenance`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from matplotlib.figure import Figure
from tqdm import tqdm

from workbench.curriculum import Curriculum, CurriculumDataModule
from workbench.data.augment import DIGITS_AUGMENT
from workbench.data.datamodule import MixedDataModule
from workbench.execution import Executor, Unit
from workbench.experiments import stats
from workbench.experiments.common import StudyBase, render_scene, run_study, slug
from workbench.resources import scenes_dir
from workbench.training.callbacks import EpochSeed
from workbench.training.classifier import Classifier

ALL = "all"
CURRICULA = {
    "domain, linear": {"scorer": "domain", "pacing": "linear", "start": 0.3, "full_at": 0.7},
    "domain, root": {"scorer": "domain", "pacing": "root", "start": 0.3, "full_at": 0.7},
    "scene difficulty, linear": {
        "scorer": "difficulty",
        "pacing": "linear",
        "start": 0.3,
        "full_at": 0.7,
    },
    "self-paced loss, linear": {"scorer": "loss", "pacing": "linear", "start": 0.3, "full_at": 0.7},
}
ARMS = ("natural only", "mixed", "pretrain + fine-tune", "mixed + curriculum")
COMPARISONS = (
    ("mixed", "natural only"),
    ("pretrain + fine-tune", "natural only"),
    ("mixed + curriculum", "natural only"),
    ("mixed + curriculum", "mixed"),
)
ZERO_SHOT_TARGET, MIXED_K1_TARGET = 0.85, 0.90


@dataclass
class StudyConfig:
    """Budget of the study; ``quick`` is the reduced machinery check used by the tests."""

    rendered: int = 5000
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ks: list[int | str] = field(default_factory=lambda: [1, 3, 10, ALL])
    epochs: int = 12
    pretrain_epochs: int = 25
    epoch_size: int = 2048
    image_size: int = 16
    batch_size: int = 64
    width: int = 32
    curricula: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(CURRICULA))

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            rendered=120,
            seeds=[0],
            ks=[1, ALL],
            epochs=1,
            pretrain_epochs=1,
            epoch_size=128,
            image_size=8,
            batch_size=32,
            width=8,
            curricula={"domain, linear": CURRICULA["domain, linear"]},
        )


def fit_run(
    config: dict[str, Any],
    sources: list[dict],
    seed: int,
    epochs: int,
    curriculum: dict | None = None,
    init_checkpoint: str | None = None,
    save: str | None = None,
) -> dict[str, float]:
    """One run of the study (a unit of :mod:`workbench.execution`): trains the study's
    classifier on ``sources`` and returns its natural validation and test accuracy.

    Args:
        config: the study's budget (:class:`StudyConfig` as a dict).
        sources: the data sources of the mix.
        seed: seeds the run (and every epoch).
        epochs: training epochs.
        curriculum: the curriculum's options, or None to mix without one.
        init_checkpoint: weights to start from (fine-tuning).
        save: where to save the final weights, if anywhere.
    """
    c = StudyConfig(**config)
    pl.seed_everything(seed, verbose=False)
    options = dict(
        sources=sources,
        image_size=c.image_size,
        channels=1,
        batch_size=c.batch_size,
        epoch_size=c.epoch_size,
        augment=DIGITS_AUGMENT,
        seed=seed,
    )
    if curriculum is None:
        data = MixedDataModule(**options)
    else:
        data = CurriculumDataModule(curriculum=curriculum, **options)
    model = Classifier(
        num_classes=10,
        in_channels=1,
        image_size=c.image_size,
        source_names=data.source_names,
        class_names=data.classes,
        backbone="resnet",
        backbone_options={"width": c.width, "depth": 3},
        lr=3e-3,
        label_smoothing=0.1,
        init_checkpoint=init_checkpoint,
    )
    callbacks = [EpochSeed(), *([Curriculum()] if curriculum is not None else [])]
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(model, data)
    val = trainer.validate(model, data, verbose=False)[0]
    test = trainer.test(model, data, verbose=False)[0]
    if save is not None:
        trainer.save_checkpoint(save)
    return {"val": float(val["val/acc/natural"]), "test": float(test["test/acc/natural"])}


class Study(StudyBase):
    """Runs the arms of the study into ``out``; see the module docstring.

    Args:
        out: the study's folder.
        config: its budget.
        executor: how its runs are spread (serial by default); finished runs are saved in
            ``out/runs`` whatever it says.
    """

    def __init__(self, out: str | Path, config: StudyConfig, executor: Executor | None = None):
        super().__init__(out, config, executor)
        self.rendered_dir = self.out / "rendered"

    def render(self) -> None:
        self.recorder.gl = render_scene(
            scenes_dir() / "digits_sim2real.yaml", self.rendered_dir, self.config.rendered
        )

    def _sources(
        self, k: int | str | None, rendered: bool, natural_train: bool = True
    ) -> list[dict]:
        natural = {
            "kind": "digits",
            "name": "natural",
            "weights": {"train": 1.0 if natural_train else 0.0, "val": 1.0, "test": 1.0},
        }
        if k not in (None, ALL):
            natural["per_class"] = int(k)
        sources = [natural]
        if rendered:
            sources.append(
                {
                    "kind": "rendered",
                    "path": str(self.rendered_dir),
                    "name": "rendered",
                    "weights": {"train": 1.0, "val": 0.0, "test": 0.0},
                }
            )
        return sources

    def _unit(self, name: str, sources: list[dict], seed: int, epochs: int, **options) -> Unit:
        config = asdict(self.config)
        return Unit(name, fit_run, dict(config=config, sources=sources, seed=seed, epochs=epochs,
                                        **options))  # fmt: skip

    def _checkpoint(self, seed: int) -> str:
        return str(self.out / "runs" / f"pretrain_seed{seed}.ckpt")

    def _first_stage(self) -> list[Unit]:
        """The rendered-only runs (zero-shot arm and pre-training, one per seed) and the
        curriculum candidates at k = 10, seed 0: none needs another's result."""
        c = self.config
        units = [
            self._unit(
                f"zero_shot_seed{seed}",
                self._sources(None, True, natural_train=False),
                seed,
                c.pretrain_epochs,
                save=self._checkpoint(seed),
            )  # fmt: skip
            for seed in c.seeds
        ]
        k = self._choice_k()
        units += [
            self._unit(
                f"choose_{slug(name)}_k{k}",
                self._sources(k, True),
                0,
                c.epochs,
                curriculum=curriculum,
            )  # fmt: skip
            for name, curriculum in c.curricula.items()
        ]
        return units

    def _choice_k(self) -> int | str:
        return 10 if 10 in self.config.ks else self.config.ks[0]

    def choose_curriculum(self, results: dict[str, dict]) -> str:
        """The candidate with the best natural validation accuracy at k = 10, seed 0."""
        k = self._choice_k()
        scores = {
            name: results[f"choose_{slug(name)}_k{k}"]["val"] for name in self.config.curricula
        }
        choice = {"k": k, "seed": 0, "val_acc": scores, "provenance": self._provenance()}
        (self.out / "curriculum_choice.json").write_text(json.dumps(choice, indent=1))
        return max(scores, key=scores.get)

    def _arm(self, arm: str, k: int | str, seed: int, curriculum: str) -> Unit:
        """The run of one arm of the study at ``k`` labels per class and ``seed``."""
        c, tag = self.config, f"k{k}_seed{seed}"
        if arm == "natural only":
            return self._unit(f"natural_{tag}", self._sources(k, False), seed, c.epochs)
        if arm == "mixed":
            return self._unit(f"mixed_{tag}", self._sources(k, True), seed, c.epochs)
        if arm == "pretrain + fine-tune":
            return self._unit(f"finetune_{tag}", self._sources(k, False), seed, c.epochs,
                              init_checkpoint=self._checkpoint(seed))  # fmt: skip
        return self._unit(f"curriculum_{slug(curriculum)}_{tag}", self._sources(k, True), seed,
                          c.epochs, curriculum=c.curricula[curriculum])  # fmt: skip

    def run(self) -> dict[str, Any]:
        c = self.config
        self.render()
        total = len(c.seeds) * (1 + 4 * len(c.ks)) + len(c.curricula)
        self.bar = tqdm(total=total, desc="sim2real", unit="run")
        first = self.executor.run(self._first_stage(), self.tick)
        zero_shot = [first[f"zero_shot_seed{seed}"]["test"] for seed in c.seeds]
        best = self.choose_curriculum(first)
        units = {
            (arm, str(k), seed): self._arm(arm, k, seed, best)
            for k in c.ks
            for seed in c.seeds
            for arm in ARMS
        }
        done = self.executor.run(list(units.values()), self.tick)
        self.bar.close()
        arms: dict[str, dict[str, list[float]]] = {a: {} for a in ARMS}
        for (arm, k, _), unit in units.items():
            arms[arm].setdefault(k, []).append(done[unit.key]["test"])
        summary = {
            "config": asdict(c),
            "zero_shot": stats.summary(zero_shot),
            "best_curriculum": best,
            "arms": {
                arm: {k: stats.summary(v) for k, v in per_k.items()} for arm, per_k in arms.items()
            },
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
        }
        summary["differences"] = differences(summary)
        summary["targets"] = targets(summary)
        summary["provenance"] = self._provenance()
        self._write(summary)
        return summary

    def _provenance(self) -> dict[str, Any]:
        return self.recorder.block(resumed=self.resumed)

    def _write(self, summary: dict[str, Any]) -> None:
        self.save(summary, tables)
        ks = [str(k) for k in self.config.ks]
        zs = summary["zero_shot"]
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        positions = range(len(ks))
        for arm, per_k in summary["arms"].items():
            ax.errorbar(
                positions,
                [100 * per_k[k]["mean"] for k in ks],
                yerr=[100 * (per_k[k]["std"] or 0.0) for k in ks],
                marker="o",
                capsize=3,
                label=arm,
            )
        ax.axhline(100 * zs["mean"], color="grey", ls="--", label="zero-shot (rendered only)")
        ax.set_xticks(list(positions), ks)
        ax.set_xlabel("natural labels per class")
        ax.set_ylabel("natural test accuracy (%)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(self.out / "results.png", dpi=120)


def differences(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per k, the paired differences (over seeds) of the :data:`COMPARISONS` of arms."""
    arms = summary["arms"]
    return {
        k: {
            f"{a} - {b}": stats.paired_difference(arms[a][k]["values"], arms[b][k]["values"])
            for a, b in COMPARISONS
        }
        for k in arms[ARMS[0]]
    }


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's targets, each decided on the per-seed values (see :func:`stats.decide`):
    zero-shot at least 85%, mixed at k = 1 at least 90%, and mixed with the curriculum at
    least as good as natural only at every k (paired over seeds)."""
    arms = summary["arms"]
    out = [
        {
            "name": f"zero-shot (rendered only) >= {100 * ZERO_SHOT_TARGET:.0f}%",
            "difference": False,
            **stats.decide(summary["zero_shot"]["values"], ZERO_SHOT_TARGET),
        }
    ]
    if "1" in arms["mixed"]:
        out.append(
            {
                "name": f"mixed at k = 1 >= {100 * MIXED_K1_TARGET:.0f}%",
                "difference": False,
                **stats.decide(arms["mixed"]["1"]["values"], MIXED_K1_TARGET),
            }
        )
    for k, per_arm in differences(summary).items():
        out.append(
            {
                "name": f"mixed + curriculum - natural only >= 0 at k = {k}",
                "difference": True,
                **stats.decide(per_arm["mixed + curriculum - natural only"]["values"], 0.0),
            }
        )
    return out


def tables(summary: dict[str, Any]) -> str:
    """The study's tables in Markdown (``results.md`` and the README), computed from the
    per-seed values of ``summary``."""
    arms, zero_shot = summary["arms"], summary["zero_shot"]["values"]
    ks = list(arms[ARMS[0]])
    n = len(zero_shot)
    lines = [
        (
            f"Natural test accuracy (%, mean ± sample std over n = {n} seeds); zero-shot "
            f"(rendered only): **{stats.pct(zero_shot)}**; curriculum: "
            f"{summary['best_curriculum']} (chosen on validation)."
        ),
        "",
        *stats.table_by_k(list(arms), ks, lambda k, arm: stats.pct(arms[arm][k]["values"])),
    ]
    diffs = differences(summary)
    labels = list(diffs[ks[0]])
    lines += [
        "",
        (
            f"Paired differences over the n = {n} seeds (percentage points, mean [95% Student t "
            "interval]):"
        ),
        "",
        *stats.table_by_k(labels, ks, lambda k, label: stats.points(diffs[k][label])),
    ]
    return "\n".join(lines + ["", *stats.target_table(targets(summary))]) + "\n"


def choice_line(choice: dict[str, Any]) -> str:
    """One sentence with the curriculum candidates' validation accuracies, best first."""
    ranked = sorted(choice["val_acc"].items(), key=lambda item: -item[1])
    return (
        f"Curriculum candidates, natural validation accuracy (%) at k = {choice['k']}, seed 0: "
        + "; ".join(f"{name} {100 * acc:.1f}" for name, acc in ranked)
        + "."
    )


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment sim2real``); prints its tables.
    ``spread`` takes ``workers``, ``threads`` and ``ray_address`` (see :func:`run_study`)."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)
