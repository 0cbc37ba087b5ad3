"""Sweeps of ``workbench tune`` under a data root: discovery and what each one holds (its trial
table, plot, best overlay and summary), read within size limits."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.inspect.paths import (
    read_small_text,
    relative_to_root,
    resolve_under,
    walk_under,
)
from workbench.training.tuning import BEST, PLOT, SETTINGS, SUMMARY, TABLE


@dataclass(frozen=True)
class SweepInfo:
    """One sweep folder.

    Attributes:
        path: the folder relative to the root.
        trials: rows of its trial table so far (0 while the first trial runs).
        finished: whether the sweep wrote its summary (it ended).
        modified: last change of its table or settings (seconds since the epoch).
    """

    path: str
    trials: int
    finished: bool
    modified: float


@dataclass(frozen=True)
class Sweep:
    """What a sweep folder holds, for display.

    Attributes:
        table: the trial table's rows.
        summary: ``summary.json`` (None until the sweep ends).
        best_yaml: the best trial's overlay (None until the sweep ends).
        plot: the plot's path (None until the sweep ends).
    """

    table: list[dict[str, str]]
    summary: dict[str, Any] | None
    best_yaml: str | None
    plot: Path | None


def _rows(text: str | None) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text))) if text else []


def find_sweeps(root: str | Path, max_depth: int = 6) -> list[SweepInfo]:
    """Lists the sweep folders (holding ``tune.json``) under ``root``, newest first."""
    found = []
    for folder, dirs, files in walk_under(root, max_depth, frozenset({"shards"})):
        if SETTINGS not in files:
            continue
        dirs.clear()  # a sweep's trial runs are listed as runs, not searched for sweeps
        table = folder / TABLE
        stamp = table if table.is_file() else folder / SETTINGS
        found.append(
            SweepInfo(
                path=relative_to_root(root, folder),
                trials=len(_rows(read_small_text(table))) if table.is_file() else 0,
                finished=(folder / SUMMARY).is_file(),
                modified=stamp.stat().st_mtime,
            )
        )
    return sorted(found, key=lambda s: s.modified, reverse=True)


def read_sweep(root: str | Path, relative: str | Path) -> Sweep:
    """Reads the sweep at ``relative`` (under ``root``).

    Raises:
        WorkbenchError: a path outside the root, a folder that is not a sweep, or a file too
            large or not readable as its format.
    """
    folder = resolve_under(root, relative)
    if not (folder / SETTINGS).is_file():
        raise WorkbenchError(f"{relative}: not a sweep folder (no {SETTINGS})")
    summary_text = read_small_text(folder / SUMMARY)
    try:
        summary = json.loads(summary_text) if summary_text else None
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"{relative}/{SUMMARY}: not JSON ({exc.msg})") from None
    plot = folder / PLOT
    return Sweep(
        table=_rows(read_small_text(folder / TABLE)),
        summary=summary,
        best_yaml=read_small_text(folder / BEST),
        plot=plot if plot.is_file() else None,
    )
