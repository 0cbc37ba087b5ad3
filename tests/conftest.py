"""Shared helpers: run the real ``workbench`` command and hash a dataset's sample files."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, check: bool = True, timeout: int = 300, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Runs ``workbench ARGS`` in a fresh interpreter and returns the completed process."""
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**(env or os.environ), "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"workbench {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        )
    return done


def kill_cli_when(args: list[str], ready: Callable[[], bool], timeout: float = 240) -> bool:
    """Starts ``workbench ARGS`` in its own process group and kills the whole group with SIGKILL
    as soon as ``ready()`` is true.

    Returns:
        whether the command was still running when it was killed (a test of a kill mid-run
        asserts it: killing a command that had already finished proves nothing).
    """
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + timeout
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.02)
    running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return running


def wait_until(condition: Callable[[], bool], limit: float = 120) -> None:
    """Polls ``condition`` until it holds; fails the test when ``limit`` seconds pass first."""
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), f"not true within {limit} s"


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie counts as ended)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def sample_hashes(folder: Path) -> dict[str, str]:
    """Returns sample file name -> sha256 for every sample file of a dataset folder."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).glob("shards/*/*"))
        if not p.name.startswith("_") and ".partial" not in str(p.parent)
    }


@pytest.fixture
def cli():
    return run_cli


RENDERED_DIGITS = 40


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory) -> Path:
    """A small rendered digits dataset (40 samples at 32 px), made once per test session."""
    out = tmp_path_factory.mktemp("rendered") / "digits"
    run_cli("render", "digits", "--num", str(RENDERED_DIGITS), "--resolution", "32",
            "--workers", "1", "--quiet", "--out", str(out))  # fmt: skip
    return out
