"""A render job: plan shards, resume, render with a process pool or Ray, finish the manifest.

Samples are grouped into shards of ``shard_size`` consecutive indices. Every shard is rendered
by one worker and written atomically, so a job killed at any moment is resumed by running the
same command again: finished shards are kept, unfinished ones are rendered anew, and because
each sample depends only on ``(spec, seed, index, condition)`` the result is byte-identical to
an uninterrupted run whatever the worker count, shard split, backend or resume point.

A run holds the lock of every dataset folder it writes (see
:func:`~workbench.data.writer.dataset_lock`): a second render into a folder being written is
refused with the holder's host, pid and start time, while the slices of one ``--shard I/N``
split (processes, batch jobs or hosts on a shared folder) run side by side. Resuming needs the
same spec, seed, counts, condition, GL renderer, mesh and texture files (sha256) and workbench
version, so shards from different renderers or assets never mix under one manifest (a finished
dataset is reopened whatever renders it now).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import logging
import multiprocessing
import os
import platform
import signal
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

from workbench import __version__
from workbench.data.format import FORMAT_NAME, FORMAT_VERSION, MODALITIES
from workbench.data.reader import PAIRS
from workbench.data.writer import (
    clear_partials,
    dataset_lock,
    finish_manifest,
    finished_shards,
    open_dataset_dir,
    write_json_atomic,
    write_shard,
)
from workbench.errors import WorkbenchError
from workbench.render import gl
from workbench.scene.assets import asset_files
from workbench.scene.conditions import build_condition
from workbench.scene.kinds import preflight

log = logging.getLogger(__name__)
_IDENTITY = ("kind", "spec", "seed", "num_samples", "shard_size", "condition")
_PROVENANCE = ("renderer.gl_renderer", "renderer.versions.workbench", "assets")


@dataclass
class RenderJob:
    """What to render and how.

    Attributes:
        spec: validated scene spec.
        out: output folder (a dataset, or one dataset per condition when several).
        num: number of samples per condition.
        seed: dataset seed.
        workers: render processes (local) or concurrent Ray tasks.
        shard: ``(i, n)``: render only shards ``k`` with ``k % n == i`` (for batch schedulers).
        backend: ``local`` (process pool) or ``ray``.
        ray_address: address of an existing Ray cluster; None starts a local one for the run.
        conditions: render conditions; None uses the spec's.
        shard_size: samples per shard.
        gl: ``auto``, ``egl`` or ``osmesa``.
        progress: show a progress bar.
        source: where the spec came from, for provenance.
    """

    spec: Any
    out: Path
    num: int
    seed: int = 0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    shard: tuple[int, int] = (0, 1)
    backend: str = "local"
    ray_address: str | None = None
    conditions: list[str] | None = None
    shard_size: int = 64
    gl: str = "auto"
    progress: bool = True
    source: str = ""
    command: list[str] = field(default_factory=lambda: list(sys.argv))

    def validate(self) -> None:
        """Raises :class:`WorkbenchError` for values no render can use."""
        if self.num < 1:
            raise WorkbenchError(f"--num: must be a positive number of samples, got {self.num}")
        if self.workers < 1:
            raise WorkbenchError(f"--workers: must be at least 1, got {self.workers}")
        if self.shard_size < 1:
            raise WorkbenchError(f"--shard-size: must be at least 1, got {self.shard_size}")
        i, n = self.shard
        if n < 1 or not 0 <= i < n:
            raise WorkbenchError(f"--shard: expected I/N with 0 <= I < N, got {i}/{n}")
        if self.backend not in ("local", "ray"):
            raise WorkbenchError(f"--backend: unknown {self.backend!r}; allowed: local, ray")
        for name in self.conditions or ():  # the spec's own were checked when it was read
            build_condition(name, "--conditions")

    def condition_list(self) -> list[str]:
        """Returns the conditions to render, without duplicates."""
        return list(dict.fromkeys(self.conditions or self.spec.conditions))

    def dataset_dirs(self) -> dict[str, Path]:
        """Returns condition -> dataset folder (``out`` itself for a single condition)."""
        names = self.condition_list()
        if len(names) == 1:
            return {names[0]: Path(self.out)}
        return {name: Path(self.out) / name for name in names}

    @property
    def num_shards(self) -> int:
        return -(-self.num // self.shard_size)

    def my_shards(self) -> list[int]:
        """Returns the shards this process renders."""
        i, n = self.shard
        return [k for k in range(self.num_shards) if k % n == i]


def _versions() -> dict[str, str]:
    out = {"workbench": __version__, "python": platform.python_version()}
    for package in ("scikit-robot-pyrender", "PyOpenGL", "numpy", "trimesh", "pillow"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "missing"
    return out


def asset_digests(spec) -> dict[str, str]:
    """Returns file -> sha256 of every mesh and texture file ``spec`` uses."""
    out = {}
    for path in asset_files(spec):
        with open(path, "rb") as source:
            out[str(path)] = hashlib.file_digest(source, "sha256").hexdigest()
    return out


def _manifest(
    job: RenderJob, condition: str, info: gl.GLInfo, assets: dict[str, str]
) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": job.spec.kind,
        "name": job.spec.name,
        "spec": job.spec.model_dump(mode="json"),
        "spec_source": job.source,
        "seed": job.seed,
        "num_samples": job.num,
        "shard_size": job.shard_size,
        "num_shards": job.num_shards,
        "condition": condition,
        "resolution": job.spec.resolution,
        "classes": {str(i): c for i, c in enumerate(job.spec.classes())},
        "modalities": MODALITIES,
        "renderer": {
            "backend": info.backend,
            "gl_renderer": info.renderer,
            "versions": _versions(),
        },
        "assets": assets,
        "command": job.command,
        "complete": False,
        "shards": [],
    }


_RENDERER = None


def _init_worker(backend: str) -> None:
    """Pool initializer: die with the parent, pin the GL backend, one llvmpipe thread.

    Parallelism comes from worker processes: one rasterizer thread per worker measured faster
    than llvmpipe's own threads at dataset resolutions (set LP_NUM_THREADS to override).
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    gl.activate(backend)
    os.environ.setdefault("LP_NUM_THREADS", "1")


