"""Label noise made on purpose and recorded, and items left out by a cleaning decision.

``noise: {kind, rate, seed}`` on a source flips labels of its training pool (before any
validation split is taken from it, as noise in collected data would be):

* ``symmetric``: each label, with probability ``rate``, becomes one of the other classes drawn
  uniformly (so ``rate`` is the noise rate);
* ``asymmetric``: each label of a class with a usual confusion, with probability ``rate``,
  becomes that confusion (digits: 2 -> 7, 3 -> 8, 5 <-> 6, 7 -> 1, as in Patrini et al. 2017);
  ``pairs`` names other confusions by class name;
* ``pairflip``: each label, with probability ``rate``, becomes the next class (Han et al.
  2018).

The flipped items (their index in the pool, true and given label) go to ``split.json`` so that a
cleaning method can be scored. ``exclude: FILE`` leaves out the items a cleaning run (``workbench
clean``) named for the source, by the same index.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from workbench.data.sources import source_labels
from workbench.errors import OptionModel, WorkbenchError

DIGIT_CONFUSIONS = {"2": "7", "3": "8", "5": "6", "6": "5", "7": "1"}


class NoiseOptions(OptionModel):
    """The label noise of a source.

    Attributes:
        kind: ``symmetric``, ``asymmetric`` or ``pairflip``.
        rate: probability that a label is flipped, in [0, 1).
        seed: seed of the flips.
        pairs: asymmetric confusions by class name (default: the digit confusions).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["symmetric", "asymmetric", "pairflip"]
    rate: float = Field(ge=0.0, lt=1.0)
    seed: int = 0
    pairs: dict[str, str] | None = None

    def flip(self, labels: np.ndarray, classes: list[str], prefix: str = "") -> np.ndarray:
        """Returns the given (noisy) labels for the true ``labels``; deterministic in ``seed``.

        Raises:
            WorkbenchError: asymmetric confusions that name classes the source does not have.
        """
        rng = np.random.default_rng(self.seed)
        count = len(classes)
        chosen = rng.random(len(labels)) < self.rate
        given = labels.copy()
        if self.kind == "symmetric":
            shift = rng.integers(1, count, len(labels))  # another class, uniformly
            given[chosen] = (labels[chosen] + shift[chosen]) % count
        elif self.kind == "pairflip":
            given[chosen] = (labels[chosen] + 1) % count
        else:
            target = np.arange(count)
            for source, dest in self._pairs(classes, prefix).items():
                target[classes.index(source)] = classes.index(dest)
            given[chosen] = target[labels[chosen]]
        return given

    def _pairs(self, classes: list[str], prefix: str) -> dict[str, str]:
        pairs = self.pairs if self.pairs is not None else DIGIT_CONFUSIONS
        unknown = sorted({name for pair in pairs.items() for name in pair} - set(classes))
        if unknown:
            hint = "" if self.pairs is not None else " (the default confusions are the digits')"
            raise WorkbenchError(
                f"{prefix}.pairs: classes {unknown} are not among the source's {classes}{hint}; "
                "name the confusions with pairs: {from: to}"
            )
        return pairs


class NoisyLabels:
    """A source whose labels are flipped by :class:`NoiseOptions`; everything else is the
    source's own.

    Args:
        source: the clean source (its training pool).
        noise: the noise.
        prefix: where the noise was set (for errors).
    """

    def __init__(self, source, noise: NoiseOptions, prefix: str = ""):
        self.source, self.noise = source, noise
        self.name, self.classes = source.name, source.classes
        self.skipped = getattr(source, "skipped", [])
        self.true = source_labels(source)
        self.given = noise.flip(self.true, list(source.classes), prefix)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.source[index], "label": int(self.given[index])}

    def labels(self) -> np.ndarray:
        """Returns the given (noisy) labels."""
        return self.given

    def report(self) -> dict[str, Any]:
        """The noise and every flipped item as ``[index, true label, given label]``."""
        flipped = np.flatnonzero(self.true != self.given)
        return {
            **self.noise.model_dump(exclude_none=True),
            "items": len(self.true),
            "flipped": [[int(i), int(self.true[i]), int(self.given[i])] for i in flipped],
        }


def read_exclude(path: str | Path, source_name: str, size: int) -> np.ndarray:
    """The items of source ``source_name`` that the exclude file at ``path`` leaves out.

    Args:
        path: a file written by ``workbench clean`` (``{"items": {source: [index, ...]}}``).
        source_name: the source's name in the config.
        size: the number of items of the source's training pool.

    Raises:
        WorkbenchError: a missing or malformed file, or indices the source does not have.
    """
    path = Path(path)
    try:
        items = json.loads(path.read_text())["items"]
        chosen = np.array(items.get(source_name, []), np.int64)
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: exclude file not found") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise WorkbenchError(
            f'{path}: not an exclude file (expected {{"items": {{source: [index, ...]}}}}, as '
            "workbench clean writes)"
        ) from None
    outside = chosen[(chosen < 0) | (chosen >= size)]
    if len(outside):
        raise WorkbenchError(
            f"{path}: names items {outside[:5].tolist()} of source {source_name!r}, which has "
            f"{size} training items; was it written for another config?"
        )
    return np.unique(chosen)
