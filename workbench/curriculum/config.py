"""The ``data.curriculum`` options, checked at the boundary."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from workbench.curriculum.pacing import ORDERS, PACINGS
from workbench.curriculum.scorers import SCORERS
from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class CurriculumConfig:
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

    scorer: str
    pacing: str = "linear"
    start: float = 0.2
    full_at: float = 0.8
    order: str = "easy_first"
    class_balanced: bool = False
    teacher_checkpoint: str | None = None
    missing: float = 1.0
    target_sources: list[str] | None = None

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> CurriculumConfig:
        """Builds and checks a config from the YAML mapping.

        Raises:
            WorkbenchError: an unknown key or value, naming it.
        """
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise WorkbenchError(
                f"data.curriculum: unknown keys {unknown}; allowed: {', '.join(known)}"
            )
        if "scorer" not in options:
            raise WorkbenchError(
                f"data.curriculum.scorer: required; one of {', '.join(sorted(SCORERS))}"
            )
        config = cls(**options)
        config._check()
        return config

    def _check(self) -> None:
        for key, value, allowed in (
            ("scorer", self.scorer, sorted(SCORERS)),
            ("pacing", self.pacing, list(PACINGS)),
            ("order", self.order, list(ORDERS)),
        ):
            if value not in allowed:
                raise WorkbenchError(
                    f"data.curriculum.{key}: unknown {value!r}; allowed: {', '.join(allowed)}"
                )
        for key in ("start", "full_at", "missing"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise WorkbenchError(f"data.curriculum.{key}: must be a number, got {value!r}")
        if not isinstance(self.class_balanced, bool):
            raise WorkbenchError(
                f"data.curriculum.class_balanced: must be true or false, got {self.class_balanced!r}"
            )
        targets = self.target_sources
        if targets is not None and not (
            isinstance(targets, list) and all(isinstance(t, str) for t in targets)
        ):
            raise WorkbenchError(
                f"data.curriculum.target_sources: must be a list of source names, got {targets!r}"
            )
        if not 0 < self.start <= 1:
            raise WorkbenchError(f"data.curriculum.start: must be in (0, 1], got {self.start}")
        if not self.full_at >= 0:
            raise WorkbenchError(f"data.curriculum.full_at: must be >= 0, got {self.full_at}")
        if (self.scorer == "teacher") != bool(self.teacher_checkpoint):
            raise WorkbenchError(
                "data.curriculum.teacher_checkpoint: needed by the teacher scorer and only by it "
                f"(scorer {self.scorer!r}, teacher_checkpoint {self.teacher_checkpoint!r})"
            )
        if self.target_sources is not None and self.scorer != "domain":
            raise WorkbenchError(
                f"data.curriculum.target_sources: used by the domain scorer only, not by "
                f"{self.scorer!r}"
            )