def render_unit(
    spec, seed: int, num: int, shard_size: int, folder: str, condition: str, shard: int
) -> dict:
    """Renders and writes one shard of one condition (runs inside a worker)."""
    global _RENDERER
    from workbench.render.sample import render_sample
    from workbench.render.view import Renderer

    if _RENDERER is None or _RENDERER.size != (spec.resolution, spec.resolution):
        if _RENDERER is not None:
            _RENDERER.close()  # before the new one: an EGL display torn down later breaks it
        _RENDERER = Renderer(spec.resolution, spec.resolution)
    start = shard * shard_size
    samples = (
        render_sample(_RENDERER, spec, seed, i, condition)
        for i in range(start, min(start + shard_size, num))
    )
    return write_shard(Path(folder), shard, start, samples)


@contextlib.contextmanager
def _blank_main() -> Iterator[None]:
    """Makes ``__main__`` a blank module while worker processes are started.

    A spawned worker first imports its parent's ``__main__``. When a host has put a script
    there (Streamlit and its AppTest run pages as ``__main__``; a notebook or a script without an
    ``if __name__ == "__main__"`` guard), that import fails or runs the script again in every
    worker. Render workers need nothing from it.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _run_local(job: RenderJob, units: list[tuple], info: gl.GLInfo, bar: tqdm) -> None:
    if job.workers == 1:
        _init_worker(info.backend)
        for unit in units:
            bar.update(render_unit(*unit)["count"])
        return
    # A worker that dies (killed, or crashed in the GL driver) breaks the pool and ends the run
    # with an error; multiprocessing.Pool would replace it silently and wait forever.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(job.workers, context, _init_worker, (info.backend,)) as pool:
        with _blank_main():  # a spawning executor starts its workers inside submit()
            futures = [pool.submit(render_unit, *unit) for unit in units]
        try:
            for future in as_completed(futures):
                bar.update(future.result()["count"])
        except BrokenProcessPool:
            raise WorkbenchError(
                f"{job.out}: a render worker died (killed, or crashed in the GL driver); the "
                "finished shards are kept: run the same command again to resume"
            ) from None
        finally:
            for future in futures:
                future.cancel()


def _run_ray(job: RenderJob, units: list[tuple], info: gl.GLInfo, bar: tqdm) -> None:
    try:
        import ray
    except ImportError:
        raise WorkbenchError(
            "--backend ray needs Ray: pip install 'workbench[distributed]'"
        ) from None
    env = {"PYOPENGL_PLATFORM": info.backend, "LP_NUM_THREADS": "1"}
    started = not ray.is_initialized()
    if started:
        ray.init(
            address=job.ray_address,
            num_cpus=None if job.ray_address else job.workers,
            include_dashboard=False if not job.ray_address else None,
            runtime_env={"env_vars": env},
            log_to_driver=False,
            logging_level=logging.WARNING,
            _node_ip_address=None
            if job.ray_address
            else "127.0.0.1",  # a local cluster stays on loopback
        )
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(render_unit)
        pending = [task.remote(*unit) for unit in units]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(ray.get(done[0])["count"])
    finally:
        if started:
            ray.shutdown()


def run(job: RenderJob) -> dict[str, Path]:
    """Runs (or resumes) a render job.

    Returns:
        condition -> dataset folder.

    Raises:
        WorkbenchError: bad job values, assets that do not load, an output folder that holds
            something else or that another run is writing, or no working OpenGL backend.
    """
    job.validate()
    preflight(job.spec)
    info = gl.choose(job.gl)
    assets = asset_digests(job.spec)
    dirs = job.dataset_dirs()
    pairs = {"conditions": list(dirs), "seed": job.seed, "num_samples": job.num}
    if len(dirs) > 1:
        _check_paired_out(Path(job.out), pairs)
    with contextlib.ExitStack() as locks:
        for folder in dirs.values():
            locks.enter_context(dataset_lock(folder, job.shard))
        manifests = {
            c: open_dataset_dir(folder, _manifest(job, c, info, assets), _IDENTITY, _PROVENANCE)
            for c, folder in dirs.items()
        }
        if len(dirs) > 1:
            write_json_atomic(Path(job.out) / PAIRS, pairs)
        _render_todo(job, dirs, info)
        for condition, folder in dirs.items():
            finish_manifest(folder, manifests[condition])
    return dirs


def _check_paired_out(out: Path, pairs: dict[str, Any]) -> None:
    """Refuses an ``--out`` for paired conditions that holds anything but this paired set."""
    if out.exists() and not out.is_dir():
        raise WorkbenchError(f"--out {out}: is a file, not a folder; choose a folder")
    if not out.is_dir():
        return
    own = {PAIRS, *pairs["conditions"]}
    others = sorted(
        p.name for p in out.iterdir() if p.name not in own and not p.name.startswith(f".{PAIRS}.")
    )
    if others:
        shown = ", ".join(others[:3]) + (" ..." if len(others) > 3 else "")
        raise WorkbenchError(
            f"--out {out}: holds other things ({shown}), not only the paired conditions "
            f"{', '.join(pairs['conditions'])}; choose a new or empty --out"
        )
    if (out / PAIRS).exists():
        try:
            old = json.loads((out / PAIRS).read_text())
        except (OSError, ValueError):
            old = None
        if old != pairs:
            raise WorkbenchError(
                f"--out {out}: holds another paired set ({out / PAIRS} differs: conditions, "
                "seed or count); choose a new --out"
            )


def _render_todo(job: RenderJob, dirs: dict[str, Path], info: gl.GLInfo) -> None:
    """Renders this process's unfinished shards of every condition."""
    units = []
    for condition, folder in dirs.items():
        done = finished_shards(folder)
        todo = [k for k in job.my_shards() if k not in done]
        clear_partials(folder, todo)
        units += [
            (job.spec, job.seed, job.num, job.shard_size, str(folder), condition, k) for k in todo
        ]
    total = sum(min(job.shard_size, job.num - u[-1] * job.shard_size) for u in units)
    log.info(
        "rendering %d samples in %d shards with %s (%s)",
        total,
        len(units),
        info.backend,
        info.renderer,
    )
    with tqdm(
        total=total,
        unit="sample",
        desc=f"render {job.spec.name}",
        disable=not job.progress,
        dynamic_ncols=True,
    ) as bar:
        if units:
            (_run_ray if job.backend == "ray" else _run_local)(job, units, info, bar)
