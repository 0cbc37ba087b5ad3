"""What every export shares: the datasets behind a folder (one, or one per paired condition),
the check that a format fits them, and a staged output folder that appears whole or not at all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.data.reader import Dataset, open_paired
from workbench.data.writer import check_folder_path
from workbench.errors import WorkbenchError


def condition_sets(data: str | Path, modalities: tuple[str, ...]) -> dict[str, Dataset]:
    """Returns the datasets of ``data``: ``{condition: dataset}``, one entry for a plain
    dataset, one per condition for a paired-conditions folder.

    Raises:
        WorkbenchError: ``data`` is neither (or a set is unfinished or unreadable).
    """
    return open_paired(data, modalities)


def require_boxes(sets: dict[str, Dataset], fmt: str) -> None:
    """Refuses datasets without object boxes for a detection format.

    Raises:
        WorkbenchError: naming the dataset, why it has none and which formats fit it.
    """
    for dataset in sets.values():
        if dataset.manifest.get("dense_labels") is False or "objects" not in dataset.meta(0):
            raise WorkbenchError(
                f"{dataset.root}: has no object boxes ({dataset.manifest.get('kind', 'this')} "
                f"data carries image labels only), so it cannot be exported as {fmt}; export it "
                "as hf or webdataset"
            )


@contextmanager
def staged_folder(out: str | Path, force: bool) -> Iterator[Path]:
    """Yields an empty staging folder beside ``out`` that becomes ``out`` when the block ends
    without an error (replacing an existing ``out`` only with ``force``); on an error or a kill
    nothing at ``out`` changes and the staging folder is removed (or left to be replaced by the
    next run).

    Raises:
        WorkbenchError: ``out`` is a file, or exists and ``force`` is off.
    """
    out = Path(out)
    check_folder_path(out)
    if out.exists() and not force:
        raise WorkbenchError(f"--out {out}: already exists; add --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.with_name(f".{out.name}.partial")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)
