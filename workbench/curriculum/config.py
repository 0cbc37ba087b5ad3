"""The ``data.curriculum`` options, checked at the boundary."""

from __future__ import annotations

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from workbench.curriculum.pacing import ORDERS, PACINGS
from workbench.curriculum.scorers import SCORERS
from workbench.errors import OptionModel


def _one_of(value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {value!r}; allowed: {', '.join(allowed)}")
    return value


class CurriculumConfig(OptionModel):
    """A curriculum: how items are scored and how fast the pool of items grows.

    Attributes:
        scorer: a key of :data:`workbench.curriculum.scorers.SCORERS`.
        pacing: a key of :data:`workbench.curriculum.pacing.PACINGS`.
        start: fraction of the training set in the pool at the first epoch, in (0, 1].
        full_at: training progress (epoch / max_epochs) from which the pool is the whole set.
        order: ``easy_first``, ``hard_first`` or ``random``.
        class_balanced: every class admits the same fraction of its own items.
        teacher_checkpoint: the teacher's checkpoint (``teacher`` scorer only).
        missing: score of items without a rendered difficulty (``difficulty`` scorer).
        target_sources: names of the target-domain (hard) sources (``domain`` scorer; default:
            the sources of kind digits or imagefolder).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    scorer: str
    pacing: str = "linear"
    start: float = Field(0.2, gt=0, le=1)
    full_at: float = Field(0.8, ge=0)
    order: str = "easy_first"
    class_balanced: bool = False
    teacher_checkpoint: str | None = Field(None, validate_default=True)
    missing: float = 1.0
    target_sources: list[str] | None = None

    @field_validator("scorer")
    @classmethod
    def _scorer(cls, value: str) -> str:
        return _one_of(value, SCORERS.names())

    @field_validator("pacing")
    @classmethod
    def _pacing(cls, value: str) -> str:
        return _one_of(value, list(PACINGS))

    @field_validator("order")
    @classmethod
    def _order(cls, value: str) -> str:
        return _one_of(value, list(ORDERS))

    @field_validator("teacher_checkpoint")
    @classmethod
    def _teacher(cls, value: str | None, info: ValidationInfo) -> str | None:
        scorer = info.data.get("scorer")
        if scorer is not None and (scorer == "teacher") != bool(value):
            raise ValueError(
                f"needed by the teacher scorer and only by it (scorer {scorer!r}, "
                f"teacher_checkpoint {value!r})"
            )
        return value

    @field_validator("target_sources")
    @classmethod
    def _targets(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        scorer = info.data.get("scorer")
        if value is not None and scorer is not None and scorer != "domain":
            raise ValueError(f"used by the domain scorer only, not by {scorer!r}")
        return value

