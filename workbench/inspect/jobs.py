"""Long commands run beside the app: one registry of jobs for the whole server, on disk.

Every job is one JSON file in ``ROOT/.workbench-app/jobs/`` (kind, command, target folder, pid,
process group, start time, log, status), so any browser tab, a reload, or the app started again
sees the same jobs. Two jobs never write into one target folder (or one inside the other): the
second is refused with a message that names the first. Records change under an advisory lock
(``jobs/.lock``), so two tabs starting at once cannot both pass that check.

A job runs under :mod:`workbench.inspect.supervise`, which leads the job's process group, writes
the final status into the record, and ends the group when the app's process goes away (unless
the job was started detached). A record whose process is gone, or whose pid now belongs to
another process (the start time differs), reads as ``ended``.

Every Python subprocess runs as ``python -P`` with ``PYTHONSAFEPATH=1`` (inherited by its own
children), so a ``*.py`` file in the data root, which is the jobs' working folder, can never
shadow a module.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from workbench.errors import WorkbenchError
from workbench.inspect.paths import relative_to_root, state_dir

TAIL_BYTES = 64 * 1024
FINAL = ("finished", "failed", "stopped", "ended")
MIN_FREE_BYTES = 200 * 2**20
MAX_RUNNING = 4  # jobs of one data root at once
APP_PID_ENV = "WORKBENCH_APP_PID"
_CHILDREN: dict[int, subprocess.Popen] = {}  # supervisors this process started, to reap them


def child_env() -> dict[str, str]:
    """Returns the environment for subprocesses: unbuffered output, ``PYTHONSAFEPATH=1``, and
    only the absolute entries of ``PYTHONPATH`` (a relative one would name the working folder)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1"}
    paths = [p for p in env.pop("PYTHONPATH", "").split(os.pathsep) if os.path.isabs(p)]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def python_command(module: str, *args: str) -> list[str]:
    """Returns ``python -P -m MODULE ARGS`` with this interpreter."""
    return [sys.executable, "-P", "-m", module, *args]


def workbench_command(*args: str) -> list[str]:
    """Returns the command line that runs ``workbench ARGS`` with this interpreter."""
    return python_command("workbench.cli", *args)


def app_pid() -> int:
    """The process jobs stop with: ``$WORKBENCH_APP_PID`` (set by ``workbench app``), else this
    process."""
    return int(os.environ.get(APP_PID_ENV) or os.getpid())


def check_room(root: str | Path, need: int, what: str) -> None:
    """Refuses a job when the disk under ``root`` has less than ``max(need, 200 MB)`` free.

    Raises:
        WorkbenchError: one line naming ``what``, the room it needs and the room there is.
    """
    need = max(int(need), MIN_FREE_BYTES)
    free = shutil.disk_usage(Path(root).resolve()).free
    if free < need:
        raise WorkbenchError(
            f"{what}: needs about {need / 2**20:,.0f} MB free under the data root, only "
            f"{free / 2**20:,.0f} MB left; free some room or render fewer or smaller samples"
        )


def process_started(pid: int) -> float | None:
    """Returns the start time of a live process (not a zombie), or None when there is none."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


@dataclass
class JobRecord:
    """One job as its JSON file holds it.

    Attributes:
        id: unique name (also the file's stem).
        kind: ``fit`` or ``render`` (or any name a caller gives).
        command: the supervised command line.
        target: the folder the job writes, relative to the data root.
        log: the log file (stdout and stderr of the supervisor and the command).
        pid: the supervisor's pid; also the job's process group.
        pgid: the process group (equals ``pid``).
        created: the supervisor's start time as psutil reports it (tells a reused pid apart).
        started: start time (seconds since the epoch).
        detached: True when the job keeps running after the app stops.
        status: ``running``, ``finished`` (exit 0), ``failed``, ``stopped`` (stopped by a user or
            because the app stopped) or ``ended`` (its process vanished without saying how).
        exit_code: the command's exit status once known.
        ended_at: end time once known.
        reason: why it stopped or ended, when known.
        info: what the page needs to show progress (render folders and totals, ...).
    """

    id: str
    kind: str
    command: list[str]
    target: str
    log: str
    pid: int
    pgid: int
    created: float
    started: float
    detached: bool = False
    status: str = "running"
    exit_code: int | None = None
    ended_at: float | None = None
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def describe(self) -> str:
        """One line naming the job: kind, id, target, pid and start time."""
        when = time.strftime("%H:%M:%S", time.localtime(self.started))
        return f"{self.kind} job {self.id} into {self.target} (pid {self.pid}, started {when})"

    def tail(self, lines: int = 30) -> str:
        """Returns the last ``lines`` lines of the log; a progress bar's redraws count as lines."""
        log = Path(self.log)
        try:
            with log.open("rb") as handle:
                handle.seek(max(0, log.stat().st_size - TAIL_BYTES))
                text = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        rows = [row for row in text.replace("\r", "\n").split("\n") if row.strip()]
        return "\n".join(rows[-lines:])


def _write(path: Path, record: JobRecord) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1))
    os.replace(tmp, path)


def _read(path: Path) -> JobRecord | None:
    try:
        return JobRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # half-written by a crash or not ours: not a job


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def record_exit(path: str | Path, code: int, stopped: bool, reason: str = "") -> None:
    """Writes a job's final status into its record (called by the supervisor)."""
    path = Path(path)
    with _locked(path.parent):
        record = _read(path)
        if record is None or record.status in FINAL:
            return
        record.exit_code = code
        record.ended_at = time.time()
        record.status = "stopped" if stopped else ("finished" if code == 0 else "failed")
        record.reason = reason
        _write(path, record)


