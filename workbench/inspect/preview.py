"""Live previews of a scene spec and dataset renders started from the app.

pyrender is not thread-safe and wants one renderer per process, while Streamlit runs scripts in
threads; so :class:`PreviewRenderer` keeps one renderer in a dedicated worker process (a plain
subprocess, so nothing depends on how the app's main module was started) and every preview goes
through it. Whole datasets are rendered by the ``workbench render`` command in a
subprocess (:func:`start_render`): progress is read from its finished shards, and cancelling
loses nothing because rerunning the same render resumes it.

This module imports neither torch nor pyrender in the calling process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import yaml
from PIL import Image, ImageDraw

from workbench.data.writer import finished_shards
from workbench.errors import WorkbenchError
from workbench.inspect.jobs import Job, new_log, workbench_command
from workbench.inspect.paths import resolve_under, state_dir
from workbench.inspect.preview_worker import receive, send
from workbench.scene.spec import parse_spec

SCENES_DIR = Path(__file__).resolve().parent.parent.parent / "scenes"
VIEW_SIZE = 256


def find_specs(root: str | Path) -> dict[str, Path]:
    """Returns label -> file for the bundled scene specs and those in ``ROOT/scenes``."""
    specs = {f"bundled: {p.stem}": p for p in sorted(SCENES_DIR.glob("*.yaml"))}
    folder = Path(root).resolve() / "scenes"
    if folder.resolve() != SCENES_DIR:
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


def sample_views(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], size: int = VIEW_SIZE
) -> dict[str, np.ndarray]:
    """Returns the views the app shows of one sample, each uint8 ``size`` x ``size`` x 3:
    ``rgb``, ``depth`` (colour map), ``segmentation`` (overlay), ``instances`` and ``boxes``."""
    rgb = arrays["rgb"]
    return {
        "rgb": enlarge(rgb, size),
        "depth": enlarge(colorize_depth(arrays["depth"]), size),
        "segmentation": enlarge(overlay_segmentation(rgb, arrays["seg"]), size),
        "instances": enlarge(colorize_ids(arrays["inst"]), size),
        "boxes": draw_boxes(rgb, meta.get("objects", []), size),
    }


# --- the preview worker -------------------------------------------------------------------


class PreviewRenderer:
    """One renderer in its own worker process (``workbench.inspect.preview_worker``); safe to
    call from any thread.

    Calls are served one at a time by the worker, which keeps its renderer between calls; a
    worker that died is started again on the next call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _worker(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "workbench.inspect.preview_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        return self._proc

    def render(self, spec, seed: int = 0, index: int = 0, condition: str = "clone"):
        """Renders sample ``index`` of ``(spec, seed)`` under ``condition``.

        Returns:
            a :class:`~workbench.render.sample.Sample` (arrays and metadata).

        Raises:
            WorkbenchError: unknown condition, unloadable assets, no OpenGL backend, or a worker
                that stopped.
        """
        from workbench.render.conditions import CONDITIONS
        from workbench.scene.kinds import preflight

        if condition not in CONDITIONS:
            raise WorkbenchError(
                f"condition: unknown {condition!r}; allowed: {', '.join(CONDITIONS)}"
            )
        preflight(spec)
        request = (spec.model_dump(mode="json"), int(seed), int(index), condition)
        with self._lock:
            worker = self._worker()
            try:
                send(worker.stdin, request)
                status, payload = receive(worker.stdout)
            except (EOFError, BrokenPipeError):
                worker.kill()
                worker.wait()
                raise WorkbenchError(
                    f"the preview renderer stopped (exit {worker.returncode}); "
                    "preview again to restart it"
                ) from None
        if status == "error":
            raise WorkbenchError(payload)
        if status == "crash":
            raise RuntimeError(f"preview worker failed:\n{payload}")
        return payload

    def close(self) -> None:
        """Stops the worker process."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None


# --- dataset renders ----------------------------------------------------------------------


@dataclass
class DatasetRender:
    """A ``workbench render`` running in a subprocess.

    Attributes:
        job: the subprocess.
        folders: the dataset folders it writes (one per condition).
        total: samples it writes in all.
    """

    job: Job
    folders: list[Path]
    total: int

    def done(self) -> int:
        """Samples in finished shards so far."""
        return sum(r["count"] for f in self.folders for r in finished_shards(f).values())

    def progress(self) -> float:
        """Fraction of the samples in finished shards (0 to 1)."""
        return min(1.0, self.done() / self.total)


def start_render(
    root: str | Path,
    spec,
    out: str,
    num: int,
    seed: int = 0,
    conditions: list[str] | None = None,
    workers: int = 1,
) -> DatasetRender:
    """Writes ``spec`` to ``ROOT/.workbench-app/specs`` and starts ``workbench render`` on it.

    Shards hold about a twentieth of the samples, so progress moves in small steps.

    Args:
        root: the data root.
        spec: the (edited) scene spec.
        out: output folder under the root.
        num: samples per condition.
        seed: dataset seed.
        conditions: render conditions; None uses the spec's.
        workers: render processes.

    Raises:
        WorkbenchError: ``out`` leaves the root, or ``num``/``workers`` are not positive.
    """
    folder = resolve_under(root, out)
    if num < 1 or workers < 1:
        raise WorkbenchError("samples and workers: must be at least 1")
    conditions = list(dict.fromkeys(conditions or spec.conditions))
    spec_file = state_dir(root, "specs") / f"{folder.name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    shard_size = max(1, -(-num // 20))
    command = workbench_command(
        "render", str(spec_file), "--out", str(folder), "--num", str(num), "--seed", str(seed),
        "--workers", str(workers), "--shard-size", str(shard_size),
        "--conditions", ",".join(conditions), "--quiet",
    )  # fmt: skip
    folders = [folder] if len(conditions) == 1 else [folder / c for c in conditions]
    job = Job.start(command, new_log(root, f"render-{folder.name}"), cwd=Path(root).resolve())
    return DatasetRender(job=job, folders=folders, total=num * len(conditions))
