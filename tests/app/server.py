"""Starting and stopping a real ``workbench app`` server for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import ROOT


def free_port() -> int:
    """Returns a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(root, port: int, *extra: str) -> subprocess.Popen:
    """Starts ``workbench app`` and returns once its health endpoint answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "app", "--data-root", str(root), "--port",
         str(port), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    stop_app(proc)
    raise AssertionError("workbench app did not answer within 120 s")


def stop_app(proc: subprocess.Popen) -> None:
    """Stops the server: SIGTERM to its process group, SIGKILL after 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
