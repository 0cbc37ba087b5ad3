"""Paths the app may touch: everything it opens must lie under the data root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import WorkbenchError

APP_STATE = ".workbench-app"
MAX_TEXT_BYTES = 4 * 1024 * 1024


def resolve_under(root: str | Path, relative: str | Path) -> Path:
    """Returns ``root / relative`` fully resolved, refusing anything outside ``root``.

    Symlinks and ``..`` are resolved before the check, so neither can lead out of the root. An
    absolute ``relative`` is accepted only when it already lies under the root.

    Args:
        root: the data root.
        relative: a path inside the root (relative to it, or absolute).

    Raises:
        WorkbenchError: the path resolves outside the root.
    """
    base = Path(root).expanduser().resolve()
    target = (base / Path(relative).expanduser()).resolve()
    if not target.is_relative_to(base):
        raise WorkbenchError(
            f"{relative}: outside the data root {base}; choose a path under it "
            "(or restart the app with another --data-root)"
        )
    return target


def read_small_text(path: Path) -> str | None:
    """The text of a file the app shows (None when it does not exist).

    Raises:
        WorkbenchError: the file is over :data:`MAX_TEXT_BYTES`.
    """
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise WorkbenchError(f"{path.name}: over {MAX_TEXT_BYTES // 2**20} MiB; not shown")
    return path.read_text(errors="replace")


def relative_to_root(root: str | Path, path: str | Path) -> str:
    """Returns ``path`` relative to the resolved data root, as text (``.`` for the root)."""
    return str(Path(path).resolve().relative_to(Path(root).resolve())) or "."


def state_dir(root: str | Path, *parts: str) -> Path:
    """Returns (and creates) the app's own folder under the root: ``ROOT/.workbench-app/...``."""
    folder = Path(root).resolve().joinpath(APP_STATE, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


PRUNE = frozenset({"__pycache__", "node_modules", "site-packages"})


def walk_under(
    root: str | Path, max_depth: int = 6, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` over ``root`` that skips hidden folders, installed packages and ``skip``.

    Yields ``(folder, dirs, files)``; clearing ``dirs`` stops the walk below ``folder``.
    """
    root = Path(root).resolve()
    for current, dirs, files in os.walk(root):
        folder = Path(current)
        depth = len(folder.relative_to(root).parts)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in PRUNE | skip and depth < max_depth
        )
        yield folder, dirs, sorted(files)
