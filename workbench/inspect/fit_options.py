"""What a training run started from the app may say: typed overrides and a checked config.

The app never passes free text to ``workbench fit``. A run is a config file under the data root,
optionally a checkpoint under the root to resume, and the :class:`FitOptions` below; the config
is read with ``yaml.safe_load`` and refused, before any process starts, when it breaks a rule:

- no ``config`` or ``weights_only`` key at any depth (they read other files, or unpickle);
- every string, at any depth, is read as a path against the data root and against the config's
  own folder, and must stay under the root either way (absolute paths, ``~``, ``..`` and
  symlinks out of the root are refused); so ``trainer.default_root_dir: /tmp/x``,
  ``ckpt_path: /elsewhere/x.ckpt`` or ``data.init_args.sources[0].path: ../x`` are refused
  whatever their key;
- no string that holds a URL (``scheme://``), wherever it is;
- a ``class_path`` value, and any other string shaped like an import path (``a.b.C``), lies under
  ``workbench.``, ``pytorch_lightning.`` or ``torch.optim.``; a bare file name such as
  ``model.ckpt`` reads as an import path, so write it with a folder (``./model.ckpt``);
- strings that are themselves YAML mappings or lists, and YAML or JSON files a string names under
  the root, are checked by the same rules (the Lightning CLI would read them as configs).

The command line then sets ``--trainer.default_root_dir`` to ``ROOT/runs`` (whatever the config
says) and ``--weights_only true``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import WorkbenchError, option_error
from workbench.inspect.paths import relative_to_root, resolve_under

NAMESPACES = ("workbench.", "pytorch_lightning.", "torch.optim.")
FORBIDDEN_KEYS = frozenset({"config", "weights_only"})
MAX_CONFIG_BYTES = 256 * 1024
MAX_NODES = 20_000
MAX_NESTING = 3
CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".jsonnet"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class FitOptions(BaseModel):
    """The overrides a run started from the app may set; None keeps the config's value.

    Attributes:
        max_epochs: ``--trainer.max_epochs``.
        learning_rate: ``--model.init_args.lr`` (models with one learning rate).
        batch_size: ``--data.init_args.batch_size``.
        seed: ``--seed_everything``.
        devices: ``--trainer.devices`` (processes on CPU).
    """

    model_config = ConfigDict(extra="forbid")

    max_epochs: Annotated[int, Field(ge=1, le=1000)] | None = None
    learning_rate: Annotated[float, Field(ge=1e-7, le=1.0)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=4096)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    devices: Annotated[int, Field(ge=1, le=8)] | None = None

    def arguments(self) -> list[str]:
        """Returns the command-line arguments these options give to ``workbench fit``."""
        flags = {
            "max_epochs": "--trainer.max_epochs",
            "learning_rate": "--model.init_args.lr",
            "batch_size": "--data.init_args.batch_size",
            "seed": "--seed_everything",
            "devices": "--trainer.devices",
        }
        return [
            item
            for name, flag in flags.items()
            if getattr(self, name) is not None
            for item in (flag, repr(getattr(self, name)))
        ]


def fit_options(**values: Any) -> FitOptions:
    """Validates overrides given as keywords (see :class:`FitOptions`).

    Raises:
        WorkbenchError: one line naming the field and its allowed range.
    """
    try:
        return FitOptions(**values)
    except ValidationError as exc:
        raise option_error(exc, FitOptions.model_fields) from None


def _refuse(source: str, key: str, why: str) -> WorkbenchError:
    return WorkbenchError(f"{source}: {key or '(top level)'}: {why}")


class _Checker:
    """Walks one config (and what it names) against the rules in the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes = 0

    def file(self, path: Path, depth: int = 0) -> dict:
        source = relative_to_root(self.root, path)
        if depth > MAX_NESTING:
            raise WorkbenchError(f"{source}: configs nest more than {MAX_NESTING} files deep")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise WorkbenchError(f"{source}: larger than {MAX_CONFIG_BYTES // 1024} KB")
        try:
            data = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WorkbenchError(f"{source}: not valid YAML ({first})") from None
        if depth == 0 and not isinstance(data, dict):
            raise WorkbenchError(f"{source}: a training config must be a YAML mapping")
        self.node(data, "", source, path.parent, depth)
        return data

    def node(self, value: Any, key: str, source: str, folder: Path, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise WorkbenchError(f"{source}: more than {MAX_NODES} values; not a training config")
        if isinstance(value, dict):
            for name, item in value.items():
                name = str(name)
                if FORBIDDEN_KEYS & set(name.lstrip("-").split(".")):
                    raise _refuse(source, f"{key}.{name}".lstrip("."), "not allowed in the app")
                child = f"{key}.{name}".lstrip(".")
                if name == "class_path" or name.endswith(".class_path"):
                    self.class_path(item, child, source)
                self.node(item, child, source, folder, depth)
        elif isinstance(value, list):
            for number, item in enumerate(value):
                self.node(item, f"{key}[{number}]", source, folder, depth)
        elif isinstance(value, str):
            self.string(value, key, source, folder, depth)

    def class_path(self, value: Any, key: str, source: str) -> None:
        if not isinstance(value, str) or not value.startswith(NAMESPACES):
            raise _refuse(
                source, key, f"class {value!r} is not allowed; use a full class path under "
                f"{', '.join(NAMESPACES)}",
            )  # fmt: skip

    def string(self, value: str, key: str, source: str, folder: Path, depth: int) -> None:
        if _URL.search(value):
            raise _refuse(source, key, "URLs are not allowed; use a file under the data root")
        if "\0" in value:
            raise _refuse(source, key, "holds a NUL character")
        if _IMPORT_PATH.fullmatch(value) and not value.startswith(NAMESPACES):
            raise _refuse(
                source, key, f"{value!r} reads as an import path outside {', '.join(NAMESPACES)}"
                "; write a file name with its folder (./name.ext)",
            )  # fmt: skip
        targets = set()
        for base in (self.root, folder):
            try:
                targets.add(resolve_under(self.root, base / Path(value).expanduser()))
            except (WorkbenchError, OSError):
                raise _refuse(
                    source, key, f"{value[:80]!r} leads outside the data root; use a path under it"
                ) from None
        if any(c in value for c in "{[:-\n"):
            try:
                inner = yaml.safe_load(value)
            except yaml.YAMLError:
                inner = None
            if isinstance(inner, (dict, list)):
                self.node(inner, key, source, folder, depth)
        for target in targets:
            if target.suffix in CONFIG_SUFFIXES and target.is_file():
                self.file(target, depth + 1)


def check_config(root: str | Path, config: str | Path) -> dict:
    """Reads a training config under ``root`` and checks it against the rules of this module.

    Args:
        root: the data root.
        config: the config file, relative to the root or absolute under it.

    Returns:
        the parsed config.

    Raises:
        WorkbenchError: one line naming the file and the key that breaks a rule.
    """
    base = Path(root).resolve()
    path = resolve_under(base, config)
    if not path.is_file() or path.suffix not in (".yaml", ".yml"):
        raise WorkbenchError(f"{config}: no such config file (.yaml) under the data root")
    return _Checker(base).file(path)


def accepts_learning_rate(config: dict) -> bool:
    """Tells whether the config's model takes ``lr`` (True when it cannot be told)."""
    model = config.get("model")
    class_path = model.get("class_path") if isinstance(model, dict) else None
    if not isinstance(class_path, str) or not class_path.startswith("workbench."):
        return True
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return True
    return "lr" in inspect.signature(cls).parameters
