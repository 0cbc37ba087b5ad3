"""Runs one job for the app and ends it when the app goes away.

``python -P -m workbench.inspect.supervise [--watch PID] --record JOB.json -- COMMAND...``

The supervisor leads the job's process group (the app starts it in a new session) and runs
COMMAND in that group. It writes the command's final status into the job record
(:func:`workbench.inspect.jobs.record_exit`). With ``--watch``, it polls that process (the app's
server) and, once it has gone or its pid belongs to another process, ends the whole group:
SIGTERM, then SIGKILL after a grace period. This stands in for ``prctl(PR_SET_PDEATHSIG)``, which
cannot work here: Streamlit starts jobs from script threads, and the signal fires when the
spawning thread ends, not the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

import psutil

from workbench.inspect.jobs import process_started, record_exit

log = logging.getLogger("workbench.supervise")
POLL_SECONDS = 0.5
GRACE_SECONDS = 10.0


def _end_group_but_me(sig: int) -> None:
    """Sends ``sig`` to every other member of this process group (grandchildren included)."""
    me, group = os.getpid(), os.getpgrp()
    for proc in psutil.process_iter():
        try:
            if proc.pid != me and os.getpgid(proc.pid) == group:
                proc.send_signal(sig)
        except (ProcessLookupError, psutil.Error):
            continue


def supervise(command: list[str], record: str, watch: int | None) -> int:
    """Runs ``command`` and returns its exit status; see the module docstring."""
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    stop = {"reason": ""}

    def on_signal(signum: int, _frame) -> None:
        stop["reason"] = stop["reason"] or "cancelled"

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    watched = process_started(watch) if watch is not None else None
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    deadline = None
    while True:
        try:
            code = child.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        gone = watch is not None and (watched is None or process_started(watch) != watched)
        if gone and deadline is None:
            log.warning("the app (pid %d) has stopped; stopping this job", watch)
            stop["reason"] = "the app stopped"
            deadline = time.monotonic() + GRACE_SECONDS
            _end_group_but_me(signal.SIGTERM)
        elif deadline is not None and time.monotonic() > deadline:
            _end_group_but_me(signal.SIGKILL)
    _end_group_but_me(signal.SIGKILL)  # workers the command left behind
    record_exit(record, code, stopped=bool(stop["reason"]), reason=stop["reason"])
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: parses ``[--watch PID] --record PATH -- COMMAND...``."""
    logging.basicConfig(level=logging.INFO, format="supervise: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: supervise [--watch PID] --record PATH -- COMMAND...", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="supervise")
    parser.add_argument("--watch", type=int, default=None, help="stop when this pid is gone")
    parser.add_argument("--record", required=True, help="the job's JSON record")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("no command after --")
    return supervise(command, args.record, args.watch)


if __name__ == "__main__":
    sys.exit(main())
