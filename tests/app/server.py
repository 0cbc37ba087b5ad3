"""Starting and stopping a real ``workbench app`` server for the tests."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused offline.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]  # fmt: skip


@contextmanager
def chromium_context(profile: Path, *flags: str) -> Iterator[Any]:
    """A headless Chromium (Debian's, driven by Playwright; nothing downloaded) with its own
    profile, so its tabs share the app's access cookie; skips the test without either."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (make test installs it when run as root)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=[*FLAGS, *flags], headless=True,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class AppServer:
    """A running ``workbench app``: its process, port, access token and the URL that opens it."""

    proc: subprocess.Popen
    port: int
    token: str
    url: str


def free_port() -> int:
    """Returns a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(root, port: int, *extra: str, env: dict[str, str] | None = None, cwd=ROOT,
              output=None) -> AppServer:  # fmt: skip
    """Starts ``workbench app`` with a fresh token (passed as $WORKBENCH_APP_TOKEN) and returns
    once its health endpoint answers.

    Args:
        root: the data root.
        port: the port to serve on.
        *extra: more ``workbench app`` options.
        env: the environment (default: this one's), to which the token is added.
        cwd: the working folder to start from.
        output: a file for the server's stdout and stderr (default: discarded).
    """
    token = secrets.token_urlsafe(16)
    sink = open(output, "wb") if output else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "app", "--data-root", str(root), "--port",
         str(port), *extra],
        cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        env={**(os.environ if env is None else env), "WORKBENCH_APP_TOKEN": token},
    )  # fmt: skip
    if output:
        sink.close()  # the server holds its own copy
    server = AppServer(proc, port, token, f"http://127.0.0.1:{port}/?token={token}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    stop_app(server)
    raise AssertionError("workbench app did not answer within 120 s")


def stop_app(server: AppServer) -> None:
    """Stops the server: SIGTERM to its process group, SIGKILL after 20 s."""
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=20)
    except ProcessLookupError:
        pass  # the whole group has exited already
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
