"""Long commands run beside the app: a subprocess with a log file, polled without blocking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench.inspect.paths import state_dir

TAIL_BYTES = 64 * 1024


def new_log(root: str | Path, prefix: str) -> Path:
    """Returns a fresh, uniquely named log file in ``ROOT/.workbench-app/logs``."""
    handle, name = tempfile.mkstemp(
        prefix=f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-",
        suffix=".log",
        dir=state_dir(root, "logs"),
    )
    os.close(handle)
    return Path(name)


def workbench_command(*args: str) -> list[str]:
    """Returns the command line that runs ``workbench ARGS`` with this interpreter."""
    return [sys.executable, "-m", "workbench.cli", *args]


@dataclass
class Job:
    """A started subprocess in its own process group, writing stdout and stderr to ``log``.

    Attributes:
        command: the command line.
        log: file that receives the command's output.
        popen: the running process.
        started: start time (seconds since the epoch).
        stopped: True once :meth:`stop` ended it.
    """

    command: list[str]
    log: Path
    popen: subprocess.Popen
    started: float = field(default_factory=time.time)
    stopped: bool = False

    @classmethod
    def start(cls, command: list[str], log: str | Path, cwd: str | Path) -> Job:
        """Starts ``command`` in ``cwd`` with its output going to ``log`` (created or replaced)."""
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            popen = subprocess.Popen(
                command,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        return cls(command=list(command), log=log, popen=popen)

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while the process runs."""
        return self.popen.poll()

    def status(self) -> str:
        """Returns ``running``, ``finished`` (exit 0), ``stopped`` (by :meth:`stop`) or
        ``failed``."""
        code = self.returncode
        if code is None:
            return "running"
        if self.stopped:
            return "stopped"
        return "finished" if code == 0 else "failed"

    def tail(self, lines: int = 30) -> str:
        """Returns the last ``lines`` lines of the log; a progress bar's redraws count as lines."""
        try:
            with self.log.open("rb") as handle:
                handle.seek(max(0, self.log.stat().st_size - TAIL_BYTES))
                text = handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        rows = [row for row in text.replace("\r", "\n").split("\n") if row.strip()]
        return "\n".join(rows[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """Ends the process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.returncode is not None:
            return
        self.stopped = True
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        except ProcessLookupError:
            self.popen.wait()
