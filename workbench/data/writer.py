"""Atomic shard writing and the manifest.

A shard is written into ``shards/NNNNNN.partial-<host>-<pid>/`` and renamed to
``shards/NNNNNN/`` when complete, so a finished-looking shard is always whole. Its
``_shard.json`` lists every file's sha256; the manifest holds each shard's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.data.format import MODALITIES, encode_sample
from workbench.errors import WorkbenchError

SHARD_INDEX = "_shard.json"
MANIFEST = "manifest.json"


def shard_dir(root: Path, shard: int) -> Path:
    """Returns the folder of a finished shard."""
    return Path(root) / "shards" / f"{shard:06d}"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)


def shard_digest(files: dict[str, str]) -> str:
    """Returns the sha256 of a shard's file listing (name -> file sha256), in sorted order."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def clear_partials(root: Path, shards: Iterable[int]) -> None:
    """Deletes unfinished shard folders of the given shards, left by an interrupted run."""
    wanted = {f"{s:06d}" for s in shards}
    folder = Path(root) / "shards"
    if folder.is_dir():
        for entry in folder.iterdir():
            if ".partial" in entry.name and entry.name.split(".")[0] in wanted:
                shutil.rmtree(entry, ignore_errors=True)


def _write_sample(folder: Path, index: int, sample) -> dict[str, str]:
    files = {}
    for suffix, data in encode_sample(sample.arrays, sample.meta).items():
        name = f"{index:06d}.{suffix}"
        (folder / name).write_bytes(data)
        files[name] = hashlib.sha256(data).hexdigest()
    return files


def write_shard(
    root: Path, shard: int, start: int, samples: Iterable, in_flight: int = 4
) -> dict[str, Any]:
    """Writes the samples of one shard atomically.

    Encoding and file writes run in a background thread (zlib and file I/O release the GIL), so
    they overlap with producing the next samples; at most ``in_flight`` samples wait in memory.

    Args:
        root: dataset folder.
        shard: shard number.
        start: global index of the shard's first sample.
        samples: :class:`~workbench.render.sample.Sample`-like objects with ``arrays`` and ``meta``.
        in_flight: samples queued for writing before the producer waits.

    Returns:
        the shard record for the manifest: index, start, count, sha256.
    """
    final = shard_dir(root, shard)
    partial = final.with_name(f"{final.name}.partial-{socket.gethostname()}-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    files: dict[str, str] = {}
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") as writer:
        for offset, sample in enumerate(samples):
            pending.append(writer.submit(_write_sample, partial, start + offset, sample))
            if len(pending) >= in_flight:
                files.update(pending.popleft().result())
        while pending:
            files.update(pending.popleft().result())
    record = {
        "index": shard,
        "start": start,
        "count": len(files) // len(MODALITIES),
        "sha256": shard_digest(files),
    }
    write_json_atomic(partial / SHARD_INDEX, {**record, "files": files})
    try:
        os.rename(partial, final)
    except OSError:
        if not (final / SHARD_INDEX).is_file():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # another process finished the same shard
    return record


def finished_shards(root: Path) -> dict[int, dict[str, Any]]:
    """Returns the records of all finished shards, read from their ``_shard.json``."""
    out = {}
    folder = Path(root) / "shards"
    if folder.is_dir():
        for entry in folder.iterdir():
            index_file = entry / SHARD_INDEX
            if entry.name.isdigit() and index_file.is_file():
                record = json.loads(index_file.read_text())
                out[record["index"]] = {k: record[k] for k in ("index", "start", "count", "sha256")}
    return out


def open_dataset_dir(out: Path, fresh: dict[str, Any], identity: Sequence[str]) -> dict[str, Any]:
    """Creates a dataset folder with the manifest ``fresh``, or reopens one whose manifest agrees
    with ``fresh`` on the ``identity`` keys (to resume); returns the manifest to finish.

    Raises:
        WorkbenchError: ``out`` holds another dataset, something else, or an unreadable manifest.
    """
    path = out / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            raise WorkbenchError(
                f"{path}: unreadable manifest; delete {out} or choose another --out"
            ) from None
        diff = [k for k in identity if old.get(k) != fresh[k]]
        if diff:
            raise WorkbenchError(
                f"{out} holds another dataset (differs in {', '.join(diff)}); "
                "choose another --out or delete it"
            )
        return old
    if out.exists() and any(p.name != "shards" for p in out.iterdir()):
        raise WorkbenchError(
            f"{out} is not empty and holds no workbench dataset; choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, fresh)
    return fresh


def finish_manifest(out: Path, manifest: dict[str, Any]) -> bool:
    """Records the finished shards in the manifest; marks it complete when all are there."""
    records = finished_shards(out)
    size, num = manifest["shard_size"], manifest["num_samples"]
    expected = {k: min(size, num - k * size) for k in range(manifest["num_shards"])}
    manifest["shards"] = [records[k] for k in sorted(records)]
    manifest["complete"] = all(
        k in records and records[k]["count"] == n for k, n in expected.items()
    )
    write_json_atomic(out / MANIFEST, manifest)
    return manifest["complete"]
