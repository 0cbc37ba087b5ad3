"""``workbench experiment augment``: what learned generators add to a few natural labels.

Protocol (all classifiers the same network, input and number of training draws; grey 16 px):

* render ``scenes/digits_sim2real.yaml`` once at the study's image size (resumable);
* at k natural labels per class (k in 1, 10), the classifier and every generator see only those
  k labelled natural training images per class, plus the rendered digits (labelled for free):

  - natural only;
  - + rendered: natural and raw rendered draws 1:1;
  - + SimGAN-refined: natural and refined rendered draws 1:1; the refiner (SimGAN-style) learns
    from rendered images and *unlabelled* natural training images (its discriminator needs no
    labels), so it is trained once per seed, not per k;
  - + SDEdit s (two strengths s): natural and diffusion-refined rendered draws 1:1; an
    unconditional diffusion model learns the *unlabelled* natural training images (once per
    seed) and refines every rendered digit by SDEdit at strength s (noise to s of the schedule,
    denoise), so the digit's shape, and with it its label, stays while its style becomes
    natural;
  - + VAE / + GAN / + diffusion: natural and generated draws 1:1; the conditional VAE, GAN
    (the budget and remedies ``workbench experiment gan`` chose) and class-conditional diffusion
    model are trained on the k-shot natural images and the rendered digits with the class as
    condition (half the draws each), so they learn natural-looking variation from few shots plus
    rendered shapes, and their samples are written once as datasets (``workbench sample``);

* the SDEdit strength sweep: at every strength of ``strengths``, the refined rendered digits'
  realism (FID to the natural test split) and faithfulness (the accuracy of the real-data
  classifier on them, against the rendered labels; it falls when labels stop being valid);
* Classification Accuracy Score: a VAE, a GAN and a diffusion model trained on *all* natural
  training labels; a classifier trained only on their samples, tested on the natural test
  split, overall and per class, against the same classifier trained on the real images;
* sample quality of every augmenter set against the natural test split: FID, KID, precision and
  recall in the feature space of that real-data classifier; the VAEs' ELBO on the natural test
  split (nats per image);
* every arm over several seeds: mean, sample standard deviation and n of natural test accuracy;
  paired differences from natural only and from + rendered over seeds with a 95% Student t
  interval; the targets decided on those intervals (:mod:`workbench.experiments.stats`);
* grids of the first seed's generators (``samples_<kind>_k<k>.png``) and of rendered digits
  above their refined versions (``refined.png``).

Every model and result is written as soon as it is made, so an interrupted study resumes. The
results carry a ``provenance`` block (:mod:`workbench.experiments.provenance`).
"""

from __future__ import annotations

import importlib
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
from workbench.data.reader import is_finished, open_dataset
from workbench.data.transforms import harmonise
from workbench.execution import Executor, Unit
from workbench.experiments import stats
from workbench.experiments.common import (
    StudyBase,
    grouped_bars,
    render_scene,
    run_study,
    slug,
)
from workbench.generative.diffusion import SDEditRefiner
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

GENERATORS = ("vae", "gan", "diffusion")
GENERATOR_ARMS = {"vae": "+ VAE", "gan": "+ GAN", "diffusion": "+ diffusion"}
CAS_RATIO_TARGET = 0.8
BEAT_RENDERED_POINTS = 0.02  # a learned augmenter beats + rendered by this much at the smallest k
GAN_VS_VAE_MARGIN = 0.01  # the GAN "at least matches" the VAE: the interval stays above -1 point


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
    epochs: dict[str, int] = field(
        default_factory=lambda: {"vae": 15, "gan": 200, "refiner": 6, "diffusion": 25}
    )
    options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "vae": {"latent_dim": 16, "width": 32},
            # the budget and remedy `workbench experiment gan` measured best: R1, 200 epochs
            "gan": {"latent_dim": 32, "width": 32, "r1_weight": 1.0},
            "refiner": {},
            "diffusion": {"widths": [32, 64, 64], "lr": 5e-4},
        }
    )
    strengths: list[float] = field(default_factory=lambda: [0.3, 0.6])
    sweep: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.45, 0.6, 0.8, 1.0])

    def __post_init__(self) -> None:
        missing = [s for s in self.strengths if s not in self.sweep]
        if missing:
            raise ValueError(f"strengths {missing} must be among the sweep's {self.sweep}")

    @property
    def arms(self) -> tuple[str, ...]:
        """The arms, in table order."""
        return (
            "natural only",
            "+ rendered",
            "+ SimGAN-refined",
            *(sdedit_arm(s) for s in self.strengths),
            *GENERATOR_ARMS.values(),
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
            epochs={"vae": 1, "gan": 1, "refiner": 1, "diffusion": 1},
            options={
                "vae": {"latent_dim": 4, "width": 4},
                "gan": {"latent_dim": 4, "width": 4},
                "refiner": {"width": 4},
                "diffusion": {"widths": [8, 8], "attention": False, "train_steps": 20,
                              "sample_steps": 4},
            },
            strengths=[0.5],
            sweep=[0.5, 1.0],
        )


