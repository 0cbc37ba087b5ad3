"""What the units of a robustness evaluation find, as small dataclasses.

A unit's result is saved as a plain dict of its fields (:meth:`Unit.to_unit`: tensors, numbers,
strings, lists and dicts, what ``torch.load(weights_only=True)`` reads back); the report JSON is
built from these results by the runner, at the boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from torch import Tensor

from workbench.evaluation.cascade import CascadeResult


class Unit:
    """A result that is saved as one unit: a dataclass whose fields are JSON-ready or tensors."""

    def to_unit(self) -> dict[str, Any]:
        """Returns the fields as the dict a unit file holds."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_unit(cls, saved: dict[str, Any]):
        """Returns the result a unit file holds (see :meth:`to_unit`)."""
        return cls(**saved)


@dataclass
class Clean(Unit):
    """The clean predictions.

    Attributes:
        robust: bool per example, True where the model classifies it correctly.
    """

    robust: Tensor

    @property
    def accuracy(self) -> float:
        """Fraction of examples classified correctly."""
        return float(self.robust.float().mean())


@dataclass
class SweepPoint(Unit):
    """One epsilon of the sweep: every sweep attack on its own, then the worst case.

    Attributes:
        robust: per sweep attack, bool per example, True where the attack failed.
        acc: per sweep attack, its robust accuracy.
        worst_robust: bool per example, True where every attack and cascade stage failed.
        worst_acc: the worst-case robust accuracy.
        x_adv: per example the adversarial that broke it, else the last one tried.
        broken_by: per example the stage that broke it (``clean`` when misclassified to begin
            with), or None where it stands.
        stages: the cascade's stages (see :attr:`CascadeResult.stages`).
    """

    robust: dict[str, Tensor]
    acc: dict[str, float]
    worst_robust: Tensor
    worst_acc: float
    x_adv: Tensor
    broken_by: list[str | None]
    stages: list[dict[str, Any]]

    def worst(self) -> CascadeResult:
        """Returns the worst case as a cascade's state, to continue it."""
        return CascadeResult(self.x_adv, self.worst_robust, self.broken_by, [])


@dataclass
class Corruptions(Unit):
    """Accuracy under common corruptions.

    Attributes:
        acc: corruption -> severity -> accuracy.
    """

    acc: dict[str, dict[int, float]]

    def mean(self) -> float | None:
        """Returns the mean accuracy over corruptions and severities (None for none)."""
        values = [v for per in self.acc.values() for v in per.values()]
        return sum(values) / len(values) if values else None


@dataclass
class ConditionShift:
    """The model on one condition of paired renders.

    Attributes:
        acc: accuracy.
        agreement: fraction of predictions equal to those on the reference condition.
    """

    acc: float
    agreement: float


@dataclass
class Conditions(Unit):
    """The model on each condition of paired renders (the first is the reference).

    Attributes:
        shifts: condition name -> its accuracy and agreement.
    """

    shifts: dict[str, ConditionShift]

    def to_unit(self) -> dict[str, Any]:
        """Returns condition name -> ``{"acc", "agreement"}``, as the report shows them."""
        return {name: asdict(shift) for name, shift in self.shifts.items()}

    @classmethod
    def from_unit(cls, saved: dict[str, Any]) -> Conditions:
        """Returns the result a unit file holds (see :meth:`to_unit`)."""
        return cls({name: ConditionShift(**shift) for name, shift in saved.items()})


@dataclass
class LargeEps(Unit):
    """The strongest white-box attack at a radius that reaches a grey image.

    Attributes:
        acc: its robust accuracy.
    """

    acc: float


@dataclass
class BudgetStability(Unit):
    """The worst case at the middle epsilon, and after the strongest attack ran again with
    twice the budget.

    Attributes:
        single: worst-case accuracy with the evaluation's budget.
        doubled: worst-case accuracy after the doubled attack.
    """

    single: float
    doubled: float


@dataclass
class Examples:
    """Broken examples at one epsilon, for the report's figure.

    Attributes:
        eps: the radius.
        x: clean images (CPU).
        x_adv: their adversarials (CPU).
        label: class names (or indices, without names) of the labels.
        pred: the same of the predictions on the adversarials.
        attack: the stage that broke each.
    """

    eps: float
    x: Tensor
    x_adv: Tensor
    label: list[str | int]
    pred: list[str | int]
    attack: list[str]


@dataclass
class Evaluation:
    """The report (JSON-ready) and what the plots need beyond it.

    Attributes:
        report: the report, as ``report.json`` holds it.
        examples: broken examples for the figure, or None when no example was broken.
    """

    report: dict[str, Any]
    examples: Examples | None
