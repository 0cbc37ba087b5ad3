"""Live previews of a scene spec and dataset renders started from the app.

pyrender is not thread-safe and wants one renderer per process, while Streamlit runs scripts in
threads; so :class:`PreviewRenderer` keeps a few renderers in worker processes (plain ``python -P``
subprocesses, so nothing depends on how the app's main module was started), shared by every
browser tab: a tab takes a free worker, waits a bounded time when all are busy, and a preview
that runs past its timeout is killed (its worker restarts on the next preview). Whole datasets
are rendered by the ``workbench render`` command as a job of the app's registry
(:func:`start_render`): progress is read from its finished shards, and cancelling loses nothing
because rerunning the same render resumes it.

This module imports neither torch nor pyrender in the calling process.
"""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import yaml
from PIL import Image, ImageDraw

from workbench.data.writer import finished_shards
from workbench.errors import WorkbenchError
from workbench.inspect.jobs import (
    JobRecord,
    JobRegistry,
    check_room,
    child_env,
    python_command,
    workbench_command,
)
from workbench.inspect.paths import relative_to_root, resolve_under, state_dir
from workbench.inspect.preview_worker import receive, send
from workbench.resources import scenes_dir
from workbench.scene.assets import asset_files
from workbench.scene.conditions import build_condition
from workbench.scene.spec import parse_spec

VIEW_SIZE = 256
MAX_RESOLUTION = 512
MAX_SAMPLES = 100_000
MAX_WORKERS = max(1, min(16, os.cpu_count() or 1))
BYTES_PER_PIXEL = 10  # rgb 3 + depth 4 + semantic 1 + instance 2, before PNG compression
BYTES_PER_SAMPLE = 4096  # the sample's JSON


def find_specs(root: str | Path) -> dict[str, Path]:
    """Returns label -> file for the bundled scene specs and those in ``ROOT/scenes``."""
    bundled = scenes_dir().resolve()
    specs = {f"bundled: {p.stem}": p for p in sorted(bundled.glob("*.yaml"))}
    folder = Path(root).resolve() / "scenes"
    if folder.resolve() != bundled:
        specs.update({f"scenes/{p.name}": p for p in sorted(folder.glob("*.y*ml"))})
    return specs


@dataclass(frozen=True)
class RangeField:
    """A ``[low, high]`` randomization range of a spec, with bounds for an editor.

    Attributes:
        key: dotted field path (``camera.distance``).
        low: current lower end.
        high: current upper end.
        integer: the range holds counts.
        bounds: the range an editor offers (wider than the current one).
        step: an editor's step: 1 for counts, else about a hundredth of ``bounds``.
    """

    key: str
    low: float
    high: float
    integer: bool
    bounds: tuple[float, float]

    @property
    def step(self) -> float:
        if self.integer:
            return 1.0
        return float(10 ** np.floor(np.log10((self.bounds[1] - self.bounds[0]) / 100)))


def _bounds(key: str, low: float, high: float, integer: bool) -> tuple[float, float]:
    if key.endswith("_deg"):
        return (min(low, -180.0), max(high, 360.0))
    width = max(high - low, abs(low), abs(high), 10.0 if integer else 1.0)
    lo = low - width if low < 0 else 0.0
    return (float(int(lo)), float(int(high + width))) if integer else (lo, high + width)


