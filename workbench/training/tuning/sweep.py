"""``workbench tune``: a hyperparameter sweep of a Lightning CLI config on Ray Tune.

Every check (the space, the config with the sampled keys, the metric, the cluster address)
runs before the output folder is touched. Trials are ordinary fits (:mod:`.trial`); random or
Optuna TPE search, ASHA or FIFO scheduling; Ray Tune's experiment state is saved after every
event, so a sweep killed at any point continues with the same command. The test split is
touched once, by the final test of the best trial's weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import WorkbenchError, option_error
from workbench.execution import check_address, claim_folder, ray_cluster
from workbench.training.tuning import BEST, PLOT, SETTINGS, SUMMARY, TABLE, report
from workbench.training.tuning.overlay import check_keys
from workbench.training.tuning.space import (
    Choice,
    Distribution,
    LogUniform,
    RandInt,
    load_space,
)
from workbench.training.tuning.trial import (
    TrialSetup,
    missing_metric,
    run_trial,
    scalars,
    trial_config,
    trial_index,
)

TRIALS = "trials"  # Ray Tune's experiment folder
log = logging.getLogger(__name__)


class TuneOptions(BaseModel):
    """The options of a sweep (``workbench tune``'s flags)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    configs: list[str] = Field(min_length=1)
    space: str
    out: str
    num_samples: int = Field(16, ge=1, le=10_000)
    search: Literal["random", "optuna"] = "random"
    scheduler: Literal["asha", "fifo"] = "asha"
    metric: str = "val/acc/natural"
    mode: Literal["max", "min"] = "max"
    max_epochs: int | None = Field(None, ge=1, le=10_000)
    cpus_per_trial: int = Field(1, ge=1, le=1024)
    ray_address: str | None = None
    seed: int = Field(0, ge=0)

    @classmethod
    def parse(cls, **values: Any) -> TuneOptions:
        """Builds the options; a bad one is one line naming its flag."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise option_error(exc, list(cls.model_fields), prefix="--") from None

    def identity(self) -> dict[str, Any]:
        """What makes two sweeps the same: the options (not where the output or the cluster
        is) and the contents of the config and space files."""
        files = [*self.configs, self.space]
        return {
            **self.model_dump(exclude={"out", "ray_address"}),
            "sha256": {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files},
        }


def _ends(space: dict[str, Distribution]) -> list[dict[str, Any]]:
    """Points of the space the config is checked at before anything runs: every key at its
    low end (first choice), every key at its high end (last choice), and each other choice."""

    def end(dist: Distribution, last: bool) -> Any:
        if isinstance(dist, Choice):
            return dist.values[-1 if last else 0]
        if last:
            return dist.high - 1 if isinstance(dist, RandInt) else dist.high
        return dist.low

    low, high = ({key: end(d, last) for key, d in space.items()} for last in (False, True))
    middle = [
        {**low, key: value}
        for key, dist in space.items()
        if isinstance(dist, Choice)
        for value in dist.values[1:-1]
    ]
    return [low, high, *middle]


def _write_config(config: dict, folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def preflight(setup: TrialSetup, space: dict[str, Distribution]) -> list[str]:
    """Checks the sampled keys, both corners of the space against the config's types, and
    that one training batch and one validation batch log ``setup.metric``.

    Returns:
        the metrics the run logs.

    Raises:
        WorkbenchError: one line naming the key, value or metric.
    """
    from workbench.training.lightning_cli import build, resolve

    check_keys(setup.config, list(space))
    points = _ends(space)
    with tempfile.TemporaryDirectory(prefix="workbench-tune-") as tmp:
        folder = Path(tmp)
        for values in points:
            try:
                resolve(["-c", str(_write_config(trial_config(setup, values, folder), folder))])
            except WorkbenchError as exc:
                shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
                raise WorkbenchError(f"--space: the config fails at {shown}: {exc}") from None
        config = trial_config(setup, points[0], folder)
        config["trainer"].update(fast_dev_run=True, logger=False, enable_model_summary=False)
        config["trainer"]["callbacks"] = None
        with warnings.catch_warnings():  # a check, not the user's run: its warnings are noise
            warnings.simplefilter("ignore")
            cli = build(["-c", str(_write_config(config, folder))], run_name="preflight")
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        logged = scalars(cli.trainer.callback_metrics)
    if setup.metric not in logged:
        raise missing_metric(setup.metric, logged)
    return sorted(logged)


def _searcher(options: TuneOptions) -> Any:
    """Random search, or Optuna's TPE limited to as many trials at once as the cluster's CPUs
    hold (each suggestion then sees the results before it)."""
    import ray

    at_once = max(1, int(ray.cluster_resources().get("CPU", 1)) // options.cpus_per_trial)
    if options.search == "optuna":
        try:
            from ray.tune.search import ConcurrencyLimiter
            from ray.tune.search.optuna import OptunaSearch
        except ImportError:
            raise WorkbenchError(
                "--search optuna needs Optuna: pip install 'workbench[distributed]'"
            ) from None
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return ConcurrencyLimiter(OptunaSearch(seed=options.seed), max_concurrent=at_once)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=options.seed, max_concurrent=at_once)


def _scheduler(options: TuneOptions, max_epochs: int) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    from workbench.training.tuning.scheduler import ResumableASHA

    if options.scheduler == "fifo":
        return FIFOScheduler()
    state = Path(options.out).resolve() / "asha.json"
    return ResumableASHA(state, max_t=max_epochs, grace_period=1, reduction_factor=3)


def _progress(total: int, metric: str, max_epochs: int, first: int, say: Callable) -> Any:
    from ray import tune

    class Progress(tune.Callback):
        """Prints one line per finished trial."""

        def _line(self, trials: list, trial: Any, status: str) -> None:
            ended = ("TERMINATED", "ERROR")
            done = 1 + sum(t.status in ended for t in trials if t is not trial)
            result = trial.last_result or {}
            epochs = result.get("training_iteration", 0)
            if status == "done":
                status = "completed" if epochs >= max_epochs else "stopped early"
            value = result.get(metric)
            shown = f"{metric} {value:.4f}" if isinstance(value, float) else "no metric"
            values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in trial.config.items())  # fmt: skip
            index = trial_index(Path(trial.path).name, first)
            say(
                f"[{done}/{total}] trial {index}: {status} after "
                f"{epochs} epochs, {shown} ({values}), {result.get('time_total_s', 0):.0f} s"
            )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
            self._line(trials, trial, "done")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
            self._line(trials, trial, "error")

    return Progress()


def _tuner(
    options: TuneOptions, setup: TrialSetup, space: dict[str, Distribution], say: Callable
) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    out = Path(options.out).resolve()
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, setup=setup), {"cpu": options.cpus_per_trial}
    )
    if tune.Tuner.can_restore(out / TRIALS):
        return tune.Tuner.restore(
            str(out / TRIALS), trainable, resume_unfinished=True, resume_errored=True
        )
    return tune.Tuner(
        trainable,
        param_space={key: dist.to_ray() for key, dist in space.items()},
        tune_config=tune.TuneConfig(
            metric=options.metric,
            mode=options.mode,
            num_samples=options.num_samples,
            search_alg=_searcher(options),
            scheduler=_scheduler(options, setup.max_epochs),
        ),
        run_config=tune.RunConfig(
            name=TRIALS,
            storage_path=str(out),
            verbose=0,
            # Ray's CSV and JSON results (the table is read from them); each trial's own
            # TensorBoard log is Lightning's, in its run folder
            callbacks=[
                CSVLoggerCallback(),
                JsonLoggerCallback(),
                _progress(options.num_samples, options.metric, setup.max_epochs, setup.first_tag,
                          say),  # fmt: skip
            ],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )


def test_best(best: dict[str, Any], out: Path) -> dict[str, float]:
    """Tests the best trial's final weights on the test split, once: a rerun of a finished
    sweep reads the saved result instead of touching the test split again."""
    from workbench.training.lightning_cli import build

    saved = out / SUMMARY
    if saved.is_file():
        previous = json.loads(saved.read_text())
        if previous.get("best", {}).get("trial") == best["trial"] and previous.get("test"):
            return previous["test"]
    folder = Path(best["path"])
    checkpoint = folder / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise WorkbenchError(f"{checkpoint}: the best trial left no weights; rerun the sweep")
    with warnings.catch_warnings():  # Lightning's deprecation notes; the result is printed
        warnings.simplefilter("ignore")
        cli = build(["-c", str(folder / "config.yaml"), "--trainer.logger=false"], run_name="test")
        test = cli.trainer.test
        metrics = test(cli.model, datamodule=cli.datamodule, ckpt_path=str(checkpoint),
                       verbose=False)  # fmt: skip
    return {k: float(v) for k, v in metrics[0].items()}


def prepare(options: TuneOptions) -> tuple[dict[str, Distribution], TrialSetup]:
    """Reads and checks the space and the config; nothing is written."""
    from workbench.training.lightning_cli import resolve

    for path in options.configs:
        if not Path(path).is_file():
            raise WorkbenchError(f"-c: {path} is not a file")
    space = load_space(options.space)
    config = resolve([arg for path in options.configs for arg in ("-c", path)])
    max_epochs = options.max_epochs or (config.get("trainer") or {}).get("max_epochs")
    if not isinstance(max_epochs, int) or max_epochs < 1:
        raise WorkbenchError("--max-epochs: the config sets no trainer.max_epochs; give one")
    runs = str(Path(options.out).resolve() / "runs")
    threads = options.cpus_per_trial
    first_tag = 1 if options.search == "optuna" else 0
    setup = TrialSetup(config, options.metric, max_epochs, os.getcwd(), threads, runs, first_tag)
    return space, setup


def tune(options: TuneOptions, say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Runs (or continues) the sweep; writes the table, ``best.yaml``, the plot and
    ``summary.json`` (with the best trial's test result) into ``options.out``.

    Args:
        options: the sweep's options.
        say: called with one line per finished trial (the command prints them).

    Raises:
        WorkbenchError: a bad option, space, config, metric or address, before anything is
            written; or a sweep in which every trial failed.
    """
    space, setup = prepare(options)
    preflight(setup, space)
    check_address(options.ray_address)
    out = Path(options.out)
    resumed = claim_folder(out / SETTINGS, options.identity(), "sweep")
    # Ray Tune's state (trials, searcher, scheduler) saved every 2 s instead of every 10 s or
    # more: a finished trial is rerun after a kill only when it ended in the last 2 s.
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "2"
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Ray's own report silent (verbose 0): ours prints
    with ray_cluster(options.ray_address):
        grid = _tuner(options, setup, space, say).fit()
    table = report.rows(grid, list(space), options.metric, setup)
    best = report.mark_best(table, options.mode)
    report.write_csv(table, out / TABLE, setup.max_epochs)
    log_keys = {key for key, dist in space.items() if isinstance(dist, LogUniform)}
    report.plot(table, list(space), options.metric, log_keys, out / PLOT)
    if best is None:
        raise WorkbenchError(f"no trial logged {options.metric}; see {out / TRIALS}")
    trainer = {"max_epochs": options.max_epochs} if options.max_epochs else {}
    report.write_best(setup.config, best, list(space), out / BEST, **trainer)
    summary = {
        **_summary(options, table, best, setup.max_epochs),
        "best": {
            "trial": best["trial"],
            "values": {key: best[key] for key in space},
            "validation": best["last"],
            "epochs": best["epochs"],
        },
        "test": test_best(best, out),
        "resumed": resumed,
    }
    partial = out / (SUMMARY + ".partial")
    partial.write_text(json.dumps(summary, indent=1))
    partial.replace(out / SUMMARY)
    return summary


def _summary(
    options: TuneOptions, table: list[dict], best: dict, max_epochs: int
) -> dict[str, Any]:
    return {
        "metric": options.metric,
        "mode": options.mode,
        "trials": len(table),
        "status": {s: sum(r["status"] == s for r in table) for s in report.STATUSES},
        "epochs_run": sum(r["epochs"] for r in table),
        "epochs_if_all_completed": len(table) * max_epochs,
        "test_note": (
            f"trials were selected on {options.metric} (validation); the test split was "
            "evaluated once, on the best trial's final weights"
        ),
        "options": options.model_dump(),
    }