def sdedit_arm(strength: float) -> str:
    """The arm that mixes natural labels with rendered digits refined by SDEdit at ``strength``."""
    return f"+ SDEdit {strength:g}"


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
        if not is_finished(folder):
            write_samples(
                load_module(checkpoint, [kind]),
                folder,
                self.config.samples,
                seed=seed,
                provenance={"kind": kind, "checkpoint": str(checkpoint)},
                progress=False,
            )
        return str(folder)

    def sdedit(self, seed: int) -> dict[str, str]:
        """Trains (or finds) the unconditional diffusion model of ``seed`` on the unlabelled
        natural training images and writes the rendered digits refined by SDEdit at every
        strength of the sweep; returns their folders by strength."""
        sources = [{"kind": "digits", "name": "natural", "weights": {"train": 1.0, "val": 0.0}}]
        checkpoint = self.fit_module(
            "diffusion", f"sdedit_seed{seed}", sources, seed, {"conditional": False}
        )
        model = load_module(checkpoint, ["diffusion"])
        folders = {}
        for strength in self.config.sweep:
            folder = self.out / "sdedit" / f"s{strength:g}_seed{seed}"
            if not is_finished(folder):
                refiner = SDEditRefiner(model, strength)
                provenance = {"checkpoint": str(checkpoint), **refiner.settings()}
                refine_dataset(refiner, self.rendered_dir, folder, provenance, False, seed)
            folders[f"{strength:g}"] = str(folder)
        return folders

    def faithfulness(self, folder: str, features: str) -> dict[str, float]:
        """Accuracy of the real-data classifier saved at ``features`` on a refined set, against
        the rendered labels (it falls when refining changes what a digit shows)."""
        source = SampledSource(Path(folder))
        size = self.config.image_size
        images = torch.stack([harmonise(source[i], size, 1)["image"] for i in range(len(source))])
        labels = torch.as_tensor(source.labels())
        classifier = load_module(features, ["classifier"])
        return {"accuracy": accuracy(classifier, images, labels)["accuracy"]}

    def refined(self, seed: int) -> str:
        """Trains (or finds) the refiner of ``seed`` and writes the refined rendered digits;
        returns their folder."""
        sources = [
            self._rendered(),
            {"kind": "digits", "name": "natural", "weights": {"train": 1.0, "val": 0.0}},
        ]
        checkpoint = self.fit_module("refiner", f"refiner_seed{seed}", sources, seed)
        folder = self.out / "refined" / f"seed{seed}"
        if not is_finished(folder):
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
        if arm == "+ rendered" or "refined" in arm or arm.startswith("+ SDEdit"):
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
        refiners (SimGAN and SDEdit) and their refined digits, every generator and its samples,
        and the arms that mix no learned augmenter."""
        c, units = self.config, []
        for seed in c.seeds:
            real = f"real_seed{seed}"
            units.append(self._unit(real, "classify", sources=[natural()], seed=seed,
                                    save=str(self.space.checkpoint(real))))  # fmt: skip
            units.append(self._unit(f"refined_seed{seed}", "refined", seed=seed))
            units.append(self._unit(f"sdedit_seed{seed}", "sdedit", seed=seed))
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
        CAS, the VAEs' ELBO, the sample quality of every set and the SDEdit sweep's
        faithfulness."""
        c, units = self.config, []
        for seed in c.seeds:
            refined = first[f"refined_seed{seed}"]
            sdedit = first[f"sdedit_seed{seed}"]
            features = str(self.space.checkpoint(f"real_seed{seed}"))
            for kind in GENERATORS:
                units.append(self._unit(f"cas_{kind}_seed{seed}", "cas", seed=seed,
                                        samples=first[_samples_key(kind, None, seed)]))  # fmt: skip
            for strength, folder in sdedit.items():
                key = f"faithfulness_sdedit_s{strength}_seed{seed}"
                units.append(self._unit(key, "faithfulness", folder=folder, features=features))
            for k in c.ks:
                units.append(self._arm("+ SimGAN-refined", k, seed, refined))
                for strength in c.strengths:
                    units.append(self._arm(sdedit_arm(strength), k, seed,
                                           sdedit[f"{strength:g}"]))  # fmt: skip
                for kind, arm in GENERATOR_ARMS.items():
                    units.append(self._arm(arm, k, seed,
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
            "SimGAN-refined": ("refined", first[f"refined_seed{seed}"]),
        }
        for strength, folder in first[f"sdedit_seed{seed}"].items():
            sets[f"SDEdit {strength}"] = (f"sdedit_s{strength}", folder)
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
            for arm in c.arms
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
        sweep = {
            f"{strength:g}": {
                "fid": [done[f"quality_sdedit_s{strength:g}_seed{s}"]["fid"] for s in c.seeds],
                "faithfulness": [
                    done[f"faithfulness_sdedit_s{strength:g}_seed{s}"]["accuracy"] for s in c.seeds
                ],
            }
            for strength in c.sweep
        }
        self.grids(c.seeds[0])
        summary = self._summary(arms, cas, quality, elbo, sweep)
        self.save(summary, tables, _plot)
        return summary

    def grids(self, seed: int) -> None:
        """Writes sample grids of the generators of ``seed`` (all labels and the smallest k)
        and rendered digits above their SimGAN- and SDEdit-refined versions (every strength of
        the sweep)."""
        for k in ("all", min(self.config.ks)):
            for kind in GENERATORS:
                generator = load_module(self.space.checkpoint(f"{kind}_k{k}_seed{seed}"), [kind])
                save_sample_grid(generator, self.out / f"samples_{kind}_k{k}.png", 10, seed)
        folders = {
            "rendered": self.space.rendered_dir,
            "SimGAN": self.out / "refined" / f"seed{seed}",
            **{
                f"SDEdit {s:g}": self.out / "sdedit" / f"s{s:g}_seed{seed}"
                for s in self.config.sweep
            },
        }
        sets = [open_dataset(folder) for folder in folders.values()]
        rows = np.stack([[d[i]["rgb"] for i in range(12)] for d in sets]).astype(np.float32) / 255
        fig = grid_figure(rows, list(folders))
        fig.savefig(self.out / "refined.png", dpi=100)

    def _summary(self, arms, cas, quality, elbo, sweep) -> dict[str, Any]:
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
            "sdedit_sweep": {
                strength: {m: stats.summary(v) for m, v in per.items()}
                for strength, per in sweep.items()
            },
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
        }
        summary["differences"] = differences(summary)
        summary["targets"] = targets(summary)
        summary["provenance"] = self.recorder.block(resumed=self.resumed)
        return summary


