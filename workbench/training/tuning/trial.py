"""One trial of a sweep: an ordinary ``workbench fit`` of the config with the sampled values
set, run inside a Ray Tune worker and reporting its logged metrics at every validation."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml

from workbench.errors import WorkbenchError
from workbench.training.tuning.overlay import apply

CHECKPOINT_CLASS = "pytorch_lightning.callbacks.ModelCheckpoint"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a sweep shares.

    Args:
        config: the whole resolved config (defaults included).
        metric: the logged metric the sweep selects on.
        max_epochs: epochs of a trial that runs to the end.
        cwd: the folder the sweep was started from (relative paths of the config resolve there).
        threads: torch threads of a trial (its share of CPUs).
        runs: the sweep's folder of trial runs (absolute).
        first_tag: the searcher's first experiment tag (see :func:`trial_index`).
    """

    config: dict
    metric: str
    max_epochs: int
    cwd: str
    threads: int
    runs: str
    first_tag: int


# Ray Tune names a trial's folder {trainable}_{trial id}_{experiment tag}_{values}_{date}; the
# tag counts trials from 0 under random search and from 1 under a searcher such as Optuna.
_FOLDER = re.compile(r"_[0-9a-f]+(?:_\d{5})?_(\d+)(?:_|$)")


def trial_index(folder_name: str, first: int) -> int:
    """A trial's number within its sweep (from 0), from its Ray Tune folder name.

    Args:
        folder_name: the trial folder's name.
        first: the searcher's first experiment tag (0 for random search, 1 for Optuna).
    """
    match = _FOLDER.search(folder_name)
    if match is None:
        raise ValueError(f"not a Ray Tune trial folder: {folder_name!r}")
    return int(match[1]) - first


def trial_folder(runs: str | Path, index: int) -> Path:
    """The run folder of trial ``index``: its config, logs and final weights."""
    return Path(runs) / f"trial_{index:05d}"


def trial_config(setup: TrialSetup, values: dict[str, Any], folder: Path) -> dict:
    """The config a trial runs: the sampled ``values`` set, ``max_epochs``, its own run folder,
    no progress bar, and one checkpoint (``folder/checkpoints/last.ckpt``) instead of one per
    epoch."""
    config = apply(setup.config, values)
    trainer = config.setdefault("trainer", {})
    trainer.update(
        max_epochs=setup.max_epochs, default_root_dir=str(folder), enable_progress_bar=False
    )
    callbacks = list(trainer.get("callbacks") or [])
    if not any(
        isinstance(c, dict) and str(c.get("class_path", "")).endswith("ModelCheckpoint")
        for c in callbacks
    ):
        callbacks.append(
            {
                "class_path": CHECKPOINT_CLASS,
                "init_args": {  # last.ckpt, overwritten at every epoch
                    "dirpath": str(folder / "checkpoints"),
                    "filename": "last",
                    "save_top_k": 1,
                    "enable_version_counter": False,
                    # at validation end, before the epoch ends and TuneReport reports it
                    "save_on_train_epoch_end": False,
                },
            }
        )
    trainer["callbacks"] = callbacks
    return config


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The one-number entries of Lightning's ``callback_metrics`` as floats."""
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def missing_metric(metric: str, logged: dict[str, float]) -> WorkbenchError:
    """The error for a ``--metric`` the run never logs, listing those it does."""
    return WorkbenchError(
        f"--metric: the run never logs {metric!r}; it logs: {', '.join(sorted(logged)) or 'none'}"
    )


class TuneReport(pl.Callback):
    """Reports the run's logged metrics (and the epoch) to Ray Tune at the end of each epoch
    that validated: after the epoch's checkpoint is written, since a trial that the scheduler
    stops is ended as soon as it has reported."""

    def __init__(self, metric: str):
        self.metric = metric
        self._validated = False

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._validated = not trainer.sanity_checking

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if not self._validated:
            return
        self._validated = False
        from ray import tune

        metrics = scalars(trainer.callback_metrics)
        if self.metric not in metrics:
            raise missing_metric(self.metric, metrics)
        tune.report({**metrics, "epoch": trainer.current_epoch + 1})


def run_trial(values: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune's function trainable: fits the config with ``values`` set in the trial's own
    folder (:func:`trial_folder`; ``config.yaml`` there is what ran)."""
    from ray import tune

    from workbench.training.lightning_cli import build

    os.chdir(setup.cwd)
    import torch

    torch.set_num_threads(setup.threads)
    name = Path(tune.get_context().get_trial_dir()).name
    folder = trial_folder(setup.runs, trial_index(name, setup.first_tag))
    folder.mkdir(parents=True, exist_ok=True)
    config = trial_config(setup, values, folder)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cli = build(["-c", str(path)], run_name="trial")
    cli.trainer.callbacks.append(TuneReport(setup.metric))
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
