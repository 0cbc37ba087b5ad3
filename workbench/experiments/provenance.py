"""Where a result came from: the ``provenance`` block of every JSON a study or benchmark writes.

It records the git commit (and whether the tree was dirty), UTC start and end, the exact
command, the host (CPU model, cores, affinity), Python and package versions, torch's thread
count, the thread environment variables, the GL renderer where the run renders, the seeds, and
the wall and CPU seconds of the process and its children. Versions come from
``importlib.metadata``, so this module imports nothing heavy.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "workbench",
    "torch",
    "pytorch-lightning",
    "torchmetrics",
    "kornia",
    "diffusers",
    "numpy",
    "scipy",
    "scikit-robot-pyrender",
    "PyOpenGL",
)
OPTIONAL_PACKAGES = ("torchattacks", "adversarial-robustness-toolbox")
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "LP_NUM_THREADS",
    "PYOPENGL_PLATFORM",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTHONHASHSEED",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "MKL_CBWR",
)
MAX_CHANGED = 50


def package_versions(
    packages: tuple[str, ...] = PACKAGES, optional: tuple[str, ...] = OPTIONAL_PACKAGES
) -> dict[str, str | None]:
    """Returns the installed version of each package (None when missing); ``optional`` ones
    appear only when installed."""
    out: dict[str, str | None] = {}
    for name in (*packages, *optional):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name not in optional:
                out[name] = None
    return out


def git_state(root: Path = ROOT) -> dict[str, Any]:
    """Returns the checkout's commit, whether tracked or untracked (not ignored) files differ
    from it, and the first changed paths; ``commit`` is None outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "dirty": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"commit": commit, "dirty": bool(changed), "changed": changed[:MAX_CHANGED]}


def host() -> dict[str, Any]:
    """Returns the CPU model, physical cores, logical CPUs, the CPUs this process may use, and
    the operating system."""
    model, cores = platform.processor() or None, set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for block in text.split("\n\n"):
        fields = {
            key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in block.splitlines())
        }
        model = fields.get("model name", model)
        if "core id" in fields:
            cores.add((fields.get("physical id"), fields["core id"]))
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": model,
        "physical_cores": len(cores) or None,
        "cpu_count": os.cpu_count(),
        "affinity": len(affinity) if affinity is not None else None,
        "platform": platform.platform(),
    }


def gl_renderers(backends: tuple[str, ...]) -> dict[str, str]:
    """Returns each OpenGL backend's ``GL_RENDERER`` string (probed in a subprocess by
    :func:`workbench.render.gl.probe`), or why it is unavailable."""
    from workbench.errors import WorkbenchError
    from workbench.render import gl

    out = {}
    for backend in backends:
        try:
            out[backend] = gl.probe(backend).renderer
        except WorkbenchError as exc:
            out[backend] = f"unavailable: {exc}"
    return out


def load_average() -> list[float] | None:
    """Returns the 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def command(argv: list[str] | None = None) -> str:
    """Returns the command line as typed: ``python SCRIPT.py ARGS`` for a script, else the
    entry point's name and its arguments (``workbench experiment sim2real ...``)."""
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py"):
        return shlex.join(["python", *argv])
    if argv and argv[0] == "-c":
        return shlex.join(["python", *argv])
    return shlex.join([Path(argv[0]).name, *argv[1:]]) if argv else ""


class Recorder:
    """Started when a run begins; :meth:`block` returns its provenance block at the end.

    Args:
        seeds: the seeds of the run (a list, or a dict naming what each seeds).
        gl: the OpenGL renderer(s) the run rendered with, when it renders.
    """

    def __init__(self, seeds: Any = None, gl: dict[str, Any] | None = None):
        self.seeds, self.gl = seeds, gl
        self.git = git_state()  # the code that ran: a commit made during a long run is not it
        self.started = datetime.now(UTC)
        self._wall, self._times = time.perf_counter(), os.times()
        self._load = load_average()  # other work on the machine before this run's own

    def block(self, **extra: Any) -> dict[str, Any]:
        """Returns the provenance block now (``extra`` items are added to it).

        CPU seconds count this process and the children it has waited for, since the
        recorder started.
        """
        now = os.times()
        process = (now.user - self._times.user) + (now.system - self._times.system)
        children = (now.children_user - self._times.children_user) + (
            now.children_system - self._times.children_system
        )
        torch = sys.modules.get("torch")
        block = {
            "git": self.git,
            "started_utc": _utc(self.started),
            "finished_utc": _utc(datetime.now(UTC)),
            "command": command(),
            "argv": list(sys.argv),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "executable": sys.executable,
            "packages": package_versions(),
            "host": host(),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "torch_interop_threads": torch.get_num_interop_threads() if torch is not None else None,
            "env": {name: os.environ[name] for name in THREAD_ENV if name in os.environ},
            "gl": self.gl,
            "seeds": self.seeds,
            "load_average": {"start": self._load, "end": load_average()},
            "wall_s": round(time.perf_counter() - self._wall, 3),
            "cpu_s": {
                "process": round(process, 3),
                "children": round(children, 3),
                "total": round(process + children, 3),
            },
        }
        return {**block, **extra}