def range_fields(spec) -> list[RangeField]:
    """Lists every randomization range of a spec (every pair of numbers), depth first."""
    out = []

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                visit(f"{prefix}{name}" + ("." if isinstance(item, dict) else ""), item)
        elif (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            integer = all(isinstance(v, int) for v in value)
            low, high = float(value[0]), float(value[1])
            out.append(RangeField(prefix, low, high, integer, _bounds(prefix, low, high, integer)))

    visit("", spec.model_dump(mode="python"))
    return out


def apply_overrides(spec, overrides: dict[str, Any]):
    """Returns a copy of ``spec`` with dotted fields replaced, validated like a spec file.

    Raises:
        WorkbenchError: an override names an unknown field or breaks a rule of the spec.
    """
    data = spec.model_dump(mode="json")
    for key, value in overrides.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise WorkbenchError(f"{key}: no such field in a {spec.kind} spec")
            node = node[part]
        if last not in node:
            raise WorkbenchError(f"{key}: no such field in a {spec.kind} spec")
        node[last] = list(value) if isinstance(value, tuple) else value
    return parse_spec(data, "edited spec")


# --- views of one sample ------------------------------------------------------------------


def enlarge(image: np.ndarray, size: int = VIEW_SIZE) -> np.ndarray:
    """Returns a uint8 image resized to ``size`` x ``size`` with nearest-neighbour sampling."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST))


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """Maps depth to colour (near = bright) over the hit pixels; misses stay black.

    Returns:
        uint8 H x W x 3.
    """
    hit = depth > 0
    out = np.zeros((*depth.shape, 3), np.uint8)
    if hit.any():
        low, high = float(depth[hit].min()), float(depth[hit].max())
        scaled = (depth - low) / max(high - low, 1e-6)
        colours = matplotlib.colormaps["magma_r"](np.clip(scaled, 0, 1))[..., :3]
        out[hit] = np.round(colours[hit] * 255).astype(np.uint8)
    return out


def colorize_ids(ids: np.ndarray) -> np.ndarray:
    """Gives every id (instance or class) one of 20 colours; 0 stays black. Returns uint8 RGB."""
    colours = np.round(matplotlib.colormaps["tab20"](np.arange(20))[:, :3] * 255).astype(np.uint8)
    out = colours[(ids.astype(np.int64) - 1) % 20]
    out[ids == 0] = 0
    return out


def overlay_segmentation(rgb: np.ndarray, seg: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Blends one colour per semantic id over ``rgb``; background (0) is left as it is."""
    colours = matplotlib.colormaps["tab20"](np.arange(20))[:, :3] * 255
    tinted = colours[seg.astype(int) % 20]
    mask = (seg > 0)[..., None]
    blended = np.where(mask, (1 - alpha) * rgb + alpha * tinted, rgb)
    return np.round(blended).astype(np.uint8)


def draw_boxes(rgb: np.ndarray, objects: list[dict], size: int = VIEW_SIZE) -> np.ndarray:
    """Returns ``rgb`` enlarged to ``size`` with every object's 2D box and class drawn."""
    image = Image.fromarray(enlarge(rgb, size))
    scale = size / rgb.shape[1]
    draw = ImageDraw.Draw(image)
    for obj in objects:
        if obj.get("box"):
            x0, y0, x1, y1 = (v * scale for v in obj["box"])
            draw.rectangle((x0, y0, x1, y1), outline=(255, 230, 0), width=2)
            draw.text((x0 + 3, y0 + 2), str(obj.get("class_name", "")), fill=(255, 230, 0))
    return np.asarray(image)


VISIBLE_COLOUR, AMODAL_COLOUR = (255, 230, 0), (0, 200, 255)


def _outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of a boolean mask with a 4-neighbour outside it (its one-pixel outline)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def draw_amodal(
    rgb: np.ndarray, inst: np.ndarray, objects: list[dict], size: int = VIEW_SIZE
) -> np.ndarray:
    """Returns ``rgb`` enlarged to ``size`` with each thing's visible outline (yellow) and its
    amodal outline, the full extent occluded parts included (cyan), from the recorded RLE."""
    from pycocotools import mask as mask_utils

    scale = max(1, size // rgb.shape[1])
    big = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1).copy()
    for obj in objects:
        full = obj.get("amodal_mask")
        layers = [(inst == obj["instance_id"], VISIBLE_COLOUR)]
        if full is not None:
            layers.insert(0, (mask_utils.decode(full).astype(bool), AMODAL_COLOUR))
        for mask, colour in layers:
            edge = _outline(np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1))
            big[edge] = colour
    return enlarge(big, size)


def sample_views(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], size: int = VIEW_SIZE
) -> dict[str, np.ndarray]:
    """Returns the views the app shows of one sample, each uint8 ``size`` x ``size`` x 3:
    ``rgb``, ``depth`` (colour map), ``segmentation`` (overlay), ``instances``, ``boxes`` and,
    when the sample records amodal masks, ``amodal`` (visible and full-extent outlines)."""
    rgb = arrays["rgb"]
    objects = meta.get("objects", [])
    views = {
        "rgb": enlarge(rgb, size),
        "depth": enlarge(colorize_depth(arrays["depth"]), size),
        "segmentation": enlarge(overlay_segmentation(rgb, arrays["seg"]), size),
        "instances": enlarge(colorize_ids(arrays["inst"]), size),
        "boxes": draw_boxes(rgb, objects, size),
    }
    if any(obj.get("amodal_mask") is not None for obj in objects):
        views["amodal"] = draw_amodal(rgb, arrays["inst"], objects, size)
    return views


