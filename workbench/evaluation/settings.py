"""What decides the numbers of a robustness evaluation: the user's choices checked, the budgets
that fill the rest, and the stage each attack runs as under them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Annotated

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    field_validator,
)

from workbench.adversarial.attacks import ATTACKS
from workbench.adversarial.threat import NORMS, ThreatModel
from workbench.errors import OptionModel, WorkbenchError
from workbench.evaluation.cascade import PRESETS, Stage, capped_targets
from workbench.evaluation.corruptions import CORRUPTIONS, PARAMETER_SETS, SEVERITIES
from workbench.evaluation.depth_corruptions import DEPTH_CORRUPTIONS

# Attacks that need a threat model of their own (a perceptual bound) stay out of the sweep.
NOT_IN_SWEEP = ("ssim-pgd",)
DEFAULT_EPS = {
    "quick": {"linf": [0.05, 0.1, 0.2], "l2": [0.5, 1.0, 2.0]},
    "standard": {"linf": [0.025, 0.05, 0.1, 0.2, 0.3], "l2": [0.25, 0.5, 1.0, 2.0, 3.0]},
}


@dataclass(frozen=True)
class Budget:
    """How hard the evaluation tries.

    Attributes:
        n: examples evaluated.
        steps: iterations of every iterative white-box attack.
        restarts: random restarts of the attacks that have them.
        queries: model queries of black-box attacks.
        targets: target classes of the targeted stages (APGD-T, FAB-T).
        attacks: the sweep's attacks when none are named (None = all applicable).
    """

    n: int
    steps: int
    restarts: int
    queries: int
    targets: int
    attacks: tuple[str, ...] | None = None


# standard: AutoAttack's budget (100 steps, 5000 Square queries, 9 target classes)
BUDGETS = {
    "quick": Budget(n=64, steps=10, restarts=1, queries=100, targets=3, attacks=("fgsm", "pgd")),
    "standard": Budget(n=256, steps=100, restarts=1, queries=5000, targets=9),
}


@dataclass
class Settings:
    """Everything that decides the numbers of an evaluation (and so the resume key)."""

    norm: str = "linf"
    eps: list[float] = field(default_factory=list)
    attacks: list[str] = field(default_factory=list)
    budget: str = "standard"
    n: int = 256
    steps: int = 50
    restarts: int = 1
    queries: int = 1000
    targets: int = 9
    cascade: str = "standard"
    batch_size: int = 128
    seed: int = 0
    corruptions: list[str] = field(default_factory=lambda: list(ALL_CORRUPTIONS))
    severities: list[int] = field(default_factory=lambda: list(SEVERITIES))
    corruptions_named: bool = False
    corruption_parameters: str = "cifar10c"

    def key(self) -> str:
        """Returns a short hash of the settings."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


ALL_CORRUPTIONS = (*sorted(CORRUPTIONS), *sorted(DEPTH_CORRUPTIONS))
"""The common corruptions, then the depth-aware ones (run only on data with depth)."""


def applicable_attacks(norm: str) -> list[str]:
    """Returns the registered attacks that support ``norm`` and fit a norm-ball sweep."""
    return sorted(n for n, c in ATTACKS.items() if norm in c.norms and n not in NOT_IN_SWEEP)


