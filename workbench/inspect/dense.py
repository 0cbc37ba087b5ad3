"""A dense checkpoint in the app: its prediction beside the ground truth of a rendered sample,
and a dense attack on that sample (what the attacked prediction looks like)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import WorkbenchError, option_error
from workbench.inspect.attacklab import MAX_RESTARTS, MAX_STEPS
from workbench.inspect.paths import resolve_under
from workbench.inspect.preview import colorize_depth, colorize_ids, enlarge

DENSE_ATTACKS = ("pgd", "apgd")


def load_dense(root: str | Path, checkpoint: str) -> torch.nn.Module:
    """Loads a dense checkpoint that lies under ``root``, in eval mode.

    Raises:
        WorkbenchError: the path leaves the root, or the file is unreadable or of another kind.
    """
    from workbench.checkpoint import load_module

    return load_module(resolve_under(root, checkpoint), ["dense"])


def dense_inputs(
    model: torch.nn.Module, sample: dict[str, Any], classes: Sequence[str]
) -> dict[str, torch.Tensor]:
    """A loaded dataset sample (``rgb``, ``seg``, ``depth``, ``meta``) of a dataset with
    ``classes``, harmonised to the model's input: ``image`` 1 x 3 x S x S, ``seg`` and
    ``depth`` 1 x S x S.

    Raises:
        WorkbenchError: a sample without the labels the model predicts, or of another scene
            (class names differ).
    """
    from workbench.data.transforms import harmonise

    if list(classes) != list(model.class_names):
        raise WorkbenchError(
            f"sample: its dataset's classes {list(classes)} differ from the model's "
            f"{list(model.class_names)}; pick a dataset of the model's scene"
        )
    for key, name, needed in (
        ("seg", "segmentation", model.segments),
        ("depth", "depth", model.depths),
    ):
        if needed and sample.get(key) is None:
            raise WorkbenchError(f"sample: has no {name} labels, which this model predicts")
    item = harmonise(
        {
            "image": np.asarray(sample["rgb"], np.float32) / 255.0,
            "label": 0,
            "seg": sample.get("seg"),
            "depth": sample.get("depth"),
        },
        int(model.hparams.image_size),
        3,
    )
    return {key: item[key][None] for key in ("image", "seg", "depth")}


def _views(
    model: torch.nn.Module, image: torch.Tensor, truth: dict[str, torch.Tensor], prefix: str
) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = model(image)
    views = {}
    if "seg" in out:
        views[f"{prefix} classes"] = enlarge(colorize_ids(out["seg"].argmax(1)[0].numpy()))
    if "depth" in out:
        depth = out["depth"][0].numpy().copy()
        depth[truth["depth"][0].numpy() <= 0] = 0  # blank where the truth has no surface
        views[f"{prefix} depth"] = enlarge(colorize_depth(depth))
    return views


def _truth_views(truth: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, np.ndarray]:
    views = {}
    if model.segments:
        views["true classes"] = enlarge(colorize_ids(truth["seg"][0].clamp(min=0).numpy()))
    if model.depths:
        views["true depth"] = enlarge(colorize_depth(truth["depth"][0].numpy()))
    return views


def _scores(model: torch.nn.Module, image: torch.Tensor, truth: dict[str, torch.Tensor]):
    from workbench.models.dense_metrics import (
        confusions,
        depth_scores,
        depth_sums,
        segmentation_scores,
    )

    with torch.no_grad():
        out = model(image)
    scores = {}
    if "seg" in out:
        matrix = confusions(out["seg"].argmax(1), truth["seg"], len(model.output_names))[0]
        seg = segmentation_scores(matrix)
        scores.update(miou=float(seg["miou"]), pixel_acc=float(seg["pixel_acc"]))
    if "depth" in out:
        scores["absrel"] = float(
            depth_scores(depth_sums(out["depth"], truth["depth"])[0])["absrel"]
        )
    return scores


def dense_prediction(
    model: torch.nn.Module, sample: dict[str, Any], classes: Sequence[str]
) -> tuple[dict, dict]:
    """The model's prediction on a sample (of a dataset with ``classes``) beside the ground
    truth.

    Returns:
        views (title -> uint8 image: the input, the predicted and the true classes and / or
        depth) and the sample's scores (``miou``, ``pixel_acc``, ``absrel``).
    """
    truth = dense_inputs(model, sample, classes)
    image = truth["image"]
    views = {"input": enlarge((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))}
    views.update(_views(model, image, truth, "predicted"))
    views.update(_truth_views(truth, model))
    return views, _scores(model, image, truth)


class DenseAttackOptions(BaseModel):
    """One dense attack of the lab, bounded.

    Attributes:
        attack: ``pgd`` or ``apgd`` on the per-pixel loss.
        head: the output attacked, ``seg`` or ``depth``.
        eps: L-inf radius in (0, 1].
        steps: iterations (at most :data:`~workbench.inspect.attacklab.MAX_STEPS`).
        restarts: runs (at most :data:`~workbench.inspect.attacklab.MAX_RESTARTS`).
        seed: seed of the random start.
    """

    model_config = ConfigDict(extra="forbid")

    attack: Literal["pgd", "apgd"]
    head: Literal["seg", "depth"] = "seg"
    eps: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 20
    restarts: Annotated[int, Field(ge=1, le=MAX_RESTARTS)] = 1
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0


@dataclass
class DenseAttackOutcome:
    """What a dense attack did to one sample.

    Attributes:
        views: title -> uint8 image (clean and adversarial inputs, the amplified
            perturbation, clean and attacked predictions, the truth).
        clean: the sample's scores before the attack.
        attacked: the scores after it.
    """

    views: dict[str, np.ndarray]
    clean: dict[str, float]
    attacked: dict[str, float]


def run_dense_attack(
    model: torch.nn.Module, sample: dict[str, Any], classes: Sequence[str], **options: Any
) -> DenseAttackOutcome:
    """Attacks one rendered sample with a dense attack (see :class:`DenseAttackOptions`).

    Raises:
        WorkbenchError: options out of bounds (one line naming the field), a head the model
            lacks, or a sample without the needed labels.
    """
    from workbench.adversarial.dense import dense_attack
    from workbench.adversarial.threat import ThreatModel

    try:
        chosen = DenseAttackOptions(**options)
    except ValidationError as exc:
        raise option_error(exc, DenseAttackOptions.model_fields) from None
    if chosen.head == "seg" and not model.segments or chosen.head == "depth" and not model.depths:
        raise WorkbenchError(f"head: this model has no {chosen.head} output")
    truth = dense_inputs(model, sample, classes)
    image = truth["image"]
    attacker = dense_attack(
        chosen.attack,
        model,
        ThreatModel("linf", chosen.eps),
        chosen.head,
        seed=chosen.seed,
        steps=chosen.steps,
        restarts=chosen.restarts,
    )
    x_adv = attacker(image, truth[chosen.head])
    delta = (x_adv - image)[0].permute(1, 2, 0).numpy()
    scale = max(float(np.abs(delta).max()), 1e-12)

    def picture(x: torch.Tensor) -> np.ndarray:
        return enlarge((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))

    views = {
        "clean input": picture(image),
        "perturbation (amplified)": enlarge(
            ((0.5 + 0.5 * delta / scale) * 255).round().astype(np.uint8)
        ),
        "adversarial input": picture(x_adv),
    }
    views.update(_views(model, image, truth, "clean"))
    views.update(_views(model, x_adv, truth, "attacked"))
    views.update(_truth_views(truth, model))
    return DenseAttackOutcome(views, _scores(model, image, truth), _scores(model, x_adv, truth))
