"""Training runs under a data root: discovery, metric curves, and ``workbench fit`` jobs.

A run is a folder written by Lightning's CSVLogger (``NAME/version_N/metrics.csv``, with
``hparams.yaml`` and ``config.yaml`` beside it); its checkpoints lie in ``NAME/checkpoints``.
"""

from __future__ import annotations

import csv
import shlex
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.inspect.jobs import Job, new_log, workbench_command
from workbench.inspect.paths import relative_to_root, resolve_under, walk_under

METRICS = "metrics.csv"


@dataclass(frozen=True)
class RunInfo:
    """One logged run (a ``version_N`` folder).

    Attributes:
        path: the version folder relative to the root.
        name: the run name (the folder above the version).
        version: the version folder's name.
        modified: last change of its metrics file (seconds since the epoch).
    """

    path: str
    name: str
    version: str
    modified: float


def find_runs(root: str | Path, max_depth: int = 6) -> list[RunInfo]:
    """Lists the runs (folders holding ``metrics.csv``) under ``root``, newest first."""
    runs = [
        RunInfo(
            path=relative_to_root(root, folder),
            name=folder.parent.name,
            version=folder.name,
            modified=(folder / METRICS).stat().st_mtime,
        )
        for folder, _dirs, files in walk_under(root, max_depth, frozenset({"shards"}))
        if METRICS in files
    ]
    return sorted(runs, key=lambda r: r.modified, reverse=True)


def read_metrics(path: str | Path) -> dict[str, dict[str, list[float]]]:
    """Reads a CSVLogger ``metrics.csv`` into curves.

    Args:
        path: the file, or the run folder holding it.

    Returns:
        metric name -> ``{"step": [...], "epoch": [...], "value": [...]}`` over the rows where
        that metric was logged.

    Raises:
        WorkbenchError: the file is missing or not a metrics table.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise WorkbenchError(f"{path}: cannot read the metrics ({exc.strerror})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: not a metrics table ({exc})") from None
    curves: dict[str, dict[str, list[float]]] = {}
    for number, row in enumerate(rows, start=2):
        try:
            step = float(row.get("step") or "nan")
            epoch = float(row.get("epoch") or "nan")
            values = {
                key: float(value)
                for key, value in row.items()
                if key not in ("step", "epoch") and key is not None and value not in ("", None)
            }
        except (TypeError, ValueError) as exc:
            raise WorkbenchError(f"{path}: line {number} is not numeric ({exc})") from None
        for key, value in values.items():
            curve = curves.setdefault(key, {"step": [], "epoch": [], "value": []})
            curve["step"].append(step)
            curve["epoch"].append(epoch)
            curve["value"].append(value)
    return dict(sorted(curves.items()))


def run_checkpoints(root: str | Path, run: str) -> list[str]:
    """Returns the checkpoints of a run (``NAME/checkpoints/*.ckpt``), relative to the root."""
    folder = resolve_under(root, run).parent / "checkpoints"
    return [relative_to_root(root, p) for p in sorted(folder.glob("*.ckpt"))]


def find_checkpoints(root: str | Path, max_depth: int = 6) -> list[str]:
    """Lists every ``.ckpt`` file under ``root`` (relative paths)."""
    return [
        relative_to_root(root, folder / name)
        for folder, _dirs, files in walk_under(root, max_depth, frozenset({"shards"}))
        for name in files
        if name.endswith(".ckpt")
    ]


def find_configs(root: str | Path) -> list[str]:
    """Lists the training configs: YAML files in ``ROOT/configs`` (relative paths)."""
    folder = Path(root).resolve() / "configs"
    return [relative_to_root(root, p) for p in sorted(folder.rglob("*.y*ml"))]


def start_fit(root: str | Path, config: str, overrides: str = "") -> Job:
    """Starts ``workbench fit -c CONFIG OVERRIDES`` in the root, logging under ``ROOT/runs``.

    Args:
        root: the data root; the command runs there, so paths in the config are relative to it.
        config: a config file under the root.
        overrides: extra command-line arguments as one string (``--trainer.max_epochs 2``).

    Returns:
        the running job; its output goes to ``ROOT/.workbench-app/logs/fit-<config>-*.log``.

    Raises:
        WorkbenchError: the config is outside the root or missing, or overrides do not parse.
    """
    path = resolve_under(root, config)
    if not path.is_file():
        raise WorkbenchError(f"{config}: no such config file under the data root")
    try:
        extra = shlex.split(overrides)
    except ValueError as exc:
        raise WorkbenchError(f"overrides: {exc}; quote values that contain spaces") from None
    command = workbench_command(
        "fit", "-c", str(path), "--trainer.default_root_dir", str(Path(root).resolve() / "runs"),
        *extra,
    )  # fmt: skip
    return Job.start(command, new_log(root, f"fit-{path.stem}"), cwd=Path(root).resolve())
