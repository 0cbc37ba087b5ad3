"""The studies' small classifier recipe and the Classification Accuracy Score (Ravuri and
Vinyals 2019) that trains it on a generator's samples.

CAS trains a classifier on generated images only and tests it on the natural test split: a
generator that captures every class's variation scores close to the same classifier trained on
real data; one whose samples are sharp but narrow, or off-class, scores low. Overall and per
class accuracy are reported. :func:`train_classifier` is shared with the augmentation study so
both use one recipe; it lives in the training layer so that the generative models stay below
it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torchmetrics.classification import MulticlassAccuracy

from workbench.curriculum import Curriculum, CurriculumDataModule
from workbench.data.augment import DIGITS_AUGMENT
from workbench.data.datamodule import MixedDataModule
from workbench.data.sources import DigitsSource
from workbench.data.transforms import harmonise
from workbench.training.callbacks import EpochSeed
from workbench.training.classifier import Classifier


@dataclass
class TrainBudget:
    """The classifier recipe: input, network and training budget."""

    image_size: int = 16
    channels: int = 1
    width: int = 16
    depth: int = 3
    epochs: int = 8
    epoch_size: int = 2048
    batch_size: int = 64
    lr: float = 3e-3
    augment: dict[str, Any] | None = field(default_factory=lambda: dict(DIGITS_AUGMENT))


def natural(per_class: int | None = None, train: bool = True) -> dict[str, Any]:
    """The natural digits source (``per_class`` labels per class; ``train=False`` keeps it for
    validation and testing only)."""
    source = {
        "kind": "digits",
        "name": "natural",
        "weights": {"train": 1.0 if train else 0.0, "val": 1.0, "test": 1.0},
    }
    if per_class is not None:
        source["per_class"] = per_class
    return source


def _data_options(sources: list[dict[str, Any]], budget: TrainBudget, seed: int) -> dict:
    return dict(
        sources=sources,
        image_size=budget.image_size,
        channels=budget.channels,
        batch_size=budget.batch_size,
        epoch_size=budget.epoch_size,
        val_fraction=0.0,
        augment=budget.augment,
        seed=seed,
    )


def _model_options(budget: TrainBudget) -> dict[str, Any]:
    return dict(
        backbone="resnet",
        backbone_options={"width": budget.width, "depth": budget.depth},
        lr=budget.lr,
        label_smoothing=0.1,
    )


def train_classifier(
    sources: list[dict[str, Any]],
    budget: TrainBudget,
    seed: int,
    curriculum: dict[str, Any] | None = None,
) -> Classifier:
    """Trains the budget's classifier on a mix of sources; returns it in eval mode.

    Training draws follow the sources' ``train`` weights, ``epoch_size`` draws per epoch, on the
    schedule of ``curriculum`` when given (:class:`workbench.curriculum.CurriculumConfig`'s
    fields); no validation runs during training, so no training pool is split for it.
    """
    pl.seed_everything(seed, verbose=False)
    callbacks: list[pl.Callback] = [EpochSeed()]
    if curriculum is None:
        data = MixedDataModule(**_data_options(sources, budget, seed))
    else:
        data = CurriculumDataModule(curriculum=curriculum, **_data_options(sources, budget, seed))
        callbacks.append(Curriculum())
    model = Classifier(
        num_classes=data.num_classes,
        in_channels=budget.channels,
        image_size=budget.image_size,
        source_names=data.source_names,
        class_names=data.classes,
        **_model_options(budget),
    )
    study_trainer(budget.epochs, callbacks).fit(model, data)
    return model.eval()


def study_trainer(epochs: int, callbacks: list[pl.Callback]) -> pl.Trainer:
    """A quiet one-process CPU trainer for the studies' recipes: no logger, checkpoints,
    progress bar or validation."""
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def recipe_config(sources: list[dict[str, Any]], budget: TrainBudget, seed: int) -> dict:
    """The same recipe as a Lightning CLI config (for ``workbench fit`` or ``workbench clean``):
    the same network, optimisation, draws and augmentation, no validation and no logger."""
    return {
        "seed_everything": seed,
        "trainer": {
            "max_epochs": budget.epochs,
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
        },
        "model": {
            "class_path": "workbench.training.classifier.Classifier",
            "init_args": _model_options(budget),
        },
        "data": {
            "class_path": "workbench.data.datamodule.MixedDataModule",
            "init_args": _data_options(sources, budget, seed),
        },
    }


def natural_images(split: str, budget: TrainBudget) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns a natural digits split harmonised to the budget's input: images N x C x S x S
    in [0, 1] and labels N."""
    source = DigitsSource(split)
    items = [harmonise(source[i], budget.image_size, budget.channels) for i in range(len(source))]
    return torch.stack([i["image"] for i in items]), torch.stack([i["label"] for i in items])


def accuracy(model: Classifier, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Returns overall accuracy and accuracy per class name of ``model`` on a labelled set."""
    num_classes = len(model.class_names)
    with torch.no_grad():
        logits = torch.cat(
            [model(images[i : i + 512])["logits"] for i in range(0, len(images), 512)]
        )
    overall = MulticlassAccuracy(num_classes, average="micro")(logits, labels)
    per_class = MulticlassAccuracy(num_classes, average=None)(logits, labels)
    return {
        "accuracy": float(overall),
        "per_class": dict(zip(model.class_names, map(float, per_class), strict=True)),
    }


def classification_accuracy_score(
    generator: str | Path, budget: TrainBudget, seed: int, num: int = 2000
) -> dict[str, Any]:
    """Trains the budget's classifier on ``num`` samples of a generator only and tests it on the
    natural test split.

    Args:
        generator: a VAE or GAN checkpoint, or a folder written by ``workbench sample``.
        budget: the classifier recipe (use the same for the real-data reference).
        seed: training seed.
        num: generated training samples (balanced over the classes).

    Returns:
        ``accuracy`` and ``per_class`` accuracy on the natural test split.
    """
    generated = {"kind": "generated", "path": str(generator), "num": num, "name": "generated"}
    model = train_classifier([natural(train=False), generated], budget, seed)
    return accuracy(model, *natural_images("test", budget))
