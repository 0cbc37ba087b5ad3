"""Independent units of work (a study's runs, a sweep's cells) run one after another in this
process or as Ray tasks, each result saved under its key as it ends, so that a rerun of the
same command skips what is done.

Every unit sets the same number of torch threads and seeds itself, so running on N workers
gives the numbers of a serial run (the thread count is part of a float result on the CPU: a
reduction is split over the threads).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Unit:
    """One independent piece of work.

    Args:
        key: its name, unique within a run and usable as a file name.
        fn: a module-level function (Ray pickles it by reference) returning JSON-ready data.
        kwargs: its arguments (picklable).
    """

    key: str
    fn: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)


def claim_folder(stamp: Path, identity: dict[str, Any], what: str) -> bool:
    """Makes ``stamp``'s folder the output of one resumable job, named by ``identity`` (its
    options, file hashes) written to ``stamp``; returns whether the folder holds that job
    already (a rerun continues it).

    Raises:
        WorkbenchError: the folder is a file, holds another ``what`` (the differing keys are
            named) or is a non-empty folder of something else; nothing is written then.
    """
    out = stamp.parent
    if out.exists() and not out.is_dir():
        raise WorkbenchError(f"--out: {out} is a file; give a folder")
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        changed = [k for k in sorted(set(saved) | set(identity)) if saved.get(k) != identity.get(k)]
        if changed:
            raise WorkbenchError(
                f"--out: {out} holds another {what} ({', '.join(changed)} differ); "
                f"give a new --out or rerun that {what}'s command"
            )
        return True
    if out.is_dir() and any(out.iterdir()):
        raise WorkbenchError(f"--out: {out} is not empty and holds no {what}; give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    partial = stamp.with_suffix(".partial")
    partial.write_text(json.dumps(identity, indent=1))
    partial.replace(stamp)
    return False


def check_address(address: str | None, timeout: float = 5.0) -> None:
    """Checks that a Ray cluster's ``HOST:PORT`` accepts connections.

    Raises:
        WorkbenchError: a malformed or unreachable address, in one line.
    """
    if address is None:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise WorkbenchError(f"--ray-address: expected HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise WorkbenchError(
            f"--ray-address: cannot reach {host}:{port} ({exc.strerror or exc}); start the "
            "cluster with `ray start --head` or leave --ray-address out for a local one"
        ) from None


@contextmanager
def ray_cluster(address: str | None, cpus: int | None = None) -> Iterator[None]:
    """Connects to the cluster at ``address``, or starts a local one with ``cpus`` CPUs on
    loopback; shuts down what it started on exit. Reuses a Ray already initialised here.

    Raises:
        WorkbenchError: Ray is not installed, or the address is unreachable.
    """
    try:
        import ray
    except ImportError:
        raise WorkbenchError(
            "Ray is needed for more than one worker: pip install 'workbench[distributed]'"
        ) from None
    if ray.is_initialized():
        yield
        return
    check_address(address)
    # Ray turns token authentication on by default and says so on every start: kept on, unsaid
    logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    ray.init(
        address=address or "local",
        num_cpus=None if address else cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
        _node_ip_address=None if address else "127.0.0.1",  # a local cluster stays on loopback
    )
    try:
        yield
    finally:
        ray.shutdown()


def call(fn: Callable[..., Any], kwargs: dict[str, Any], threads: int) -> Any:
    """Runs ``fn(**kwargs)`` with ``threads`` torch threads (inside a worker, or here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(**kwargs)
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Executor:
    """Runs units serially in this process (one worker, no cluster address) or as Ray tasks.

    Args:
        workers: units at once (a local Ray cluster of this many CPUs when above 1).
        ray_address: ``HOST:PORT`` of a running cluster (then it decides how many at once).
        threads: torch threads of every unit, whatever the worker count.
        store: folder of finished results (``<key>.json``); None keeps nothing.
    """

    workers: int = 1
    ray_address: str | None = None
    threads: int = 1
    store: Path | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise WorkbenchError(f"--workers: must be at least 1, got {self.workers}")
        if self.threads < 1:
            raise WorkbenchError(f"--threads: must be at least 1, got {self.threads}")

    def _path(self, key: str) -> Path | None:
        if not _KEY.fullmatch(key):
            raise ValueError(f"unit key {key!r} is not a file name")
        return None if self.store is None else Path(self.store) / f"{key}.json"

    def saved(self, key: str) -> Any | None:
        """The saved result of unit ``key``, or None."""
        path = self._path(key)
        return json.loads(path.read_text()) if path is not None and path.is_file() else None

    def _save(self, key: str, result: Any) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(result))
        os.replace(partial, path)

    def run(
        self, units: list[Unit], done: Callable[[Unit, Any, float], None] | None = None
    ) -> dict[str, Any]:
        """Runs the units not saved yet; calls ``done(unit, result, seconds)`` as each ends
        (seconds 0 for a saved one).

        Returns:
            key -> result for every unit, in the order given.
        """
        if len({u.key for u in units}) != len(units):
            raise ValueError("unit keys must be unique")
        results: dict[str, Any] = {}
        todo = []
        for unit in units:
            saved = self.saved(unit.key)
            if saved is None:
                todo.append(unit)
                continue
            results[unit.key] = saved
            if done is not None:
                done(unit, saved, 0.0)

        def finish(unit: Unit, result: Any, seconds: float) -> None:
            self._save(unit.key, result)
            results[unit.key] = result
            if done is not None:
                done(unit, result, seconds)

        if todo and self.workers == 1 and self.ray_address is None:
            for unit in todo:
                start = time.perf_counter()
                finish(unit, call(unit.fn, unit.kwargs, self.threads), time.perf_counter() - start)
        elif todo:
            self._run_ray(todo, finish)
        return {unit.key: results[unit.key] for unit in units}

    def _run_ray(self, units: list[Unit], finish: Callable[[Unit, Any, float], None]) -> None:
        with ray_cluster(self.ray_address, self.workers * self.threads):
            import ray

            task = ray.remote(num_cpus=self.threads, max_retries=0)(call)
            started = {task.remote(u.fn, u.kwargs, self.threads): (u, time.perf_counter())
                       for u in units}  # fmt: skip
            pending = list(started)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                unit, start = started[ready[0]]
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    if isinstance(exc.cause, WorkbenchError):
                        raise exc.cause from None
                    raise RuntimeError(f"unit {unit.key} failed: {exc.cause!r}") from exc.cause
                finish(unit, result, time.perf_counter() - start)
