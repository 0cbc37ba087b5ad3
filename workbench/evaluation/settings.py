"""What decides the numbers of a robustness evaluation: the user's choices checked, the budgets
that fill the rest, and the stage each attack runs as under them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from workbench.adversarial.attacks import ATTACKS
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError
from workbench.evaluation.cascade import PRESETS, Stage, capped_targets
from workbench.evaluation.corruptions import CORRUPTIONS, SEVERITIES

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
    corruptions: list[str] = field(default_factory=lambda: sorted(CORRUPTIONS))
    severities: list[int] = field(default_factory=lambda: list(SEVERITIES))

    def key(self) -> str:
        """Returns a short hash of the settings."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def applicable_attacks(norm: str) -> list[str]:
    """Returns the registered attacks that support ``norm`` and fit a norm-ball sweep."""
    return sorted(n for n, c in ATTACKS.items() if norm in c.norms and n not in NOT_IN_SWEEP)


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
) -> Settings:
    """Validates the user's choices and fills the rest from ``budget``.

    ``cascade`` names the AutoAttack version that completes the worst case (``standard``,
    ``plus`` or ``rand``, see :mod:`workbench.evaluation.cascade`).

    Raises:
        WorkbenchError: an unknown norm, budget, cascade, attack or corruption, an epsilon out
            of range, or a count below one; each names the option.
    """
    if budget not in BUDGETS:
        raise WorkbenchError(f"--budget: unknown {budget!r}; allowed: {', '.join(BUDGETS)}")
    if cascade not in PRESETS:
        raise WorkbenchError(f"--cascade: unknown {cascade!r}; allowed: {', '.join(PRESETS)}")
    if norm not in ("linf", "l2"):
        raise WorkbenchError(f"--norm: unknown {norm!r}; allowed: linf, l2")
    plan = BUDGETS[budget]
    eps = sorted(float(e) for e in (eps if eps else DEFAULT_EPS[budget][norm]))
    for value in eps:
        try:
            ThreatModel(norm, value)
        except WorkbenchError as error:
            raise WorkbenchError(f"--eps {value:g}: {error}") from None
    for name in attacks or ():
        if name not in ATTACKS:
            raise WorkbenchError(
                f"--attacks: unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}"
            )
        if norm not in ATTACKS[name].norms:
            raise WorkbenchError(
                f"--attacks: {name} supports {', '.join(ATTACKS[name].norms)}, not --norm {norm}"
            )
    if attacks:
        chosen = list(dict.fromkeys(attacks))
    elif plan.attacks:
        chosen = [a for a in plan.attacks if a in ATTACKS and norm in ATTACKS[a].norms]
    else:
        chosen = applicable_attacks(norm)
    for name in corruptions or ():
        if name not in CORRUPTIONS:
            raise WorkbenchError(
                f"--corruptions: unknown {name!r}; known: {', '.join(sorted(CORRUPTIONS))}"
            )
    values = {
        "--n": n if n is not None else plan.n,
        "--steps": steps if steps is not None else plan.steps,
        "--restarts": restarts if restarts is not None else plan.restarts,
        "--batch-size": batch_size,
    }
    for option, value in values.items():
        if not (isinstance(value, int) and value >= 1):
            raise WorkbenchError(f"{option}: must be a positive integer, got {value!r}")
    return Settings(
        norm=norm,
        eps=eps,
        attacks=chosen,
        budget=budget,
        n=values["--n"],
        steps=values["--steps"],
        restarts=values["--restarts"],
        queries=plan.queries,
        targets=plan.targets,
        cascade=cascade,
        batch_size=batch_size,
        seed=seed,
        corruptions=list(corruptions) if corruptions is not None else sorted(CORRUPTIONS),
    )


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
