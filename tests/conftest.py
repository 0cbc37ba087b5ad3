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


def load_benchmark(name: str):
    """Imports ``benchmarks/NAME.py`` (the benchmarks folder is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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


@pytest.fixture(scope="session")
def rendered_streets(tmp_path_factory) -> Path:
    """Rendered streets at 32 px, made once per test session: ``train`` (48 samples, seed 0)
    and ``test`` (8 paired samples, seed 1, conditions clone and fog)."""
    root = tmp_path_factory.mktemp("streets")
    run_cli("render", "street", "--num", "48", "--resolution", "32", "--seed", "0",
            "--workers", "1", "--quiet", "--out", str(root / "train"))  # fmt: skip
    run_cli("render", "street", "--num", "8", "--resolution", "32", "--seed", "1", "--workers",
            "1", "--quiet", "--conditions", "clone,fog", "--out", str(root / "test"))  # fmt: skip
    return root


def street_config(tmp: Path, streets: Path, config: str, sources: list | None = None) -> Path:
    """Writes ``configs/CONFIG`` made small for the tests (32 px, width 8, 2 epochs, runs under
    ``tmp``) on :func:`rendered_streets`: training on ``train``, each test condition a test
    source, or on ``sources`` when given."""
    import yaml

    base = yaml.safe_load((ROOT / "configs" / config).read_text())
    base["trainer"].update({"max_epochs": 2, "default_root_dir": str(tmp / "runs"),
                            "enable_progress_bar": False, "log_every_n_steps": 1})  # fmt: skip
    base["model"]["init_args"]["backbone_options"]["width"] = 8
    data = base["data"]["init_args"]
    data.update({"image_size": 32, "batch_size": 16})
    data["sources"] = sources or [
        {"kind": "rendered", "path": str(streets / "train"), "name": "clone"},
        *({"kind": "rendered", "path": str(streets / "test" / name), "name": f"test_{name}",
           "role": "test"} for name in ("clone", "fog")),
    ]  # fmt: skip
    path = tmp / config
    path.write_text(yaml.safe_dump(base))
    return path


def dense_squares(count: int, seed: int, size: int = 16) -> dict:
    """A dense batch: images with a red square (id 2) on grey road (id 1) under a dark band
    (id 0); depth grows downwards from 2 to 10 m and is 0 (no label) in the band."""
    import numpy as np
    import torch

    generator = np.random.default_rng(seed)
    image = np.full((count, 3, size, size), 0.5, np.float32)
    seg = np.ones((count, size, size), np.int64)
    image[:, :, :3] = 0.05
    seg[:, :3] = 0
    for i in range(count):
        y, x = generator.integers(4, size - 5, 2)
        image[i, :, y : y + 4, x : x + 4] = np.array([0.9, 0.1, 0.1], np.float32)[:, None, None]
        seg[i, y : y + 4, x : x + 4] = 2
    depth = np.broadcast_to(np.linspace(2, 10, size, dtype=np.float32)[:, None], (size, size))
    depth = np.repeat(depth[None], count, 0).copy()
    depth[:, :3] = 0
    return {"image": torch.tensor(image), "seg": torch.tensor(seg), "depth": torch.tensor(depth),
            "source": torch.zeros(count, dtype=torch.long)}  # fmt: skip


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
