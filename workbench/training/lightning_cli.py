"""``workbench fit|validate|test|predict``: the Lightning CLI with the workbench's defaults.

Defaults: seed 0 (``seed_everything``); a run named after its config file, logged with CSV and
TensorBoard to ``<default_root_dir>/<name>/version_N``; a checkpoint at every epoch end plus
``last.ckpt`` in ``<default_root_dir>/<name>/checkpoints`` (also written when training stops on
an error), so ``fit --ckpt_path last`` resumes; per-epoch reseeding so that resume is exact.
The DataModule's class count, channels, image size, class and source names go to the model.
"""

from __future__ import annotations

import re
import sys
import warnings
from argparse import ArgumentError
from pathlib import Path

import yaml
from pytorch_lightning import LightningDataModule, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from workbench.curriculum import Curriculum, CurriculumDataModule
from workbench.errors import WorkbenchError
from workbench.training.callbacks import DensePredictionWriter, EpochSeed, PredictionCSV

LINKS = (
    ("num_classes", "num_classes"),
    ("channels", "in_channels"),
    ("image_size", "image_size"),
    ("source_names", "source_names"),
    ("classes", "class_names"),
)


def _next_version(root: str, name: str) -> str:
    folder = Path(root) / name
    taken = [int(p.name[8:]) for p in folder.glob("version_*") if p.name[8:].isdigit()]
    return f"version_{max(taken, default=-1) + 1}"


class WorkbenchCLI(LightningCLI):
    """LightningCLI with the workbench's run layout, checkpoints and data-to-model links."""

    def __init__(self, *args, run_name: str | None = None, **kwargs):
        self.run_name = run_name
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target in LINKS:
            parser.link_arguments(
                f"data.{source}", f"model.init_args.{target}", apply_on="instantiate"
            )

    def _run_name(self) -> str:
        if self.run_name:
            return self.run_name
        config = self.config[self.subcommand] if self.subcommand else self.config
        paths = config.get("config") or []
        if not paths:
            return type(self.model).__name__.lower()
        return "+".join(Path(str(path)).stem for path in paths)  # base config, then overlays

    def instantiate_trainer(self, **kwargs) -> Trainer:
        config = self._get(self.config_init, "trainer", default={})
        root = config.get("default_root_dir") or "runs"
        name = self._run_name()
        if config.get("logger") in (None, True):
            version = _next_version(root, name)
            kwargs["logger"] = [
                CSVLogger(root, name, version),
                TensorBoardLogger(root, name, version),
            ]
        callbacks = list(config.get("callbacks") or [])
        if not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(ModelCheckpoint(
                dirpath=Path(root) / name / "checkpoints", filename="epoch{epoch:03d}",
                auto_insert_metric_name=False, save_last=True, save_top_k=-1, every_n_epochs=1,
                save_on_exception=True, save_on_train_epoch_end=True,
            ))  # fmt: skip
        if not any(isinstance(c, EpochSeed) for c in callbacks):
            callbacks.append(EpochSeed())
        if isinstance(self.datamodule, CurriculumDataModule) and not any(
            isinstance(c, Curriculum) for c in callbacks
        ):
            callbacks.append(Curriculum())
        if self.subcommand == "predict":
            dense = getattr(self.model, "segments", False) or getattr(self.model, "depths", False)
            callbacks.append(DensePredictionWriter() if dense else PredictionCSV())
        kwargs["callbacks"] = callbacks
        return super().instantiate_trainer(**kwargs)


_NOISE = (
    "Subtypes:",
    "Errors:",
    "Given value",
    "Expected a <class 'NoneType'>",
    "Does not validate against any of the Union subtypes",
)


def condense(message: str) -> str:
    """Turns jsonargparse's nested report of a bad config into one line that keeps the key and
    the innermost reasons."""
    lines = [line.strip().removeprefix("- ").strip() for line in message.splitlines()]
    lines = list(dict.fromkeys(line for line in lines if line and not line.startswith(_NOISE)))
    key = re.fullmatch(r'Parser key "(.+)":', lines[0]) if lines else None
    if key:
        return f"{key.group(1)}: " + "; ".join(line.rstrip(":") for line in lines[1:])
    return "; ".join(lines)


class _ConfigOnlyCLI(WorkbenchCLI):
    """Parses and checks a config, instantiating nothing."""

    def instantiate_classes(self) -> None:
        pass


def _make(
    args: list[str], run: bool, run_name: str | None = None, cli: type = WorkbenchCLI
) -> WorkbenchCLI:
    # args come from our own dispatcher or a study, never mixed with another command line
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    # pytorch-lightning 2.6 on torch 2.13, on every fit: nothing a user can act on
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    try:
        return cli(
            LightningModule,
            LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            trainer_defaults={
                "default_root_dir": "runs",
                "enable_model_summary": False,
                "log_every_n_steps": 10,
            },
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False},
            args=None if args == sys.argv[1:] else args,
            run=run,
            run_name=run_name,
        )
    except ArgumentError as exc:
        raise WorkbenchError(f"config: {condense(str(exc))}") from None
    except ValueError as exc:
        if "Does not validate against any of the Union subtypes" not in str(exc):
            raise
        raise WorkbenchError(condense(str(exc))) from None


def build(args: list[str], run_name: str | None = None) -> WorkbenchCLI:
    """Parses a config (``-c x.yaml`` and overrides, no subcommand) without running it; returns
    the CLI with ``model``, ``datamodule`` and ``trainer`` built, for studies that drive
    training from Python.

    Raises:
        WorkbenchError: a config that does not parse or validate, in one line.
    """
    return _make(args, False, run_name)


def resolve(args: list[str]) -> dict:
    """The whole config that ``args`` (``-c x.yaml -c overlay.yaml ...``, no subcommand) give,
    defaults included, as plain data; nothing is built or run.

    Raises:
        WorkbenchError: a config that does not parse or validate, in one line.
    """
    cli = _make(args, False, cli=_ConfigOnlyCLI)
    config = yaml.safe_load(cli.parser.dump(cli.config, skip_none=False))
    config.pop("config", None)
    return config


def run(args: list[str]) -> None:
    """Runs the Lightning CLI on ``args`` (``fit -c configs/x.yaml ...``).

    Raises:
        WorkbenchError: a config that does not parse or validate, in one line.
    """
    _make(args, True)
