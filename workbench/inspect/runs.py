"""Training runs under a data root: discovery, metric curves, and ``workbench fit`` jobs.

A run is a folder written by Lightning's CSVLogger (``NAME/version_N/metrics.csv``, with
``hparams.yaml`` and ``config.yaml`` beside it); its checkpoints lie in ``NAME/checkpoints``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.inspect.fit_options import FitOptions, accepts_learning_rate, check_config
from workbench.inspect.jobs import JobRecord, JobRegistry, check_room, workbench_command
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


def start_fit(
    root: str | Path,
    config: str,
    options: FitOptions | None = None,
    checkpoint: str | None = None,
    detached: bool = False,
) -> JobRecord:
    """Starts ``workbench fit -c CONFIG`` in the root, logging under ``ROOT/runs``.

    The config is checked first (:func:`~workbench.inspect.fit_options.check_config`); the
    command line holds only the config, ``--trainer.default_root_dir ROOT/runs``, the typed
    ``options``, ``--weights_only true`` and the checkpoint to resume. The job writes
    ``ROOT/runs/<config name>``; a second fit of the same config is refused while one runs.

    Args:
        root: the data root; the command runs there, so paths in the config are relative to it.
        config: a config file under the root.
        options: typed overrides; None keeps the config's values.
        checkpoint: a ``.ckpt`` under the root to resume from, or None.
        detached: keep running after the app stops.

    Returns:
        the job's record in the app's job registry.

    Raises:
        WorkbenchError: the config or checkpoint is missing or outside the root, the config
            breaks a rule, an option is out of range, the disk is nearly full, or a fit of this
            config is running.
    """
    base = Path(root).resolve()
    path = resolve_under(base, config)
    parsed = check_config(base, path)
    options = options or FitOptions()
    if options.learning_rate is not None and not accepts_learning_rate(parsed):
        raise WorkbenchError(
            f"learning_rate: the model of {config} has no single learning rate (lr); "
            "set its rates in the config"
        )
    resume = []
    if checkpoint:
        ckpt = resolve_under(base, checkpoint)
        if not ckpt.is_file() or ckpt.suffix != ".ckpt":
            raise WorkbenchError(f"{checkpoint}: no such checkpoint (.ckpt) under the data root")
        resume = ["--ckpt_path", str(ckpt)]
    check_room(base, 0, f"fit {config}")
    runs = base / "runs"
    command = workbench_command(
        "fit", "-c", str(path), "--trainer.default_root_dir", str(runs), *options.arguments(),
        "--weights_only", "true", *resume,
    )  # fmt: skip
    return JobRegistry(base).start(
        "fit", command, runs / path.stem, detached=detached, info={"config": config}
    )
