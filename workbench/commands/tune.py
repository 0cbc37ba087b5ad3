"""``workbench tune``: hyperparameter search over a Lightning CLI config on Ray Tune."""

import argparse
import logging

from workbench.commands.arguments import add_configs

HELP = "search hyperparameters of a config on Ray Tune (random or Optuna, ASHA or FIFO)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    add_configs(parser)
    parser.add_argument("--space", required=True, help="SPACE.yaml: dotted key -> distribution")
    parser.add_argument("--out", required=True, help="sweep folder (rerun to continue)")
    parser.add_argument("--num-samples", type=int, default=16, help="trials (default 16)")
    parser.add_argument("--search", default="random", choices=["random", "optuna"])
    parser.add_argument(
        "--scheduler",
        default="asha",
        choices=["asha", "fifo"],
        help="asha stops poor trials early from each epoch's metric",
    )
    parser.add_argument("--metric", default="val/acc/natural", help="logged metric to select on")
    parser.add_argument("--mode", default="max", choices=["max", "min"])
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="epochs of a full trial (default: the config's trainer.max_epochs)",
    )
    parser.add_argument("--cpus-per-trial", type=int, default=1)
    parser.add_argument(
        "--ray-address", default=None, help="HOST:PORT of a running Ray cluster (default: local)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the search")


def run(args: argparse.Namespace) -> int:
    """Runs the sweep; prints the best trial, its test result and where the files are."""
    from workbench.training.tuning.sweep import TuneOptions, tune

    for name in ("lightning_fabric", "pytorch_lightning"):  # one line per trial, not Lightning's
        logging.getLogger(name).setLevel(logging.WARNING)
    values = {k: v for k, v in vars(args).items() if k in TuneOptions.model_fields}
    summary = tune(TuneOptions.parse(**values), say=lambda line: print(line, flush=True))
    best, out = summary["best"], args.out
    shown = ", ".join(f"{k}={v}" for k, v in best["values"].items())
    print(
        f"best trial {best['trial']}: {summary['metric']} {best['validation']:.4f} "
        f"(validation) with {shown}"
    )
    tests = ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
    print(f"test split, evaluated once on the best trial: {tests}")
    configs = " ".join(f"-c {c}" for c in args.configs)
    print(f"table: {out}/trials.csv, plot: {out}/tune.png, best config: {out}/best.yaml")
    print(f"train it: workbench fit {configs} -c {out}/best.yaml")
    return 0
