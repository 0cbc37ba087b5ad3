"""Search spaces: ``SPACE.yaml`` maps dotted config keys to distributions.

Example::

    model.init_args.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
    data.init_args.batch_size: {type: choice, values: [32, 64, 128]}

Types: ``loguniform`` and ``uniform`` (``low`` < ``high``), ``quniform`` (also ``q`` > 0),
``randint`` (integers, ``high`` exclusive as in Ray Tune) and ``choice`` (``values``).
A key is a dotted path with list indices where the config has a list
(``data.init_args.sources[1].weights.train``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import WorkbenchError, option_error

KEY = re.compile(r"[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)*")
MAX_SPACE_BYTES = 256 * 1024


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low {self.low} and high {self.high}")
        return self


class LogUniform(_Range):
    """Log-uniform on [low, high]; both above zero."""

    type: Literal["loguniform"]

    @model_validator(mode="after")
    def _positive(self) -> LogUniform:
        if self.low <= 0:
            raise ValueError(f"low must be above 0 for loguniform, got {self.low}")
        return self

    def to_ray(self) -> Any:
        from ray import tune

        return tune.loguniform(self.low, self.high)


class Uniform(_Range):
    """Uniform on [low, high]."""

    type: Literal["uniform"]

    def to_ray(self) -> Any:
        from ray import tune

        return tune.uniform(self.low, self.high)


class QUniform(_Range):
    """Uniform on [low, high], rounded to a multiple of ``q``."""

    type: Literal["quniform"]
    q: float = Field(gt=0)

    def to_ray(self) -> Any:
        from ray import tune

        return tune.quniform(self.low, self.high, self.q)


class RandInt(_Range):
    """An integer in [low, high) (``high`` exclusive, as in Ray Tune)."""

    type: Literal["randint"]
    low: int
    high: int

    def to_ray(self) -> Any:
        from ray import tune

        return tune.randint(self.low, self.high)


class Choice(BaseModel):
    """One of ``values`` (numbers, strings, booleans, lists or mappings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["choice"]
    values: list[Any] = Field(min_length=1)

    def to_ray(self) -> Any:
        from ray import tune

        return tune.choice(self.values)


Distribution = LogUniform | Uniform | QUniform | RandInt | Choice
TYPES: dict[str, type[Distribution]] = {
    "loguniform": LogUniform,
    "uniform": Uniform,
    "quniform": QUniform,
    "randint": RandInt,
    "choice": Choice,
}


def parse_space(data: Any, source: str = "space") -> dict[str, Distribution]:
    """Checks a space given as a mapping; returns key -> distribution, in the given order.

    Args:
        data: the loaded YAML.
        source: the file name used in messages.

    Raises:
        WorkbenchError: one line naming the file, the key and what is allowed.
    """
    if not isinstance(data, dict) or not data:
        raise WorkbenchError(
            f"{source}: expected a mapping of dotted config keys to distributions "
            "(for example model.init_args.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2})"
        )
    space = {}
    for key, spec in data.items():
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise WorkbenchError(
                f"{source}: {key!r} is not a dotted config key such as model.init_args.lr "
                "or data.init_args.sources[1].weights.train"
            )
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in TYPES:
            raise WorkbenchError(
                f"{source}: {key}.type: must be one of {', '.join(TYPES)}, got {kind!r}"
            )
        model = TYPES[kind]
        try:
            space[key] = model.model_validate(spec)
        except ValidationError as exc:
            raise WorkbenchError(
                f"{source}: {option_error(exc, list(model.model_fields), prefix=key)}"
            ) from None
    return space


def load_space(path: str | Path) -> dict[str, Distribution]:
    """Reads and checks ``SPACE.yaml`` (see :func:`parse_space`).

    Raises:
        WorkbenchError: a missing, oversized or malformed file, or a bad entry, in one line.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"--space: {path} is not a file; give a SPACE.yaml")
    if path.stat().st_size > MAX_SPACE_BYTES:
        raise WorkbenchError(f"--space: {path} is over {MAX_SPACE_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    return parse_space(data, str(path))