class JobRegistry:
    """The jobs of one data root (``ROOT/.workbench-app/jobs``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.folder = state_dir(self.root, "jobs")

    def _path(self, job_id: str) -> Path:
        if not job_id.replace("-", "").isalnum():
            raise WorkbenchError(f"{job_id}: not a job id")
        return self.folder / f"{job_id}.json"

    def _refresh(self, path: Path, record: JobRecord) -> JobRecord:
        """Marks a running record ``ended`` when its process is gone or its pid reused."""
        child = _CHILDREN.get(record.pid)
        if child is not None and child.poll() is not None:
            del _CHILDREN[record.pid]
            record = _read(path) or record  # the supervisor may have written its status
        if record.running:
            started = process_started(record.pid)
            if started is None or abs(started - record.created) > 0.01:
                record.status, record.ended_at = "ended", time.time()
                record.reason = "its process is gone; the app or the machine stopped"
                _write(path, record)
        return record

    def jobs(self, kind: str | None = None) -> list[JobRecord]:
        """Returns the jobs (of ``kind``, or all), newest first, with their current status."""
        with _locked(self.folder):
            found = [
                (path, record)
                for path in self.folder.glob("*.json")
                if (record := _read(path)) is not None and kind in (None, record.kind)
            ]
            records = [self._refresh(path, record) for path, record in found]
        return sorted(records, key=lambda r: r.started, reverse=True)

    def get(self, job_id: str) -> JobRecord:
        """Returns one job with its current status.

        Raises:
            WorkbenchError: there is no such job.
        """
        path = self._path(job_id)
        with _locked(self.folder):
            record = _read(path)
            if record is None:
                raise WorkbenchError(f"{job_id}: no such job")
            return self._refresh(path, record)

    def start(
        self,
        kind: str,
        command: list[str],
        target: str | Path,
        *,
        detached: bool = False,
        info: dict[str, Any] | None = None,
    ) -> JobRecord:
        """Starts ``command`` under the supervisor, in the data root, logging to
        ``ROOT/.workbench-app/logs``.

        Args:
            kind: the job's kind (``fit``, ``render``).
            command: the command line (a ``python -P`` one, see :func:`python_command`).
            target: the folder the job writes; no two running jobs share one.
            detached: keep running after the app stops.
            info: what a page needs to show progress.

        Raises:
            WorkbenchError: a running job already writes into ``target`` (named in the message),
                or :data:`MAX_RUNNING` jobs run already.
        """
        target = (self.root / target).resolve()
        with _locked(self.folder):
            running = []
            for path in self.folder.glob("*.json"):
                other = _read(path)
                if other is None or not other.running:
                    continue
                other = self._refresh(path, other)
                if other.running and _overlap(target, self.root / other.target):
                    raise WorkbenchError(
                        f"{relative_to_root(self.root, target)}: {other.describe()} is still "
                        "running there; wait for it or stop it first"
                    )
                running += [other.id] if other.running else []
            if len(running) >= MAX_RUNNING:
                raise WorkbenchError(
                    f"{kind}: {len(running)} jobs are running already ({', '.join(running)}); "
                    "wait for one to end or stop one first"
                )
            job_id = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            path = self._path(job_id)
            log = state_dir(self.root, "logs") / f"{job_id}.log"
            watch = [] if detached else ["--watch", str(app_pid())]
            supervised = python_command(
                "workbench.inspect.supervise", *watch, "--record", str(path), "--", *command
            )
            with log.open("wb") as out:
                popen = subprocess.Popen(
                    supervised, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=child_env(), start_new_session=True,
                )  # fmt: skip
            _CHILDREN[popen.pid] = popen
            record = JobRecord(
                id=job_id, kind=kind, command=list(command),
                target=relative_to_root(self.root, target), log=str(log), pid=popen.pid,
                pgid=popen.pid, created=process_started(popen.pid) or 0.0, started=time.time(),
                detached=detached, info=dict(info or {}),
            )  # fmt: skip
            if not record.created:  # gone already: it failed to start
                popen.wait()
                record.status, record.exit_code = "failed", popen.returncode
            _write(path, record)
        return record

    def stop(self, job_id: str, grace: float = 10.0) -> JobRecord:
        """Ends a running job's process group: SIGTERM, then SIGKILL after ``grace`` seconds.

        Returns:
            the record, ``stopped`` unless it had ended already.
        """
        record = self.get(job_id)
        if not record.running:
            return record
        try:
            os.killpg(record.pgid, signal.SIGTERM)
            psutil.Process(record.pid).wait(timeout=grace)
        except psutil.TimeoutExpired:
            os.killpg(record.pgid, signal.SIGKILL)
            psutil.Process(record.pid).wait(timeout=grace)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
        _CHILDREN.pop(record.pid, None)
        record_exit(self._path(job_id), -signal.SIGTERM, stopped=True, reason="stopped")
        return self.get(job_id)

    def forget(self, job_id: str) -> None:
        """Removes the record of a job that is no longer running (its log stays)."""
        if self.get(job_id).running:
            raise WorkbenchError(f"{job_id}: still running; stop it first")
        with _locked(self.folder):
            self._path(job_id).unlink(missing_ok=True)