# --- the preview workers ------------------------------------------------------------------


def check_spec(root: str | Path, spec) -> None:
    """Refuses a spec the app must not render: a resolution above :data:`MAX_RESOLUTION`, or a
    mesh or texture file (:func:`~workbench.scene.assets.asset_files`) outside the data root and
    outside the bundled scenes' own folder (their example meshes ship there).

    Specs reach the app through :func:`~workbench.scene.spec.load_spec`, which makes their mesh
    paths absolute, so the files checked here are the files the workers load.

    Raises:
        WorkbenchError: one line naming the field or the file.
    """
    if spec.resolution > MAX_RESOLUTION:
        raise WorkbenchError(
            f"resolution: at most {MAX_RESOLUTION} in the app, got {spec.resolution}; "
            "use workbench render for larger images"
        )
    bundled = scenes_dir().resolve()
    for path in asset_files(spec):
        if not path.resolve().is_relative_to(bundled):
            resolve_under(root, path)


class PreviewRenderer:
    """Up to ``workers`` renderers in worker processes (``workbench.inspect.preview_worker``),
    shared by every thread; no call waits on another beyond ``wait`` seconds.

    Each worker keeps its renderer between calls. A call takes a free worker, or waits up to
    ``wait`` seconds for one and then says the renderers are busy. A reply that takes longer than
    ``timeout`` seconds (starting the worker included) kills the worker; the next call starts a
    new one. Workers run in the data root as ``python -P``.

    Args:
        root: the data root (the workers' working folder).
        workers: most worker processes at once.
        timeout: seconds a preview may take.
        wait: seconds a call waits for a free worker.
        command: the worker's command line (the real worker unless a test says otherwise).
    """

    def __init__(
        self,
        root: str | Path,
        workers: int = 2,
        timeout: float = 60.0,
        wait: float = 10.0,
        command: list[str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout, self.wait, self.workers = timeout, wait, workers
        self._command = command or python_command("workbench.inspect.preview_worker")
        self._free: queue.Queue[subprocess.Popen | None] = queue.Queue()
        for _ in range(workers):
            self._free.put(None)  # a slot whose worker starts on first use

    def busy(self) -> int:
        """Workers serving a call right now."""
        return self.workers - self._free.qsize()

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            self._command, cwd=self.root, env=child_env(), bufsize=0,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip

    @staticmethod
    def _end(worker: subprocess.Popen) -> None:
        worker.kill()
        worker.wait()

    def render(self, spec, seed: int = 0, index: int = 0, condition: str = "clone"):
        """Renders sample ``index`` of ``(spec, seed)`` under ``condition``.

        Returns:
            a :class:`~workbench.render.sample.Sample` (arrays and metadata).

        Raises:
            WorkbenchError: unknown condition, a resolution above the app's bound, asset files
                outside the data root, unloadable assets, no OpenGL backend, every worker busy
                past ``wait``, a preview past ``timeout``, or a worker that stopped.
        """
        from workbench.scene.kinds import preflight

        build_condition(condition)
        check_spec(self.root, spec)
        preflight(spec)
        request = (spec.model_dump(mode="json"), int(seed), int(index), condition)
        try:
            worker = self._free.get(timeout=self.wait)
        except queue.Empty:
            raise WorkbenchError(
                f"preview: all {self.workers} preview renderers are busy with other tabs for "
                f"over {self.wait:.0f} s; preview again in a moment"
            ) from None
        try:
            if worker is None or worker.poll() is not None:
                worker = self._start()
            send(worker.stdin, request)
            status, payload = receive(worker.stdout, time.monotonic() + self.timeout)
        except TimeoutError:
            self._end(worker)
            worker = None
            raise WorkbenchError(
                f"preview: took longer than {self.timeout:.0f} s and was stopped (its renderer "
                "restarts on the next preview); lower the resolution or the object counts"
            ) from None
        except (EOFError, BrokenPipeError):
            self._end(worker)
            code, worker = worker.returncode, None
            raise WorkbenchError(
                f"the preview renderer stopped (exit {code}); preview again to restart it"
            ) from None
        finally:
            self._free.put(worker)
        if status == "error":
            raise WorkbenchError(payload)
        if status == "crash":
            raise RuntimeError(f"preview worker failed:\n{payload}")
        return payload

    def close(self) -> None:
        """Stops the idle workers (each closes when its stdin does)."""
        for _ in range(self.workers):
            try:
                worker = self._free.get(timeout=self.wait)
            except queue.Empty:
                break
            if worker is not None and worker.poll() is None:
                worker.stdin.close()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._end(worker)
            self._free.put(None)


# --- dataset renders ----------------------------------------------------------------------


@dataclass
class DatasetRender:
    """A ``workbench render`` job of the app's registry.

    Attributes:
        record: the job.
        root: the data root.
    """

    record: JobRecord
    root: Path

    @property
    def folders(self) -> list[Path]:
        """The dataset folders it writes (one per condition)."""
        return [self.root / f for f in self.record.info["folders"]]

    @property
    def total(self) -> int:
        """Samples it writes in all."""
        return int(self.record.info["total"])

    def done(self) -> int:
        """Samples in finished shards so far."""
        return sum(r["count"] for f in self.folders for r in finished_shards(f).values())

    def progress(self) -> float:
        """Fraction of the samples in finished shards (0 to 1)."""
        return min(1.0, self.done() / self.total)


def render_jobs(root: str | Path) -> list[DatasetRender]:
    """Returns the render jobs of the data root, newest first, with their current status."""
    base = Path(root).resolve()
    return [DatasetRender(r, base) for r in JobRegistry(base).jobs("render")]


def render_need(num: int, resolution: int, conditions: int) -> int:
    """Bytes a render plausibly needs: every pass uncompressed plus the JSON, per sample."""
    return num * conditions * (resolution * resolution * BYTES_PER_PIXEL + BYTES_PER_SAMPLE)


def start_render(
    root: str | Path,
    spec,
    out: str,
    num: int,
    seed: int = 0,
    conditions: list[str] | None = None,
    workers: int = 1,
    detached: bool = False,
) -> DatasetRender:
    """Writes ``spec`` to ``ROOT/.workbench-app/specs`` and starts ``workbench render`` on it as
    a job of the app's registry.

    Shards hold about a twentieth of the samples, so progress moves in small steps. The disk
    under the root must have :func:`render_need` bytes free (at least 200 MB).

    Args:
        root: the data root.
        spec: the (edited) scene spec.
        out: output folder under the root.
        num: samples per condition, 1 to :data:`MAX_SAMPLES`.
        seed: dataset seed.
        conditions: render conditions; None uses the spec's.
        workers: render processes, 1 to :data:`MAX_WORKERS`.
        detached: keep running after the app stops.

    Raises:
        WorkbenchError: ``out`` leaves the root, a count or the resolution is out of bounds, a
            condition is unknown, the disk is nearly full, or a running job writes into ``out``.
    """
    base = Path(root).resolve()
    folder = resolve_under(base, out)
    if folder == base or folder.is_relative_to(base / ".workbench-app"):
        raise WorkbenchError(f"{out}: choose a folder under the data root, not the root itself")
    if not 1 <= num <= MAX_SAMPLES:
        raise WorkbenchError(f"samples: must lie in [1, {MAX_SAMPLES}], got {num}")
    if not 1 <= workers <= MAX_WORKERS:
        raise WorkbenchError(f"workers: must lie in [1, {MAX_WORKERS}], got {workers}")
    if not 0 <= seed < 2**32:
        raise WorkbenchError(f"seed: must lie in [0, 2**32), got {seed}")
    for name in conditions or ():  # the spec's own were checked when it was read
        build_condition(name, "conditions")
    check_spec(base, spec)
    conditions = list(dict.fromkeys(conditions or spec.conditions))
    check_room(base, render_need(num, spec.resolution, len(conditions)), f"render into {out}")
    spec_file = state_dir(base, "specs") / f"{folder.name}-{secrets.token_hex(4)}.yaml"
    shard_size = max(1, -(-num // 20))
    command = workbench_command(
        "render", str(spec_file), "--out", str(folder), "--num", str(num), "--seed", str(seed),
        "--workers", str(workers), "--shard-size", str(shard_size),
        "--conditions", ",".join(conditions), "--quiet",
    )  # fmt: skip
    folders = [folder] if len(conditions) == 1 else [folder / c for c in conditions]
    info = {
        "folders": [relative_to_root(base, f) for f in folders],
        "total": num * len(conditions),
    }
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    try:
        record = JobRegistry(base).start("render", command, folder, detached=detached, info=info)
    except WorkbenchError:
        spec_file.unlink()
        raise
    return DatasetRender(record, base)
