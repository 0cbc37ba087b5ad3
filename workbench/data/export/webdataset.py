"""WebDataset tar shards for streaming: each sample's original files under its key."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import webdataset as wds
from tqdm import tqdm

from workbench.data.format import MODALITIES
from workbench.data.reader import open_dataset
from workbench.data.writer import check_folder_path, shard_dir
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)
_TAR = re.compile(r"shard-(\d{6})\.tar")


def _check_folder_out(out: Path, force: bool) -> None:
    check_folder_path(out)
    if out.is_dir() and any(out.iterdir()) and not force:
        raise WorkbenchError(
            f"--out {out}: already holds files; add --force to overwrite its shard tars"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"--out {out}: cannot create it ({exc.strerror})") from None


def to_webdataset(
    data: str | Path,
    out: str | Path | None = None,
    samples_per_tar: int = 1000,
    force: bool = False,
) -> Path:
    """Writes the dataset as WebDataset tar shards ``out/shard-NNNNNN.tar`` for streaming.

    Each sample is the original files under its key (``rgb.png``, ``depth.npy``, ``seg.png``,
    ``inst.png``, ``json``), so decoding matches the folder format. Tars are written under a
    temporary name and renamed when complete.

    Args:
        data: a finished dataset folder.
        out: the folder to write (default ``DATA/webdataset``).
        samples_per_tar: samples per tar.
        force: write into a folder that holds files: its ``shard-NNNNNN.tar`` are replaced
            (those beyond this export's count are deleted, so two exports never mix).

    Returns:
        the output folder.

    Raises:
        WorkbenchError: an unreadable dataset, or ``out`` a file or a folder holding files
            without ``force``.
    """
    if samples_per_tar < 1:
        raise WorkbenchError(f"--samples-per-tar: must be at least 1, got {samples_per_tar}")
    dataset = open_dataset(data, modalities=())
    out = Path(out) if out else dataset.root / "webdataset"
    _check_folder_out(out, force)
    suffixes = [m["file"] for m in MODALITIES.values()]
    for first in tqdm(range(0, len(dataset), samples_per_tar), desc="webdataset", unit="tar"):
        final = out / f"shard-{first // samples_per_tar:06d}.tar"
        tmp = final.with_name(final.name + ".partial")
        with wds.TarWriter(str(tmp)) as sink:
            for index in range(first, min(first + samples_per_tar, len(dataset))):
                folder = shard_dir(dataset.root, index // dataset.shard_size)
                record = {"__key__": f"{index:06d}"}
                for suffix in suffixes:
                    record[suffix] = (folder / f"{index:06d}.{suffix}").read_bytes()
                sink.write(record)
        os.replace(tmp, final)
    count = -(-len(dataset) // samples_per_tar)
    for stale in out.iterdir():
        match = _TAR.fullmatch(stale.name)
        if match and int(match.group(1)) >= count:
            log.info("removing %s, left by an earlier export", stale)
            stale.unlink()
    return out
