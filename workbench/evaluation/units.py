"""Resumable work: the finished units of an evaluation, saved under ``OUT/units/`` and reused
by a rerun of the same evaluation (the same settings, model weights and data)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from workbench.evaluation.results import Unit
from workbench.evaluation.settings import Settings

U = TypeVar("U", bound=Unit)


def fingerprint(
    settings: Settings, model: nn.Module, x: Tensor, y: Tensor, conditions: dict | None
) -> str:
    """Returns a hash of the settings, the model's weights and the data: saved units are reused
    only for the same evaluation (a retrained checkpoint in the same folder starts afresh)."""
    digest = hashlib.sha1(settings.key().encode())
    tensors = [*model.state_dict().values(), x, y, *(conditions or {}).values()]
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class UnitStore:
    """Finished units of one evaluation, saved as ``OUT/units/<name>.pt`` (each result's fields:
    tensors and JSON-ready values); cleared when the evaluation changes.

    Args:
        out: the report folder, or None to keep nothing.
        key: the evaluation's :func:`fingerprint`.
    """

    def __init__(self, out: Path | None, key: str):
        self.folder = None if out is None else Path(out) / "units"
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = self.folder / "settings.key"
        if not stamp.is_file() or stamp.read_text() != key:
            for old in self.folder.glob("*.pt"):
                old.unlink()
            stamp.write_text(key)

    def _path(self, name: str) -> Path:
        return self.folder / (name.replace("/", "_") + ".pt")

    def get(self, name: str, kind: type[U]) -> U | None:
        """Returns the saved result of unit ``name`` as a ``kind``, or None."""
        if self.folder is None or not self._path(name).is_file():
            return None
        return kind.from_unit(torch.load(self._path(name), map_location="cpu", weights_only=True))

    def put(self, name: str, value: U) -> U:
        """Saves the result of unit ``name`` atomically and returns it."""
        if self.folder is not None:
            partial = self._path(name).with_suffix(".partial")
            torch.save(value.to_unit(), partial)
            partial.replace(self._path(name))
        return value