def _samples_key(kind: str, k: int | None, seed: int) -> str:
    """The key of the unit that trains generator ``kind`` at ``k`` labels and samples it."""
    return f"samples_{kind}_k{'all' if k is None else k}_seed{seed}"


def differences(
    summary: dict[str, Any], reference: str = "natural only"
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per k, each other arm (after ``reference`` in the table's order) minus ``reference``,
    paired over seeds."""
    arms = summary["arms"]
    names = list(arms)
    others = names[names.index(reference) + 1 :]
    return {
        k: {
            f"{arm} - {reference}": stats.paired_difference(
                arms[arm][k]["values"], arms[reference][k]["values"]
            )
            for arm in others
        }
        for k in arms[reference]
    }


def _beats(values: list[float], margin: float) -> dict[str, Any]:
    """Decides "better by at least ``margin`` with an interval above zero": met when the mean
    difference reaches the margin and the interval lies above zero, missed when the interval
    lies below the margin, inconclusive otherwise."""
    above_zero = stats.decide(values, 0.0, ">")
    by_margin = stats.decide(values, margin, ">=")
    if above_zero["decision"] == "met" and by_margin["estimate"] >= margin:
        decision = "met"
    elif by_margin["decision"] == "missed":
        decision = "missed"
    else:
        decision = "inconclusive"
    return {**by_margin, "target": f">= {margin:g} and interval > 0", "decision": decision}


def targets(summary: dict[str, Any]) -> dict[str, Any]:
    """The study's targets, decided on the per-seed values (see :func:`stats.decide`): each
    generator's CAS at least 80% of the real-data accuracy; at least one augmenter improving
    natural test accuracy at the smallest k; at least one learned augmenter beating + rendered
    by 2 points at the smallest k with an interval above zero (each difference paired over
    seeds; met when one is met, missed when all are missed, inconclusive otherwise); and the GAN
    at least matching the VAE at the largest k (the interval of GAN - VAE above -1 point)."""
    cas = [
        {
            "name": f"{_name(kind)}: CAS / real-data accuracy >= {100 * CAS_RATIO_TARGET:.0f}%",
            "difference": False,
            **stats.decide(summary["cas"][kind]["ratio_to_real"]["values"], CAS_RATIO_TARGET),
        }
        for kind in _generators(summary)
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
    learned = [
        {
            "name": f"{label} >= +{100 * BEAT_RENDERED_POINTS:g} points at k = {k1}",
            "difference": True,
            **_beats(difference["values"], BEAT_RENDERED_POINTS),
        }
        for label, difference in differences(summary, "+ rendered")[k1].items()
    ]
    k_last = max(summary["arms"]["natural only"], key=int)
    gan_vs_vae = stats.paired_difference(
        summary["arms"]["+ GAN"][k_last]["values"], summary["arms"]["+ VAE"][k_last]["values"]
    )
    matches = {
        "name": f"+ GAN - + VAE at k = {k_last} (above -{100 * GAN_VS_VAE_MARGIN:g} point)",
        "difference": True,
        **stats.decide(gan_vs_vae["values"], -GAN_VS_VAE_MARGIN, ">="),
    }
    return {
        "cas_at_least_80_percent_of_real": cas,
        f"augmenters_improving_k{k1}": _any_met(improving),
        f"learned_augmenter_beats_rendered_k{k1}": _any_met(learned),
        f"gan_matches_vae_k{k_last}": matches,
    }


def _any_met(decided: list[dict[str, Any]]) -> dict[str, Any]:
    """One target over several candidates: met when one is met, missed when all are missed."""
    decisions = [t["decision"] for t in decided]
    if "met" in decisions:
        overall = "met"
    else:
        overall = "missed" if all(d == "missed" for d in decisions) else "inconclusive"
    return {
        "decision": overall,
        "rule": "met when one augmenter's target is met, missed when all are missed",
        "per_augmenter": decided,
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
    to_rendered = differences(summary, "+ rendered")
    lines += [
        "",
        "Paired differences from + rendered (the raw rendered digits) over the seeds (percentage "
        "points, mean [95% Student t interval]):",
        "",
        *stats.table_by_k(
            list(to_rendered[ks[0]]), ks, lambda k, label: stats.points(to_rendered[k][label])
        ),
    ]
    sweep = summary.get("sdedit_sweep", {})  # none in results written before the sweep
    lines += [] if not sweep else [
        "",
        "SDEdit strength: realism (FID of the refined rendered digits to the natural test split, "
        "lower is more natural) against faithfulness (accuracy of the real-data classifier on "
        "them against the rendered labels; it falls when the refiner changes the digit); mean ± "
        "sample std over seeds.",
        "",
        "| strength | FID | real-data classifier accuracy (%) |",
        "|---|---|---|",
        f"| 0 (rendered) | {_mean_std(summary['quality']['rendered']['fid']['values'])} | |",
        *(
            f"| {strength} | {_mean_std(per['fid']['values'])} | "
            f"{stats.pct(per['faithfulness']['values'])} |"
            for strength, per in sweep.items()
        ),
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
    for kind in _generators(summary):
        q = quality[f"{kind} (all labels)"]
        ratios = "/".join(f"{r:.2f}" for r in cas[kind]["ratio_to_real"]["values"])
        lines.append(
            f"| {_name(kind)} | {stats.pct(cas[kind]['accuracy']['values'])} | "
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
    for kind in ("real", *_generators(summary)):
        name = "real data" if kind == "real" else _name(kind)
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
    cas_targets, improving, learned, matches = targets(summary).values()
    lines += [
        "",
        "VAE ELBO on the natural test split (nats per image, mean ± sample std, higher is "
        "better): "
        + "; ".join(f"{name} {_mean_std(v['values'])}" for name, v in elbo.items())
        + ".",
        "",
        *stats.target_table(
            cas_targets + improving["per_augmenter"] + learned["per_augmenter"] + [matches]
        ),
        "",
        (
            f"At least one augmenter improves k = {min(ks, key=int)} ({improving['rule']}): "
            f"{stats.verdict(improving)}. At least one learned augmenter beats + rendered by "
            f"{100 * BEAT_RENDERED_POINTS:g} points at k = {min(ks, key=int)} with an interval "
            f"above zero: {stats.verdict(learned)}. The GAN at least matches the VAE at "
            f"k = {max(ks, key=int)}: {stats.verdict(matches)}."
        ),
    ]
    return "\n".join(lines) + "\n"


def _plot(summary: dict[str, Any], path: Path) -> None:
    arms = summary["arms"]
    ks = list(next(iter(arms.values())))
    fig = Figure(figsize=(16, 4.5))
    left, middle, right = fig.subplots(1, 3, width_ratios=[1.4, 1.4, 1])
    grouped_bars(left, ks, arms)
    low = min(100 * per_k[k]["mean"] for per_k in arms.values() for k in ks)
    left.set_ylim(max(0.0, low - 10), 100)
    left.set_xticks(range(len(ks)), [f"k = {k}" for k in ks])
    left.set_ylabel("natural test accuracy (%)")
    left.set_title("natural labels per class + augmenter", fontsize=10)
    left.legend(fontsize=7)
    cas = summary["cas"]
    classes = list(cas["real"]["per_class"])
    kinds = ("real", *GENERATORS)
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        positions = np.arange(len(classes)) + (i - (len(kinds) - 1) / 2) * width
        label = "real data" if kind == "real" else f"{kind} samples only"
        middle.bar(positions, [100 * cas[kind]["per_class"][c] for c in classes], width,
                   label=label)  # fmt: skip
    middle.set_xticks(range(len(classes)), classes)
    middle.set_xlabel("class")
    middle.set_ylabel("natural test accuracy (%)")
    middle.set_title("Classification Accuracy Score per class", fontsize=10)
    middle.legend(fontsize=7)
    middle.grid(axis="y", alpha=0.3)
    sweep = summary["sdedit_sweep"]
    strengths = [float(s) for s in sweep]
    right.errorbar(
        strengths,
        [sweep[s]["fid"]["mean"] for s in sweep],
        yerr=[sweep[s]["fid"]["std"] or 0.0 for s in sweep],
        marker="o", color="C0", capsize=2,
    )  # fmt: skip
    right.set_xlabel("SDEdit strength")
    right.set_ylabel("FID to natural test (lower: more natural)", color="C0")
    faithful = right.twinx()
    faithful.errorbar(
        strengths,
        [100 * sweep[s]["faithfulness"]["mean"] for s in sweep],
        yerr=[100 * (sweep[s]["faithfulness"]["std"] or 0.0) for s in sweep],
        marker="s", color="C3", capsize=2,
    )  # fmt: skip
    faithful.set_ylabel("real-data classifier accuracy on them (%)", color="C3")
    right.set_title("SDEdit: realism against faithfulness", fontsize=10)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment augment``); prints its tables.
    ``spread`` takes ``workers``, ``threads`` and ``ray_address`` (see :func:`run_study`)."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)


def _name(kind: str) -> str:
    """A generator's name in the tables: VAE, GAN, diffusion."""
    return GENERATOR_ARMS[kind].removeprefix("+ ")


def _generators(summary: dict[str, Any]) -> list[str]:
    """The generators a summary has CAS for (results written before the diffusion model have
    the VAE and GAN only)."""
    return [kind for kind in GENERATORS if kind in summary["cas"]]