def _one_of(value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {value!r}; allowed: {', '.join(allowed)}")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


Count = Annotated[int, AfterValidator(_positive)]
"""A positive integer option."""
# radii may come as ints, strings or numpy numbers, read as floats
Radii = Annotated[list[Annotated[float, Strict(False)]] | None, Field(strict=False)]
"""Radii as a list (ints, strings or numpy numbers read as floats), or None."""
Names = Annotated[list[str] | None, Field(strict=False)]
"""Names as a list, or None."""


class SweepOptions(OptionModel):
    """The choices every robustness evaluation (classifier or dense) has, checked.

    Attributes:
        norm: ``linf`` or ``l2``.
        eps: the sweep's radii (default: the budget's for the norm).
        corruptions: the common and depth-aware corruptions (default: all; the depth-aware
            ones run on data with depth only).
        corruption_parameters: the corruptions' parameter table, ``cifar10c`` (CIFAR-10-C's,
            for small images) or ``imagenet_c`` (ImageNet-C's, images of 32 pixels or more).
        n: examples (default: the budget's).
        steps: iterations of the iterative attacks (default: the budget's).
        seed: seed of the attacks and corruptions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    norm: str = "linf"
    eps: Radii = None
    corruptions: Names = None
    corruption_parameters: str = "cifar10c"
    n: Count | None = None
    steps: Count | None = None
    seed: int = 0

    @field_validator("norm")
    @classmethod
    def _norm(cls, value: str) -> str:
        return _one_of(value, NORMS)

    @field_validator("eps")
    @classmethod
    def _eps(cls, radii: list[float] | None, info: ValidationInfo) -> list[float] | None:
        norm = info.data.get("norm")
        if norm is None:  # a bad norm, named first
            return radii
        for value in sorted(radii or []):
            try:
                ThreatModel(norm, value)
            except WorkbenchError as error:  # the threat model names eps itself
                raise ValueError(str(error).removeprefix("eps: ")) from None
        return radii

    @field_validator("corruption_parameters")
    @classmethod
    def _table(cls, value: str) -> str:
        return _one_of(value, PARAMETER_SETS)

    @field_validator("corruptions")
    @classmethod
    def _corruptions(cls, names: list[str] | None) -> list[str] | None:
        for name in names or ():
            if name not in ALL_CORRUPTIONS:
                raise ValueError(f"unknown {name!r}; known: {', '.join(ALL_CORRUPTIONS)}")
        return names


class RobustnessOptions(SweepOptions):
    """The user's choices of a classifier's evaluation, checked (those of
    :class:`SweepOptions` first); :meth:`settings` fills the rest from the budget.

    Attributes:
        budget: a key of :data:`BUDGETS`.
        cascade: the AutoAttack version that completes the worst case (``standard``, ``plus``
            or ``rand``, see :mod:`workbench.evaluation.cascade`).
        attacks: the sweep's attacks (default: the budget's, else every one that fits the norm).
        restarts: restarts of the attacks that have them (default: the budget's).
        batch_size: points per model call.
    """

    budget: str = "standard"
    cascade: str = "standard"
    attacks: Names = None
    restarts: Count | None = None
    batch_size: Count = 128

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        return _one_of(value, list(BUDGETS))

    @field_validator("cascade")
    @classmethod
    def _cascade(cls, value: str) -> str:
        return _one_of(value, PRESETS)

    @field_validator("attacks")
    @classmethod
    def _attacks(cls, names: list[str] | None, info: ValidationInfo) -> list[str] | None:
        norm = info.data.get("norm")
        for name in names or ():
            if name not in ATTACKS:
                raise ValueError(f"unknown attack {name!r}; known: {', '.join(ATTACKS.names())}")
            if norm and norm not in ATTACKS[name].norms:
                raise ValueError(f"{name} supports {', '.join(ATTACKS[name].norms)}, not {norm}")
        return names

    def settings(self) -> Settings:
        """Returns the settings: these choices, and the budget's for the rest."""
        plan = BUDGETS[self.budget]
        if self.attacks:
            chosen = list(dict.fromkeys(self.attacks))
        elif plan.attacks:
            chosen = [a for a in plan.attacks if a in ATTACKS and self.norm in ATTACKS[a].norms]
        else:
            chosen = applicable_attacks(self.norm)
        corruptions = self.corruptions
        return Settings(
            norm=self.norm,
            eps=sorted(float(e) for e in (self.eps or DEFAULT_EPS[self.budget][self.norm])),
            attacks=chosen,
            budget=self.budget,
            n=plan.n if self.n is None else self.n,
            steps=plan.steps if self.steps is None else self.steps,
            restarts=plan.restarts if self.restarts is None else self.restarts,
            queries=plan.queries,
            targets=plan.targets,
            cascade=self.cascade,
            batch_size=self.batch_size,
            seed=self.seed,
            corruptions=list(corruptions) if corruptions is not None else list(ALL_CORRUPTIONS),
            corruptions_named=corruptions is not None,
            corruption_parameters=self.corruption_parameters,
        )


def make_settings(
    norm: str = "linf",
    eps: Sequence[float] | None = None,
    attacks: Sequence[str] | None = None,
    budget: str = "standard",
    n: int | None = None,
    steps: int | None = None,
    restarts: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
    corruptions: Sequence[str] | None = None,
    cascade: str = "standard",
    corruption_parameters: str = "cifar10c",
) -> Settings:
    """Validates the user's choices and fills the rest from ``budget`` (the fields of
    :class:`RobustnessOptions`).

    Raises:
        WorkbenchError: an unknown norm, budget, cascade, attack or corruption, an epsilon out
            of range, or a count below one; each names the parameter.
    """
    options = {
        "norm": norm,
        "eps": eps,
        "attacks": attacks,
        "budget": budget,
        "n": n,
        "steps": steps,
        "restarts": restarts,
        "batch_size": batch_size,
        "seed": seed,
        "corruptions": corruptions,
        "cascade": cascade,
        "corruption_parameters": corruption_parameters,
    }
    return RobustnessOptions.from_dict(options).settings()


def stage_for(name: str, settings: Settings, num_classes: int, scale: int = 1) -> Stage:
    """Returns the stage of attack ``name`` under the settings' budget for a model with
    ``num_classes`` classes (``scale`` multiplies steps, queries and restarts); attacks that
    can pick their own targets (APGD-DLR, FAB) run targeted."""
    cls = ATTACKS[name]
    wanted = {
        "steps": settings.steps * scale,
        "restarts": settings.restarts * scale,
        "queries": settings.queries * scale,
    }
    targeted = "target_classes" in cls.defaults and cls.target_optional
    if targeted:
        wanted["target_classes"] = capped_targets(settings.targets, num_classes)
    options = {k: v for k, v in wanted.items() if k in cls.defaults}
    return Stage(name, options, targeted)
