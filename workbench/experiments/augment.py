"""``workbench experiment augment``: what learned generators add to a few natural labels.

Protocol (all classifiers the same network, input and number of training draws; grey 16 px):

* render ``scenes/digits_sim2real.yaml`` once at the study's image size (resumable);
* at k natural labels per class (k in 1, 10), the classifier and every generator see only those
  k labelled natural training images per class, plus the rendered digits (labelled for free):

  - natural only;
  - + rendered: natural and raw rendered draws 1:1;
  - + refined: natural and refined rendered draws 1:1; the refiner (SimGAN-style) learns from
    rendered images and *unlabelled* natural training images (its discriminator needs no
    labels), so it is trained once per seed, not per k;
  - + VAE / + GAN: natural and generated draws 1:1; the conditional VAE and GAN are trained on
    the k-shot natural images and the rendered digits with the class as condition (half the
    draws each), so they learn natural-looking variation from few shots plus rendered shapes,
    and their samples are written once as datasets (``workbench sample``);

* Classification Accuracy Score: a VAE and a GAN trained on *all* natural training labels;
  a classifier trained only on their samples, tested on the natural test split, overall and per
  class, against the same classifier trained on the real images;
* sample quality of every augmenter set against the natural test split: FID, KID, precision and
  recall in the feature space of that real-data classifier; the VAEs' ELBO on the natural test
  split (nats per image);
* every arm over several seeds: mean, sample standard deviation and n of natural test accuracy;
  paired differences from natural only over seeds with a 95% Student t interval; the targets
  decided on those intervals (:mod:`workbench.experiments.stats`);
* grids of the first seed's generators (``samples_<kind>_k<k>.png``) and of rendered digits
  above their refined versions (``refined.png``).

Every model and result is written as soon as it is made, so an interrupted study resumes. The
results carry a ``provenance`` block (:mod:`workbench.experiments.provenance`).
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from workbench.checkpoint import KINDS, load_module
from workbench.data.datamodule import MixedDataModule
from workbench.data.reader import open_dataset
from workbench.data.transforms import harmonise
from workbench.execution import Executor, Unit
from workbench.experiments import stats
from workbench.experiments.common import StudyBase, render_scene, run_study, slug
from workbench.generative.grid import grid_figure, save_sample_grid
from workbench.generative.metrics import ClassifierFeatures, sample_quality
from workbench.generative.refine_dataset import refine_dataset
from workbench.generative.sampling import write_samples
from workbench.generative.source import SampledSource
from workbench.resources import scenes_dir
from workbench.training.recipe import (
    TrainBudget,
    accuracy,
    natural,
    natural_images,
    train_classifier,
)

ARMS = ("natural only", "+ rendered", "+ refined", "+ VAE", "+ GAN")
GENERATORS = ("vae", "gan")
CAS_RATIO_TARGET = 0.8


@dataclass
class StudyConfig:
    """Budget of the study; ``quick`` is the reduced machinery check used by the tests."""

    rendered: int = 2000
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    ks: list[int] = field(default_factory=lambda: [1, 10])
    image_size: int = 16
    samples: int = 2000
    classifier: TrainBudget = field(default_factory=lambda: TrainBudget(epochs=6, epoch_size=1536))
    generator_epoch_size: int = 2048
    epochs: dict[str, int] = field(default_factory=lambda: {"vae": 15, "gan": 20, "refiner": 6})
    options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "vae": {"latent_dim": 16, "width": 32},
            "gan": {"latent_dim": 32, "width": 32},
            "refiner": {},
        }
    )

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            rendered=40,
            seeds=[0],
            ks=[1],
            samples=40,
            classifier=TrainBudget(width=4, epochs=1, epoch_size=64, batch_size=32),
            generator_epoch_size=64,
            epochs={"vae": 1, "gan": 1, "refiner": 1},
            options={
                "vae": {"latent_dim": 4, "width": 4},
                "gan": {"latent_dim": 4, "width": 4},
                "refiner": {"width": 4},
            },
        )


class Workspace:
    """The study's files and the work that makes each; every piece of work is one unit of
    :mod:`workbench.execution` (see :func:`work`), so it runs here or in a Ray worker alike."""

    def __init__(self, out: str | Path, config: StudyConfig):
        self.out, self.config = Path(out), config
        self.rendered_dir = self.out / "rendered"
        self.runs = self.out / "runs"

    @property
    def budget(self) -> TrainBudget:
        """The classifier's recipe at the study's image size."""
        return replace(self.config.classifier, image_size=self.config.image_size)

    @cached_property
    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The natural test images and labels at the study's input."""
        return natural_images("test", self.budget)

    def _rendered(self, path: str | Path | None = None, name: str = "rendered") -> dict[str, Any]:
        return {"kind": "rendered", "path": str(path or self.rendered_dir), "name": name}

    def _generator_sources(self, k: int | None) -> list[dict[str, Any]]:
        """The k-shot natural labels plus the rendered digits (``k=None``: all natural labels,
        nothing rendered)."""
        if k is None:
            return [natural()]
        return [natural(k), self._rendered()]

    def checkpoint(self, name: str) -> Path:
        """Where the model ``name`` (``vae_k1_seed0``, ``real_seed0``, ...) is saved."""
        return self.runs / f"{name}.ckpt"

    def fit_module(
        self,
        kind: str,
        name: str,
        sources: list[dict],
        seed: int,
        options: dict[str, Any] | None = None,
        epochs: int | None = None,
    ) -> Path:
        """Trains (or finds) a generative module of ``kind`` with the study's options for that
        kind updated by ``options`` and for ``epochs`` (default: the study's); returns its
        checkpoint."""
        path = self.checkpoint(name)
        if path.is_file():
            return path
        c = self.config
        pl.seed_everything(seed, verbose=False)
        data = MixedDataModule(
            sources,
            image_size=c.image_size,
            channels=1,
            batch_size=64,
            epoch_size=c.generator_epoch_size,
            val_fraction=0.0,
            seed=seed,
        )
        module_name, _, class_name = KINDS[kind].rpartition(".")
        cls = getattr(importlib.import_module(module_name), class_name)
        model = cls(
            num_classes=data.num_classes,
            in_channels=1,
            image_size=c.image_size,
            source_names=data.source_names,
            class_names=data.classes,
            **{**c.options[kind], **(options or {})},
        )
        trainer = pl.Trainer(
            max_epochs=epochs or c.epochs[kind],
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, data)
        partial = path.with_suffix(".partial")
        trainer.save_checkpoint(partial)
        os.replace(partial, path)
        return path

    def generator(self, kind: str, k: int | None, seed: int) -> str:
        """Trains (or finds) a VAE or GAN at ``k`` labels and writes its samples; returns the
        samples' folder."""
        tag = f"{kind}_k{'all' if k is None else k}_seed{seed}"
        checkpoint = self.fit_module(kind, tag, self._generator_sources(k), seed)
        folder = self.out / "samples" / tag
        if not _complete(folder):
            write_samples(
                load_module(checkpoint, [kind]),
                folder,
                self.config.samples,
                seed=seed,
                provenance={"kind": kind, "checkpoint": str(checkpoint)},
                progress=False,
            )
        return str(folder)

    def refined(self, seed: int) -> str:
        """Trains (or finds) the refiner of ``seed`` and writes the refined rendered digits;
        returns their folder."""
        sources = [
            self._rendered(),
            {"kind": "digits", "name": "natural", "weights": {"train": 1.0, "val": 0.0}},
        ]
        checkpoint = self.fit_module("refiner", f"refiner_seed{seed}", sources, seed)
        folder = self.out / "refined" / f"seed{seed}"
        if not _complete(folder):
            refine_dataset(
                load_module(checkpoint, ["refiner"]),
                self.rendered_dir,
                folder,
                {"checkpoint": str(checkpoint)},
                progress=False,
            )
        return str(folder)

    def classify(self, sources: list[dict], seed: int, save: str | None = None) -> dict[str, Any]:
        """Trains the study's classifier on ``sources``; returns its natural test result
        (accuracy overall and per class) and saves its weights to ``save`` when given."""
        model = train_classifier(sources, self.budget, seed)
        result = accuracy(model, *self.test_split)
        if save is not None:
            model.trainer.save_checkpoint(save)
        return result

    def arm(self, arm: str, k: int, seed: int, augmenter: str | None) -> dict[str, Any]:
        """Trains one arm at ``k`` labels and ``seed``; ``augmenter`` is the dataset mixed 1:1
        with the natural labels (None for natural only)."""
        sources = [natural(k)]
        if arm == "+ rendered" or arm == "+ refined":
            sources.append(self._rendered(augmenter, "augmenter"))
        elif augmenter is not None:
            sources.append({"kind": "generated", "path": augmenter, "name": "augmenter"})
        return self.classify(sources, seed)

    def cas(self, seed: int, samples: str) -> dict[str, Any]:
        """Classification Accuracy Score of the samples of a generator trained on all labels."""
        generated = {"kind": "generated", "path": samples, "name": "generated"}
        return self.classify([natural(train=False), generated], seed)

    def quality(self, folder: str, features: str, seed: int) -> dict[str, float]:
        """FID, KID, precision and recall of a dataset against the natural test split, in the
        features of the classifier saved at ``features``."""
        source = SampledSource(Path(folder))
        size = self.config.image_size
        fake = torch.stack([harmonise(source[i], size, 1)["image"] for i in range(len(source))])
        extractor = ClassifierFeatures(load_module(features, ["classifier"]))
        return sample_quality(extractor, self.test_split[0], fake, seed=seed)

    def elbo(self, name: str, seed: int) -> dict[str, float]:
        """Mean ELBO (nats per image) of the VAE ``name`` on the natural test split."""
        vae = load_module(self.checkpoint(name), ["vae"])
        return {"elbo": float(vae.elbo(*self.test_split, seed=seed).mean())}


