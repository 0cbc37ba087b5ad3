"""Cleaning runs of ``workbench clean`` under a data root: discovery, the top suspects with their
images, and a reviewer's keep / exclude decisions written back to ``exclude.json``."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data.sources import SourceSpec, build_source
from workbench.errors import WorkbenchError
from workbench.inspect.paths import read_small_text, relative_to_root, resolve_under, walk_under
from workbench.training.cleaning import EXCLUDE, REPORT, SETTINGS, SUSPECTS
from workbench.training.cleaning.run import exclude_items

DECISIONS = ("exclude", "keep")


@dataclass(frozen=True)
class CleaningInfo:
    """One cleaning folder.

    Attributes:
        path: the folder relative to the root.
        finished: whether it wrote its report.
        modified: last change of its report or settings (seconds since the epoch).
    """

    path: str
    finished: bool
    modified: float


@dataclass(frozen=True)
class Suspect:
    """A flagged training item, with the decision now in force for it."""

    rank: int
    source: str
    item: int
    given: str
    predicted: str
    score: float
    decision: str

    @property
    def key(self) -> str:
        """``source/item``: how ``exclude.json`` names the item's review."""
        return f"{self.source}/{self.item}"


@dataclass(frozen=True)
class Cleaning:
    """What a finished cleaning folder holds, for display.

    Attributes:
        report: ``report.json``.
        suspects: the top flagged items (most suspect first).
        excluded: items left out per source, reviews included.
    """

    report: dict[str, Any]
    suspects: list[Suspect]
    excluded: dict[str, int]


def find_cleanings(root: str | Path, max_depth: int = 6) -> list[CleaningInfo]:
    """Lists the cleaning folders (holding ``clean.json``) under ``root``, newest first."""
    found = []
    for folder, dirs, files in walk_under(root, max_depth, frozenset({"shards"})):
        if SETTINGS not in files:
            continue
        dirs.clear()
        stamp = folder / REPORT if (folder / REPORT).is_file() else folder / SETTINGS
        found.append(CleaningInfo(relative_to_root(root, folder), (folder / REPORT).is_file(),
                                  stamp.stat().st_mtime))  # fmt: skip
    return sorted(found, key=lambda c: c.modified, reverse=True)


def _folder(root: str | Path, relative: str | Path) -> Path:
    folder = resolve_under(root, relative)
    if not (folder / SETTINGS).is_file():
        raise WorkbenchError(f"{relative}: not a cleaning folder (no {SETTINGS})")
    if not (folder / REPORT).is_file():
        raise WorkbenchError(f"{relative}: the cleaning has not finished (no {REPORT} yet)")
    return folder


def _json(folder: Path, name: str, relative: str | Path) -> dict[str, Any]:
    try:
        return json.loads(read_small_text(folder / name) or "{}")
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"{relative}/{name}: not JSON ({exc.msg})") from None


def read_cleaning(root: str | Path, relative: str | Path, top: int = 48) -> Cleaning:
    """Reads the cleaning at ``relative`` (under ``root``) with its ``top`` suspects.

    Raises:
        WorkbenchError: a path outside the root, a folder that is not a finished cleaning, or a
            file too large or not in its format.
    """
    folder = _folder(root, relative)
    exclude = _json(folder, EXCLUDE, relative)
    reviewed = exclude.get("reviewed", {})
    rows = list(csv.DictReader(io.StringIO(read_small_text(folder / SUSPECTS) or "")))
    try:
        suspects = [
            Suspect(int(r["rank"]), r["source"], int(r["item"]), r["given"], r["predicted"],
                    float(r["score"]), reviewed.get(f"{r['source']}/{r['item']}", "exclude"))
            for r in rows[:top]
        ]  # fmt: skip
    except (KeyError, ValueError):
        raise WorkbenchError(f"{relative}/{SUSPECTS}: not a suspects table") from None
    excluded = {name: len(ids) for name, ids in exclude.get("items", {}).items()}
    return Cleaning(_json(folder, REPORT, relative), suspects, excluded)


def suspect_images(root: str | Path, relative: str | Path, suspects: list[Suspect]) -> list:
    """The images (float H x W x C in [0, 1]) of ``suspects``, read from the sources of the
    cleaned config; a source folder outside the data root is refused.

    Raises:
        WorkbenchError: a source path outside the root, or a source that cannot be read.
    """
    folder = _folder(root, relative)
    config = _json(folder, SETTINGS, relative)["config"]
    specs = {}
    for spec in config["data"]["init_args"]["sources"]:
        spec = {k: v for k, v in spec.items() if k not in ("noise", "exclude")}
        if spec.get("path"):
            spec["path"] = str(resolve_under(root, spec["path"]))
        specs[spec.get("name") or spec["kind"]] = SourceSpec(**spec)
    pools: dict[str, Any] = {}
    images = []
    for suspect in suspects:
        if suspect.source not in pools:
            if suspect.source not in specs:
                raise WorkbenchError(f"{relative}: no source named {suspect.source!r}")
            pools[suspect.source] = build_source(specs[suspect.source])["train"]
        images.append(np.asarray(pools[suspect.source][suspect.item]["image"]))
    return images


def review(root: str | Path, relative: str | Path, decisions: dict[str, str]) -> dict[str, int]:
    """Records a reviewer's decisions (``source/item`` -> ``exclude`` or ``keep``) in
    ``exclude.json`` (atomically); returns the items now left out per source.

    Raises:
        WorkbenchError: a decision other than ``exclude`` or ``keep``, or a folder that is not a
            finished cleaning.
    """
    folder = _folder(root, relative)
    bad = sorted(set(decisions.values()) - set(DECISIONS))
    if bad:
        raise WorkbenchError(f"decisions: {bad} not allowed; allowed: {', '.join(DECISIONS)}")
    exclude = _json(folder, EXCLUDE, relative)
    exclude["reviewed"] = {**exclude.get("reviewed", {}), **decisions}
    exclude["items"] = exclude_items(exclude.get("flagged", {}), exclude["reviewed"])
    partial = folder / f"{EXCLUDE}.partial"
    partial.write_text(json.dumps(exclude, indent=1))
    os.replace(partial, folder / EXCLUDE)
    return {name: len(ids) for name, ids in exclude["items"].items()}
