"""The attack lab: one image, one attack, and what it did (predictions, confidences, SSIM,
norms)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from workbench.errors import WorkbenchError, option_error
from workbench.imageio import PNG_JPEG, UPLOAD_MAX_BYTES, UPLOAD_MAX_PIXELS, decode_image
from workbench.inspect.paths import resolve_under

MAX_STEPS = 1000
"""Most iterations of a gradient attack the lab runs (per restart)."""
MAX_QUERIES = 10_000
"""Most model queries of a black-box attack (the Square paper's budget)."""
MAX_RESTARTS = 5
MAX_EPS = 100.0
"""Largest radius accepted here; the threat model narrows it (L-inf at most 1, L2 at most the
square root of the values per image)."""


def load_attack_target(root: str | Path, checkpoint: str) -> torch.nn.Module:
    """Loads a classifier or dense checkpoint that lies under ``root``, in eval mode.

    Raises:
        WorkbenchError: the path leaves the root, or the file is unreadable or of another kind.
    """
    from workbench.checkpoint import load_module

    return load_module(resolve_under(root, checkpoint), ["classifier", "dense"])


def is_dense(model: torch.nn.Module) -> bool:
    """Whether ``model`` predicts per pixel (a dense checkpoint) rather than one class."""
    return hasattr(model, "segments")


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


def attack_restarts(name: str) -> int | None:
    """Returns an attack's default number of restarts; None when it takes none, starts at the
    clean image by default (every run would repeat the first), or is unknown."""
    from workbench.adversarial.attacks import ATTACKS

    defaults = ATTACKS[name].defaults if name in ATTACKS else {}
    if "restarts" not in defaults or defaults.get("random_start") is False:
        return None
    return int(defaults["restarts"])


class AttackOptions(BaseModel):
    """One attack run of the lab, bounded so that a request cannot run for hours.

    Attributes:
        attack: a registered attack that supports ``norm``.
        norm: ``linf`` or ``l2``.
        eps: the threat model's radius (finite, positive; see :data:`MAX_EPS`).
        steps: iterations, or queries for a black-box attack (at most :data:`MAX_STEPS` or
            :data:`MAX_QUERIES`); None keeps the attack's default; only for attacks that
            take them.
        restarts: runs from new random starts (at most :data:`MAX_RESTARTS`); None keeps the
            attack's default; only for attacks that take them.
        seed: seed of the attack's random draws.
    """

    model_config = ConfigDict(extra="forbid")

    attack: str
    norm: Literal["linf", "l2"]
    eps: Annotated[float, Field(gt=0.0, le=MAX_EPS, allow_inf_nan=False)]
    steps: Annotated[int, Field(ge=1)] | None = None
    restarts: Annotated[int, Field(ge=1, le=MAX_RESTARTS)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0

    @field_validator("attack")
    @classmethod
    def _known(cls, name: str) -> str:
        from workbench.adversarial.attacks import ATTACKS

        if name not in ATTACKS:
            raise ValueError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
        return name

    @field_validator("norm")
    @classmethod
    def _supported(cls, norm: str, info: ValidationInfo) -> str:
        from workbench.adversarial.attacks import ATTACKS

        attack = info.data.get("attack")
        if attack and norm not in ATTACKS[attack].norms:
            raise ValueError(
                f"{attack} does not support {norm}; it supports {', '.join(ATTACKS[attack].norms)}"
            )
        return norm

    @field_validator("steps")
    @classmethod
    def _budget(cls, steps: int | None, info: ValidationInfo) -> int | None:
        attack = info.data.get("attack")
        if steps is None or not attack:
            return steps
        budget = attack_budget(attack)
        if budget is None:
            raise ValueError(f"{attack} takes no steps or queries")
        limit = MAX_QUERIES if budget[0] == "queries" else MAX_STEPS
        if steps > limit:
            raise ValueError(f"at most {limit:,} {budget[0]} for {attack}, got {steps:,}")
        return steps

    @field_validator("restarts")
    @classmethod
    def _restarts(cls, restarts: int | None, info: ValidationInfo) -> int | None:
        attack = info.data.get("attack")
        if restarts is not None and attack and attack_restarts(attack) is None:
            raise ValueError(f"{attack} takes no restarts (only attacks with random starts do)")
        return restarts

    def build_options(self) -> dict[str, Any]:
        """Returns the keyword options for :func:`~workbench.adversarial.attacks.build_attack`."""
        options: dict[str, Any] = {"seed": self.seed}
        if self.steps is not None:
            options[attack_budget(self.attack)[0]] = self.steps
        if self.restarts is not None:
            options["restarts"] = self.restarts
        return options


def attack_options(**values: Any) -> AttackOptions:
    """Validates one attack run's options (see :class:`AttackOptions`).

    Raises:
        WorkbenchError: one line naming the field and what is allowed.
    """
    try:
        return AttackOptions(**values)
    except ValidationError as exc:
        raise option_error(exc, AttackOptions.model_fields) from None


def read_upload(data: bytes, name: str) -> np.ndarray:
    """Decodes an uploaded image file to float32 H x W x 3 in [0, 1].

    Only PNG and JPEG (judged by content), at most :data:`~workbench.imageio.UPLOAD_MAX_BYTES`
    bytes and :data:`~workbench.imageio.UPLOAD_MAX_PIXELS` pixels (checked before decoding).

    Raises:
        WorkbenchError: ``uploaded file NAME: ...`` saying what is wrong.
    """
    image = decode_image(
        data,
        f"uploaded file {name}",
        PNG_JPEG,
        max_pixels=UPLOAD_MAX_PIXELS,
        max_bytes=UPLOAD_MAX_BYTES,
    )
    return np.asarray(image.convert("RGB"), np.float32) / 255.0


def model_input(model: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    """Converts an H x W x C image (uint8, or float in [0, 1]) to the model's 1 x C x S x S input,
    the way the DataModule harmonises its sources."""
    from workbench.data.transforms import harmonise

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
    restarts: int | None = None,
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
        restarts: runs from new random starts; None keeps the attack's default.

    Raises:
        WorkbenchError: an unknown attack or norm, an option out of its bounds (see
            :class:`AttackOptions`), or a label the model lacks.
    """
    from workbench.adversarial.attacks import build_attack
    from workbench.adversarial.model import as_logits_model
    from workbench.adversarial.perceptual import perturbation_stats
    from workbench.adversarial.threat import ThreatModel

    options = attack_options(
        attack=attack, norm=norm, eps=eps, steps=steps, restarts=restarts, seed=seed
    )
    classes = int(model.hparams.num_classes)
    if not 0 <= label < classes:
        raise WorkbenchError(f"label: must lie in [0, {classes}), got {label}")
    threat = ThreatModel(options.norm, options.eps)
    attacker = build_attack(options.attack, model, threat, **options.build_options())
    x_adv = attacker(x, torch.tensor([label]))
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
