"""Atomic, durable shard writing, the manifest, and the lock of a dataset folder.

A shard is written into ``shards/NNNNNN.partial-<host>-<pid>/`` and renamed to
``shards/NNNNNN/`` when complete, so a finished-looking shard is always whole. Its
``_shard.json`` lists every file's sha256; the manifest holds each shard's digest. Sample
files, ``_shard.json`` and the manifest are fsynced before the rename that publishes them and
the folder after it, so a power cut leaves a shard either finished and whole or redone.

Locks (``fcntl.flock``, released by the kernel when the holder dies, so never stale):

- ``DIR/.lock``: a run that writes every shard holds it exclusively; a run of one slice
  (``--shard I/N`` with ``N > 1``) holds it shared and ``DIR/.lock.I-of-N`` exclusively. So
  slices of one split run side by side in several processes or on several hosts, while a second
  full run, a full run beside slices, or the same slice twice is refused with the holder's host,
  pid, start time and command (written into the file it holds exclusively).
- ``NNNNNN.partial-*/.owner``: held by the process writing that partial shard; resuming deletes
  only partial shards whose owner is gone, so even overlapping slices (``0/2`` beside ``0/3``)
  never delete each other's work in progress.
- ``DIR/.lock.manifest``: held while the finished shards are read and the manifest rewritten, so
  slices finishing together cannot overwrite a complete manifest with an older view.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.data.format import MODALITIES, encode_sample
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

SHARD_INDEX = "_shard.json"
MANIFEST = "manifest.json"
LOCK = ".lock"
OWNER = ".owner"
# A partial shard without an owner file is being created (or its writer died in that instant);
# it is deleted only once it is older than this.
UNOWNED_GRACE_S = 600


def shard_dir(root: Path, shard: int) -> Path:
    """Returns the folder of a finished shard."""
    return Path(root) / "shards" / f"{shard:06d}"


def fsync_dir(folder: Path) -> None:
    """Flushes a folder's entries (names created, renamed or deleted in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` and flushes it to disk before returning."""
    with open(path, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON to ``path`` through a fsynced temporary file, an atomic rename and a fsync of
    the folder, so ``path`` holds the old or the new content whatever happens."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    write_durable(tmp, json.dumps(payload, indent=1, sort_keys=True).encode())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def shard_digest(files: dict[str, str]) -> str:
    """Returns the sha256 of a shard's file listing (name -> file sha256), in sorted order."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and "/" not in name and name not in ("", ".", "..")


def read_shard_index(folder: Path) -> dict[str, Any] | None:
    """Returns the ``_shard.json`` of a finished shard folder, or None when it is missing,
    unreadable, empty or inconsistent (a shard to render again)."""
    try:
        index = json.loads((Path(folder) / SHARD_INDEX).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict):
        return None
    files = index.get("files")
    ints = [index.get(k) for k in ("index", "start", "count")]
    if (
        not isinstance(files, dict)
        or not all(_plain_name(k) and isinstance(v, str) for k, v in files.items())
        or not all(type(v) is int and v >= 0 for v in ints)
        or len(files) != index["count"] * len(MODALITIES)
        or index["index"] != int(Path(folder).name)
        or index.get("sha256") != shard_digest(files)
    ):
        return None
    return index


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def clear_partials(root: Path, shards: Iterable[int]) -> None:
    """Deletes unfinished shard folders of the given shards left by interrupted runs; a partial
    shard whose writer is alive (it holds the ``.owner`` lock) is left alone."""
    wanted = {f"{s:06d}" for s in shards}
    folder = Path(root) / "shards"
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if ".partial" not in entry.name or entry.name.split(".")[0] not in wanted:
            continue
        try:
            fd = os.open(entry / OWNER, os.O_RDWR)
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - entry.stat().st_mtime > UNOWNED_GRACE_S:
                    shutil.rmtree(entry, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            if _try_lock(fd, fcntl.LOCK_EX):
                shutil.rmtree(entry, ignore_errors=True)
        finally:
            os.close(fd)


def _claim_partial(partial: Path) -> int:
    """Creates ``partial`` and returns the fd of its ``.owner`` file, locked exclusively."""
    for _ in range(10):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            fd = os.open(partial / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            continue  # deleted by a resuming run between mkdir and open
        fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(partial / OWNER).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)
    raise OSError(f"{partial}: deleted by another process while being created")


def _write_sample(folder: Path, index: int, sample) -> dict[str, str]:
    files = {}
    for suffix, data in encode_sample(sample.arrays, sample.meta).items():
        name = f"{index:06d}.{suffix}"
        write_durable(folder / name, data)
        files[name] = hashlib.sha256(data).hexdigest()
    return files


def _publish(partial: Path, final: Path) -> None:
    """Renames a written partial shard to its final name; a final folder with a broken index
    (a crash before this module fsynced, or a damaged disk) is replaced."""
    for _ in range(3):
        try:
            os.rename(partial, final)
            fsync_dir(final.parent)
            return
        except OSError:
            if not final.is_dir():
                raise
        if read_shard_index(final) is not None:
            shutil.rmtree(partial, ignore_errors=True)  # another process finished the same shard
            return
        log.warning("%s: unreadable %s; replaced by the shard just written", final, SHARD_INDEX)
        stale = final.with_name(f"{final.name}.stale-{socket.gethostname()}-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    raise OSError(f"{final}: could not replace the shard folder")


def write_shard(
    root: Path, shard: int, start: int, samples: Iterable, in_flight: int = 4
) -> dict[str, Any]:
    """Writes the samples of one shard atomically and durably.

    Encoding, file writes and fsyncs run in a background thread (zlib and file I/O release the
    GIL), so they overlap with producing the next samples; at most ``in_flight`` samples wait in
    memory. The partial folder is locked (``.owner``) while it is written.

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
    if not final.parent.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        fsync_dir(final.parent.parent)
    partial = final.with_name(f"{final.name}.partial-{socket.gethostname()}-{os.getpid()}")
    owner = _claim_partial(partial)
    try:
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
        os.unlink(partial / OWNER)
        write_json_atomic(partial / SHARD_INDEX, {**record, "files": files})
        _publish(partial, final)
    finally:
        os.close(owner)
    return record


def finished_shards(root: Path) -> dict[int, dict[str, Any]]:
    """Returns the records of all finished shards, read from their ``_shard.json``; a shard
    whose index is missing, empty or corrupt counts as unfinished."""
    out = {}
    folder = Path(root) / "shards"
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.isdigit():
                record = read_shard_index(entry)
                if record is not None:
                    out[record["index"]] = {
                        k: record[k] for k in ("index", "start", "count", "sha256")
                    }
    return out


def finished_samples(root: Path) -> int:
    """Returns how many samples the finished shards of a dataset folder hold (0 for a missing
    folder); corrupt shard indexes count as unfinished, never as an error."""
    return sum(r["count"] for r in finished_shards(root).values())


def _holder() -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        command = str(info["command"])
        command = command if len(command) <= 80 else command[:77] + "..."
        return f"host {info['host']}, pid {info['pid']}, since {info['since']}: {command}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not said who it is yet"


def _live_slice_holder(out: Path) -> Path | None:
    for path in sorted(out.glob(f"{LOCK}.*-of-*")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _try_lock(fd, fcntl.LOCK_SH):
                return path
        finally:
            os.close(fd)
    return None


def _lock_file(path: Path, mode: int) -> int | None:
    """Returns an fd of ``path`` locked with ``mode``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if _try_lock(fd, mode):
        return fd
    os.close(fd)
    return None


def _sign(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_holder()).encode(), 0)


def _busy(out: Path, holder: Path) -> WorkbenchError:
    part = holder.name[len(LOCK) + 1 :].replace("-of-", "/")
    what = f"slice {part} of this folder" if part else "this folder"
    return WorkbenchError(
        f"{out}: another run is writing {what} ({_describe(holder)}); "
        "wait for it to finish or choose another --out"
    )


def check_folder_path(out: Path, option: str = "--out") -> None:
    """Refuses a folder path that is a file or lies under one (it could never be created).

    Raises:
        WorkbenchError: naming the file in the way.
    """
    out = Path(out)
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                where = "is a file" if path == out else f"lies under the file {path}"
                raise WorkbenchError(f"{option} {out}: {where}, not a folder; choose a folder")
            return


def check_output_dir(out: Path) -> None:
    """Refuses an ``--out`` that is a file, or a non-empty folder that holds no dataset.

    Raises:
        WorkbenchError: naming ``out`` and what to do.
    """
    out = Path(out)
    check_folder_path(out)
    if (
        out.is_dir()
        and not (out / MANIFEST).exists()
        and any(p.name != "shards" and not p.name.startswith(LOCK) for p in out.iterdir())
    ):
        raise WorkbenchError(
            f"{out} is not empty and holds no workbench dataset; choose another --out"
        )


@contextlib.contextmanager
def dataset_lock(out: Path, shard: tuple[int, int] = (0, 1)) -> Iterator[None]:
    """Holds the lock of a dataset folder while a run writes it (see the module docstring).

    Creates ``out`` when missing (after :func:`check_output_dir`).

    Args:
        out: dataset folder.
        shard: ``(i, n)``: the slice of shards the run writes; ``(0, 1)`` for all of them.

    Raises:
        WorkbenchError: another run holds the folder (or the same slice), naming it.
    """
    out = Path(out)
    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    i, n = shard
    held: list[int] = []
    try:
        whole = _lock_file(out / LOCK, fcntl.LOCK_EX if n == 1 else fcntl.LOCK_SH)
        if whole is None:
            raise _busy(out, _live_slice_holder(out) or out / LOCK)
        held.append(whole)
        if n == 1:
            _sign(whole)
        else:
            part = _lock_file(out / f"{LOCK}.{i}-of-{n}", fcntl.LOCK_EX)
            if part is None:
                raise _busy(out, out / f"{LOCK}.{i}-of-{n}")
            held.append(part)
            _sign(part)
        yield
    finally:
        for fd in reversed(held):
            os.close(fd)


def _field(manifest: Any, key: str) -> Any:
    for part in key.split("."):
        manifest = manifest.get(part) if isinstance(manifest, dict) else None
    return manifest


def _difference(key: str, old: Any, new: Any) -> str:
    """Names what differs in ``key``: short values, or the differing entries of a mapping."""
    if isinstance(old, dict) and isinstance(new, dict):
        names = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"{key} ({shown})" if names and len(shown) <= 200 else key
    if len(repr(old)) + len(repr(new)) <= 160 and not isinstance(old, (dict, list)):
        return f"{key} ({old!r} in the folder, {new!r} now)"
    return key


def _all_finished(out: Path, manifest: dict[str, Any]) -> bool:
    try:
        size, num = int(manifest["shard_size"]), int(manifest["num_samples"])
        expected = {k: min(size, num - k * size) for k in range(-(-num // size))}
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return False
    records = finished_shards(out)
    return all(k in records and records[k]["count"] == n for k, n in expected.items())


def open_dataset_dir(
    out: Path, fresh: dict[str, Any], identity: Sequence[str], provenance: Sequence[str] = ()
) -> dict[str, Any]:
    """Creates a dataset folder with the manifest ``fresh``, or reopens one whose manifest agrees
    with ``fresh`` on the ``identity`` keys (to resume); returns the manifest to finish.

    Args:
        out: dataset folder.
        fresh: the manifest a new run writes.
        identity: keys that must agree to reopen; ``a.b`` names ``manifest["a"]["b"]``.
        provenance: keys that must agree too while shards remain to be written (the renderer,
            asset digests, versions), so shards made differently never mix; a finished dataset
            reopens whatever they say, as nothing is written into it.

    Raises:
        WorkbenchError: ``out`` is a file, holds another dataset, something else, or an
            unreadable manifest.
    """
    out = Path(out)
    check_output_dir(out)
    path = out / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict):
            raise WorkbenchError(
                f"{path}: unreadable manifest; delete {out} or choose another --out"
            )
        keys = [*identity, *(provenance if not _all_finished(out, old) else ())]
        diff = [
            _difference(k, _field(old, k), _field(fresh, k))
            for k in keys
            if _field(old, k) != _field(fresh, k)
        ]
        if diff:
            raise WorkbenchError(
                f"{out} holds another dataset (differs in {'; '.join(diff)}); "
                "choose another folder or delete it"
            )
        return old
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, fresh)
    return fresh


def finish_manifest(out: Path, manifest: dict[str, Any]) -> bool:
    """Records the finished shards in the manifest; marks it complete when all are there.

    Runs under ``DIR/.lock.manifest``, so slices that finish together never replace a newer
    view of the finished shards with an older one.
    """
    out = Path(out)
    fd = os.open(out / f"{LOCK}.manifest", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        records = finished_shards(out)
        size, num = manifest["shard_size"], manifest["num_samples"]
        expected = {k: min(size, num - k * size) for k in range(manifest["num_shards"])}
        manifest["shards"] = [records[k] for k in sorted(records)]
        manifest["complete"] = all(
            k in records and records[k]["count"] == n for k, n in expected.items()
        )
        write_json_atomic(out / MANIFEST, manifest)
    finally:
        os.close(fd)
    return manifest["complete"]