def work(out: str, config: StudyConfig, step: str, **kwargs: Any) -> Any:
    """One unit of the study: ``Workspace(out, config).<step>(**kwargs)``."""
    return getattr(Workspace(out, config), step)(**kwargs)


class Study(StudyBase):
    """Runs the study into ``out``; see the module docstring.

    Args:
        out: the study's folder.
        config: its budget.
        executor: how its units are spread (serial by default); finished units are saved in
            ``out/runs`` whatever it says.
    """

    def __init__(self, out: str | Path, config: StudyConfig, executor: Executor | None = None):
        super().__init__(out, config, executor)
        self.space = Workspace(out, config)

    def render(self) -> None:
        self.recorder.gl = render_scene(
            scenes_dir() / "digits_sim2real.yaml",
            self.space.rendered_dir,
            self.config.rendered,
            self.config.image_size,
        )

    def _unit(self, key: str, step: str, **kwargs: Any) -> Unit:
        return Unit(key, work, dict(out=str(self.out), config=self.config, step=step, **kwargs))

    def _arm(self, arm: str, k: int, seed: int, augmenter: str | None) -> Unit:
        return self._unit(f"{slug(arm)}_k{k}_seed{seed}", "arm", arm=arm, k=k, seed=seed,
                          augmenter=augmenter)  # fmt: skip

    def _first_stage(self) -> list[Unit]:
        """What needs nothing but the rendered digits: per seed the real-data classifier, the
        refiner and its refined digits, every generator and its samples, and the arms that mix
        no learned augmenter."""
        c, units = self.config, []
        for seed in c.seeds:
            real = f"real_seed{seed}"
            units.append(self._unit(real, "classify", sources=[natural()], seed=seed,
                                    save=str(self.space.checkpoint(real))))  # fmt: skip
            units.append(self._unit(f"refined_seed{seed}", "refined", seed=seed))
            for kind in GENERATORS:
                for k in (None, *c.ks):
                    units.append(self._unit(_samples_key(kind, k, seed), "generator", kind=kind,
                                            k=k, seed=seed))  # fmt: skip
            for k in c.ks:
                units.append(self._arm("natural only", k, seed, None))
                units.append(self._arm("+ rendered", k, seed, str(self.space.rendered_dir)))
        return units

    def _second_stage(self, first: dict[str, Any]) -> list[Unit]:
        """What needs the first stage's models and sets: the arms with a learned augmenter,
        CAS, the VAEs' ELBO and the sample quality of every set."""
        c, units = self.config, []
        for seed in c.seeds:
            refined = first[f"refined_seed{seed}"]
            features = str(self.space.checkpoint(f"real_seed{seed}"))
            for kind in GENERATORS:
                units.append(self._unit(f"cas_{kind}_seed{seed}", "cas", seed=seed,
                                        samples=first[_samples_key(kind, None, seed)]))  # fmt: skip
            for k in c.ks:
                units.append(self._arm("+ refined", k, seed, refined))
                for kind in GENERATORS:
                    units.append(self._arm(f"+ {kind.upper()}", k, seed,
                                           first[_samples_key(kind, k, seed)]))  # fmt: skip
            for k in ("all", *c.ks):
                name = f"vae_k{k}_seed{seed}"
                units.append(self._unit(f"elbo_{name}", "elbo", name=name, seed=seed))
            for tag, folder in self._sets(seed, first).values():
                units.append(self._unit(f"quality_{tag}_seed{seed}", "quality", folder=folder,
                                        features=features, seed=seed))  # fmt: skip
        return units

    def _sets(self, seed: int, first: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """Every augmenter set of ``seed``: its label in the tables -> (tag, folder)."""
        sets = {
            "rendered": ("rendered", str(self.space.rendered_dir)),
            "refined": ("refined", first[f"refined_seed{seed}"]),
        }
        for k in (None, *self.config.ks):
            for kind in GENERATORS:
                label = f"{kind} (all labels)" if k is None else f"{kind} (k={k})"
                tag = f"{kind}_k{'all' if k is None else k}"
                sets[label] = (tag, first[_samples_key(kind, k, seed)])
        return sets

    # --- the study ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        c = self.config
        self.render()
        first_units = self._first_stage()
        self.bar = tqdm(total=len(first_units), desc="augment", unit="unit")
        first = self.executor.run(first_units, self.tick)
        second_units = self._second_stage(first)
        self.bar.total += len(second_units)
        self.bar.refresh()
        done = {**first, **self.executor.run(second_units, self.tick)}
        self.bar.close()
        arms = {
            arm: {str(k): [done[f"{slug(arm)}_k{k}_seed{s}"]["accuracy"] for s in c.seeds]
                  for k in c.ks}
            for arm in ARMS
        }  # fmt: skip
        cas = {kind: [done[f"cas_{kind}_seed{s}"] for s in c.seeds] for kind in GENERATORS}
        cas["real"] = [done[f"real_seed{s}"] for s in c.seeds]
        quality: dict[str, list[dict[str, float]]] = {}
        for seed in c.seeds:
            for label, (tag, _) in self._sets(seed, first).items():
                quality.setdefault(label, []).append(done[f"quality_{tag}_seed{seed}"])
        elbo = {
            ("vae (all labels)" if k == "all" else f"vae (k={k})"): [
                done[f"elbo_vae_k{k}_seed{s}"]["elbo"] for s in c.seeds
            ]
            for k in ("all", *c.ks)
        }
        self.grids(c.seeds[0])
        summary = self._summary(arms, cas, quality, elbo)
        self._write(summary)
        return summary

    def grids(self, seed: int) -> None:
        """Writes sample grids of the generators of ``seed`` (all labels and the smallest k)
        and rendered digits above their refined versions."""
        for k in ("all", min(self.config.ks)):
            for kind in GENERATORS:
                generator = load_module(self.space.checkpoint(f"{kind}_k{k}_seed{seed}"), [kind])
                save_sample_grid(generator, self.out / f"samples_{kind}_k{k}.png", 10, seed)
        folders = [self.space.rendered_dir, self.out / "refined" / f"seed{seed}"]
        pair = [open_dataset(folder) for folder in folders]
        rows = np.stack([[d[i]["rgb"] for i in range(12)] for d in pair]).astype(np.float32) / 255
        fig = grid_figure(rows, ["rendered", "refined"])
        fig.savefig(self.out / "refined.png", dpi=100)

    def _summary(self, arms, cas, quality, elbo) -> dict[str, Any]:
        real = [r["accuracy"] for r in cas["real"]]
        classes = list(cas["real"][0]["per_class"])
        cas_summary = {
            "real": {
                "accuracy": stats.summary(real),
                "per_class": {
                    c: statistics.fmean(r["per_class"][c] for r in cas["real"]) for c in classes
                },
            }
        }
        for kind in GENERATORS:
            values = [r["accuracy"] for r in cas[kind]]
            cas_summary[kind] = {
                "accuracy": stats.summary(values),
                "ratio_to_real": stats.summary([v / r for v, r in zip(values, real, strict=True)]),
                "per_class": {
                    c: statistics.fmean(r["per_class"][c] for r in cas[kind]) for c in classes
                },
            }
        summary = {
            "config": asdict(self.config),
            "arms": {
                arm: {k: stats.summary(v) for k, v in per_k.items()} for arm, per_k in arms.items()
            },
            "cas": cas_summary,
            "quality": {
                name: {m: stats.summary([s[m] for s in scores]) for m in scores[0]}
                for name, scores in quality.items()
            },
            "elbo_natural_test": {name: stats.summary(v) for name, v in elbo.items()},
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
        }
        summary["differences"] = differences(summary)
        summary["targets"] = targets(summary)
        summary["provenance"] = self.recorder.block(resumed=self.resumed)
        return summary

    def _write(self, summary: dict[str, Any]) -> None:
        (self.out / "results.json").write_text(json.dumps(summary, indent=1))
        (self.out / "results.md").write_text(tables(summary))
        _plot(summary, self.out / "results.png")


def _samples_key(kind: str, k: int | None, seed: int) -> str:
    """The key of the unit that trains generator ``kind`` at ``k`` labels and samples it."""
    return f"samples_{kind}_k{'all' if k is None else k}_seed{seed}"


def _complete(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    return manifest.is_file() and bool(json.loads(manifest.read_text()).get("complete"))


def differences(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per k, each augmented arm minus natural only, paired over seeds."""
    arms = summary["arms"]
    return {
        k: {
            f"{arm} - natural only": stats.paired_difference(
                arms[arm][k]["values"], arms["natural only"][k]["values"]
            )
            for arm in ARMS[1:]
        }
        for k in arms["natural only"]
    }


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """The study's targets, decided on the per-seed values (see :func:`stats.decide`): each
    generator's CAS at least 80% of the real-data accuracy, and at least one augmenter improving
    natural test accuracy at the smallest k (each augmenter's difference paired over seeds; met
    when one is met, missed when all are missed, inconclusive otherwise)."""
    cas = [
        {
            "name": f"{kind.upper()}: CAS / real-data accuracy >= {100 * CAS_RATIO_TARGET:.0f}%",
            "difference": False,
            **stats.decide(summary["cas"][kind]["ratio_to_real"]["values"], CAS_RATIO_TARGET),
        }
        for kind in GENERATORS
    ]
    k1 = min(summary["arms"]["natural only"], key=int)
    improving = [
        {
            "name": f"{label} > 0 at k = {k1}",
            "difference": True,
            **stats.decide(difference["values"], 0.0, ">"),
        }
        for label, difference in differences(summary)[k1].items()
    ]
    decisions = [t["decision"] for t in improving]
    if "met" in decisions:
        overall = "met"
    else:
        overall = "missed" if all(d == "missed" for d in decisions) else "inconclusive"
    return {
        "cas_at_least_80_percent_of_real": cas,
        f"augmenters_improving_k{k1}": {
            "decision": overall,
            "rule": "met when one augmenter's target is met, missed when all are missed",
            "per_augmenter": improving,
        },
    }


def _mean_std(values: list[float]) -> str:
    s = stats.summary(values)
    return f"{s['mean']:.1f}" if s["std"] is None else f"{s['mean']:.1f} ± {s['std']:.1f}"


def tables(summary: dict[str, Any]) -> str:
    """The study's tables in Markdown (``results.md`` and the README), computed from the
    per-seed values of ``summary``."""
    arms = summary["arms"]
    ks = list(arms["natural only"])
    n = len(arms["natural only"][ks[0]]["values"])
    lines = [
        (
            f"Natural test accuracy (%, mean ± sample std over n = {n} seeds) at k natural labels "
            "per class."
        ),
        "",
        *stats.table_by_k(list(arms), ks, lambda k, arm: stats.pct(arms[arm][k]["values"])),
    ]
    diffs = differences(summary)
    labels = list(diffs[ks[0]])
    lines += [
        "",
        (
            "Paired differences from natural only over the seeds (percentage points, mean [95% "
            "Student t interval]):"
        ),
        "",
        *stats.table_by_k(labels, ks, lambda k, label: stats.points(diffs[k][label])),
    ]
    cas = summary["cas"]
    lines += [
        "",
        (
            f"Classification Accuracy Score: trained on {summary['config']['samples']} samples "
            "of a generator trained on all natural labels, tested on the natural test split (%); "
            "sample quality against the natural test split in the real-data classifier's "
            "features (means over seeds)."
        ),
        "",
        "| generator | CAS | CAS / real (per seed) | FID | KID x 1000 | precision | recall |",
        "|---|---|---|---|---|---|---|",
        f"| real data | {stats.pct(cas['real']['accuracy']['values'])} | 1.00 | | | | |",
    ]
    quality = summary["quality"]
    for kind in GENERATORS:
        q = quality[f"{kind} (all labels)"]
        ratios = "/".join(f"{r:.2f}" for r in cas[kind]["ratio_to_real"]["values"])
        lines.append(
            f"| {kind.upper()} | {stats.pct(cas[kind]['accuracy']['values'])} | "
            f"{cas[kind]['ratio_to_real']['mean']:.2f} ({ratios}) | {q['fid']['mean']:.1f} | "
            f"{1000 * q['kid']['mean']:.1f} | {q['precision']['mean']:.2f} | "
            f"{q['recall']['mean']:.2f} |"
        )
    classes = list(cas["real"]["per_class"])
    lines += [
        "",
        "CAS per class (%, mean over seeds).",
        "",
        "| | " + " | ".join(classes) + " |",
        "|---|" + "---|" * len(classes),
    ]
    for kind in ("real", *GENERATORS):
        name = "real data" if kind == "real" else kind.upper()
        per_class = cas[kind]["per_class"]
        lines.append(
            f"| {name} | " + " | ".join(f"{100 * per_class[c]:.0f}" for c in classes) + " |"
        )
    lines += [
        "",
        "Sample quality of every augmenter set against the natural test split (mean over seeds).",
        "",
        "| set | FID | KID x 1000 | precision | recall |",
        "|---|---|---|---|---|",
    ]
    for name, q in quality.items():
        lines.append(
            f"| {name} | {q['fid']['mean']:.1f} | {1000 * q['kid']['mean']:.1f} | "
            f"{q['precision']['mean']:.2f} | {q['recall']['mean']:.2f} |"
        )
    elbo = summary["elbo_natural_test"]
    cas_targets, improving = targets(summary).values()
    lines += [
        "",
        "VAE ELBO on the natural test split (nats per image, mean ± sample std, higher is "
        "better): "
        + "; ".join(f"{name} {_mean_std(v['values'])}" for name, v in elbo.items())
        + ".",
        "",
        *stats.target_table(cas_targets + improving["per_augmenter"]),
        "",
        (
            f"At least one augmenter improves k = {min(ks, key=int)} ({improving['rule']}): "
            f"{stats.verdict(improving)}."
        ),
    ]
    return "\n".join(lines) + "\n"


def _plot(summary: dict[str, Any], path: Path) -> None:
    arms = summary["arms"]
    ks = list(next(iter(arms.values())))
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    width = 0.8 / len(arms)
    for i, (arm, per_k) in enumerate(arms.items()):
        positions = np.arange(len(ks)) + (i - (len(arms) - 1) / 2) * width
        left.bar(
            positions,
            [100 * per_k[k]["mean"] for k in ks],
            width,
            yerr=[100 * (per_k[k]["std"] or 0.0) for k in ks],
            capsize=2,
            label=arm,
        )
    low = min(100 * per_k[k]["mean"] for per_k in arms.values() for k in ks)
    left.set_ylim(max(0.0, low - 10), 100)
    left.set_xticks(range(len(ks)), [f"k = {k}" for k in ks])
    left.set_ylabel("natural test accuracy (%)")
    left.set_title("natural labels per class + augmenter", fontsize=10)
    left.legend(fontsize=8)
    left.grid(axis="y", alpha=0.3)
    cas = summary["cas"]
    classes = list(cas["real"]["per_class"])
    kinds = ("real", *GENERATORS)
    for i, kind in enumerate(kinds):
        positions = np.arange(len(classes)) + (i - 1) * 0.27
        label = "real data" if kind == "real" else f"{kind.upper()} samples only"
        right.bar(positions, [100 * cas[kind]["per_class"][c] for c in classes], 0.27, label=label)
    right.set_xticks(range(len(classes)), classes)
    right.set_xlabel("class")
    right.set_ylabel("natural test accuracy (%)")
    right.set_title("Classification Accuracy Score per class", fontsize=10)
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment augment``); prints its tables.
    ``spread`` takes ``workers``, ``threads`` and ``ray_address`` (see :func:`run_study`)."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)
