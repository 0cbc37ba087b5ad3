"""Datasets under a data root: discovery, a filterable sample index, statistics, paired views."""

from __future__ import annotations

import itertools
import json
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data.reader import PAIRS, Dataset, open_dataset
from workbench.data.writer import MANIFEST
from workbench.errors import WorkbenchError
from workbench.inspect.paths import relative_to_root, resolve_under, walk_under


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset folder found under the root.

    Attributes:
        path: folder relative to the root.
        name: the scene's name (from the manifest).
        kind: scene kind.
        condition: render condition.
        num_samples: samples in the dataset.
        complete: every shard is finished.
        group: the paired-conditions folder it belongs to (relative), or None.
        problem: why the manifest cannot be read, or None.
    """

    path: str
    name: str = ""
    kind: str = ""
    condition: str = ""
    num_samples: int = 0
    complete: bool = False
    group: str | None = None
    problem: str | None = None


def _info(root: Path, folder: Path, group: str | None) -> DatasetInfo:
    path = relative_to_root(root, folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        return DatasetInfo(
            path=path,
            name=str(manifest.get("name", folder.name)),
            kind=str(manifest.get("kind", "")),
            condition=str(manifest.get("condition", "")),
            num_samples=int(manifest.get("num_samples", 0)),
            complete=bool(manifest.get("complete")),
            group=group,
        )
    except (OSError, ValueError, AttributeError) as exc:
        return DatasetInfo(path=path, group=group, problem=f"unreadable {MANIFEST} ({exc})")


def find_datasets(root: str | Path, max_depth: int = 6) -> list[DatasetInfo]:
    """Lists the dataset folders (those holding ``manifest.json``) under ``root``.

    Hidden folders, shard and checkpoint folders and installed packages are not searched.
    """
    root = Path(root).resolve()
    found = []
    for folder, dirs, files in walk_under(root, max_depth, frozenset({"shards", "checkpoints"})):
        if MANIFEST in files:
            group = folder.parent if (folder.parent / PAIRS).is_file() else None
            found.append(_info(root, folder, group and relative_to_root(root, group)))
            dirs.clear()
    return sorted(found, key=lambda d: d.path)


def manifest_stamp(root: str | Path, relative: str) -> float:
    """Returns the modification time of a dataset's manifest (0 when it has none): a cache key
    that changes whenever the dataset is rewritten."""
    try:
        return (resolve_under(root, relative) / MANIFEST).stat().st_mtime
    except (OSError, WorkbenchError):
        return 0.0


def find_paired(root: str | Path) -> list[str]:
    """Lists the folders of paired condition sets (relative to ``root``)."""
    groups = {d.group for d in find_datasets(root) if d.group}
    return sorted(groups)


def open_under(
    root: str | Path, relative: str, modalities: Sequence[str] = ("rgb", "depth", "seg", "inst")
) -> Dataset:
    """Opens the dataset at ``relative`` under ``root``.

    Raises:
        WorkbenchError: the path leaves the root, or the dataset is missing, incomplete or has
            an unreadable manifest.
    """
    folder = resolve_under(root, relative)
    try:
        return open_dataset(folder, modalities)
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkbenchError(
            f"{folder / MANIFEST}: unreadable manifest ({exc}); re-render the dataset"
        ) from None


def load_sample(dataset: Dataset, index: int) -> dict[str, Any]:
    """Returns sample ``index`` (arrays and ``meta``).

    Raises:
        WorkbenchError: a file of the sample is missing or corrupt.
    """
    try:
        return dataset[index]
    except IndexError:
        raise WorkbenchError(
            f"sample {index}: out of range; {dataset.root} has {len(dataset)} samples"
        ) from None
    except WorkbenchError as exc:  # the reader names the damaged file
        raise WorkbenchError(
            f"sample {index} is unreadable: {exc}; check it with `workbench verify {dataset.root}`"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, zlib.error) as exc:
        raise WorkbenchError(
            f"{dataset.root}: sample {index} is unreadable ({type(exc).__name__}: {exc}); "
            f"check it with `workbench verify {dataset.root}`"
        ) from None


def sample_rows(root: str | Path, relatives: Iterable[str]) -> list[dict[str, Any]]:
    """Returns one row per sample of the given datasets: source (the dataset path), index,
    label, class, condition and difficulty, read from the sample JSON files only.

    Raises:
        WorkbenchError: a dataset cannot be opened or a sample JSON is corrupt.
    """
    rows = []
    for relative in relatives:
        dataset = open_under(root, relative, modalities=())
        for index in range(len(dataset)):
            meta = load_sample(dataset, index)["meta"]
            condition = meta.get("condition") or {}
            rows.append({
                "source": relative,
                "index": index,
                "label": int(meta["label"]),
                "class": meta.get("label_name") or "(none)",
                "condition": condition.get("name", dataset.condition),
                "difficulty": float(meta.get("difficulty", 0.0)),
            })  # fmt: skip
    return rows


def filter_rows(
    rows: Sequence[dict[str, Any]],
    classes: Iterable[str] | None = None,
    conditions: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    difficulty: tuple[float, float] = (0.0, 1.0),
) -> list[dict[str, Any]]:
    """Keeps the rows whose class, condition and source are among the given ones (None or
    empty keeps all) and whose difficulty lies in the closed range ``difficulty``."""
    wanted = {
        key: set(values)
        for key, values in (("class", classes), ("condition", conditions), ("source", sources))
        if values
    }
    low, high = difficulty
    return [
        row
        for row in rows
        if all(row[key] in values for key, values in wanted.items())
        and low <= row["difficulty"] <= high
    ]


def statistics(
    root: str | Path, rows: Sequence[dict[str, Any]], bins: int = 10, depth_samples: int = 64
) -> dict[str, Any]:
    """Summarises an index: class counts, a difficulty histogram, the depth range.

    Args:
        root: the data root the rows' sources lie under.
        rows: rows from :func:`sample_rows` (possibly filtered).
        bins: difficulty histogram bins over [0, 1].
        depth_samples: at most this many samples (evenly spaced) are read for the depth range.

    Returns:
        ``classes`` (name -> count), ``conditions`` (name -> count), ``difficulty``
        (``counts``, ``edges`` and bin ``labels``), ``depth`` (``min`` and ``max`` metres over hit
        pixels, None when no surface was hit) and ``count``.
    """
    counts, edges = np.histogram([r["difficulty"] for r in rows], bins=bins, range=(0.0, 1.0))
    picked = [
        rows[i] for i in np.linspace(0, len(rows) - 1, min(depth_samples, len(rows)), dtype=int)
    ]
    opened: dict[str, Dataset] = {}
    low, high = np.inf, -np.inf
    for row in picked:
        if row["source"] not in opened:
            opened[row["source"]] = open_under(root, row["source"], modalities=("depth",))
        depth = load_sample(opened[row["source"]], row["index"])["depth"]
        hit = depth[depth > 0]
        if hit.size:
            low, high = min(low, float(hit.min())), max(high, float(hit.max()))
    return {
        "count": len(rows),
        "classes": dict(sorted(Counter(r["class"] for r in rows).items())),
        "conditions": dict(sorted(Counter(r["condition"] for r in rows).items())),
        "difficulty": {
            "counts": counts.tolist(),
            "edges": edges.tolist(),
            "labels": [f"{lo:.1f}-{hi:.1f}" for lo, hi in itertools.pairwise(edges)],
        },
        "depth": {"min": low, "max": high} if np.isfinite(low) else {"min": None, "max": None},
    }


def paired_rgb(root: str | Path, group: str, index: int) -> dict[str, np.ndarray]:
    """Returns condition -> RGB image of sample ``index`` of a paired condition set.

    Raises:
        WorkbenchError: the folder leaves the root, is no paired set, or a file is corrupt.
    """
    folder = resolve_under(root, group)
    pairs = folder / PAIRS
    try:
        names = json.loads(pairs.read_text())["conditions"]
    except FileNotFoundError:
        raise WorkbenchError(f"{group}: no {PAIRS}; choose a folder of paired conditions") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkbenchError(f"{pairs}: unreadable ({exc}); re-render the set") from None
    return {
        name: load_sample(open_under(root, str(Path(group) / name), ("rgb",)), index)["rgb"]
        for name in names
    }
