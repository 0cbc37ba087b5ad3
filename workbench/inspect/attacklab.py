"""The attack lab: one image, one attack, and what it did (predictions, confidences, SSIM, norms)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.inspect.paths import resolve_under


def load_classifier(root: str | Path, checkpoint: str) -> torch.nn.Module:
    """Loads a classifier checkpoint that lies under ``root``, in eval mode.

    Raises:
        WorkbenchError: the path leaves the root, or the file is unreadable or of another kind.
    """
    from workbench.models.checkpoint import load_module

    return load_module(resolve_under(root, checkpoint), ["classifier"])


def attack_names(norm: str) -> list[str]:
    """Returns the registered attacks that support ``norm``."""
    from workbench.adversarial.attacks import ATTACKS

    return sorted(name for name, cls in ATTACKS.items() if norm in cls.norms)


def attack_budget(name: str) -> tuple[str, int] | None:
    """Returns an attack's iteration option and its default (``steps``, or ``queries`` for a
    black-box attack); None when the attack takes neither or is unknown."""
    from workbench.adversarial.attacks import ATTACKS

    defaults = ATTACKS[name].defaults if name in ATTACKS else {}
    key = next((k for k in ("steps", "queries") if k in defaults), None)
    return (key, int(defaults[key])) if key else None


def read_image(data: bytes, name: str = "upload") -> np.ndarray:
    """Decodes an uploaded image file to float32 H x W x 3 in [0, 1].

    Raises:
        WorkbenchError: the bytes are not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise WorkbenchError(
            f"{name}: not a readable image ({exc}); upload a PNG or JPEG"
        ) from None
    return np.asarray(image.convert("RGB"), np.float32) / 255.0


def model_input(model: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    """Converts an H x W x C image (uint8, or float in [0, 1]) to the model's 1 x C x S x S input,
    the way the DataModule harmonises its sources."""
    from workbench.data.datamodule import harmonise

    array = np.asarray(image)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array
    if array.ndim == 2:
        array = array[..., None]
    item = harmonise(
        {"image": array, "label": 0}, int(model.hparams.image_size), int(model.hparams.in_channels)
    )
    return item["image"][None]


@dataclass
class AttackOutcome:
    """What one attack did to one image.

    Attributes:
        clean, adversarial: the model's input before and after, float32 H x W x C in [0, 1].
        perturbation: the perturbation scaled so its largest value is 0 or 1 (0.5 = unchanged).
        clean_probs, adversarial_probs: class probabilities (K).
        stats: ``ssim``, ``l0``, ``l2`` and ``linf`` of the perturbation.
    """

    clean: np.ndarray
    adversarial: np.ndarray
    perturbation: np.ndarray
    clean_probs: np.ndarray
    adversarial_probs: np.ndarray
    stats: dict[str, float]


def run_attack(
    model: torch.nn.Module,
    x: torch.Tensor,
    label: int,
    attack: str,
    norm: str,
    eps: float,
    steps: int | None = None,
    seed: int = 0,
) -> AttackOutcome:
    """Attacks one input ``x`` (1 x C x S x S) of true class ``label``.

    Args:
        model: a classifier.
        x: the input.
        label: its true class.
        attack: a registered attack name.
        norm: ``linf`` or ``l2``.
        eps: the radius of the threat model.
        steps: iterations (queries for black-box attacks); None keeps the attack's default.
        seed: seed of the attack's random draws.

    Raises:
        WorkbenchError: unknown attack or norm, a bad ``eps``, or a label the model lacks.
    """
    from workbench.adversarial.attacks import build_attack
    from workbench.adversarial.model import as_logits_model
    from workbench.adversarial.perceptual import perturbation_stats
    from workbench.adversarial.threat import ThreatModel

    classes = int(model.hparams.num_classes)
    if not 0 <= label < classes:
        raise WorkbenchError(f"label: must lie in [0, {classes}), got {label}")
    budget = attack_budget(attack)
    options = {budget[0]: int(steps)} if steps is not None and budget else {}
    threat = ThreatModel(norm, float(eps))
    x_adv = build_attack(attack, model, threat, seed=seed, **options)(x, torch.tensor([label]))
    logits = as_logits_model(model)
    with torch.no_grad():
        probs = torch.softmax(logits(torch.cat([x, x_adv])), dim=1).numpy()
    stats = {k: float(v[0]) for k, v in perturbation_stats(x, x_adv).items()}
    delta = (x_adv - x)[0].permute(1, 2, 0).numpy()
    scale = max(float(np.abs(delta).max()), 1e-12)
    return AttackOutcome(
        clean=x[0].permute(1, 2, 0).numpy(),
        adversarial=x_adv[0].permute(1, 2, 0).numpy(),
        perturbation=0.5 + 0.5 * delta / scale,
        clean_probs=probs[0],
        adversarial_probs=probs[1],
        stats=stats,
    )


def class_names(model: torch.nn.Module) -> list[str]:
    """Returns the classifier's class names (their indices as text when it has none)."""
    names = model.hparams.get("class_names") or []
    count = int(model.hparams.num_classes)
    return list(names) if len(names) == count else [str(i) for i in range(count)]
