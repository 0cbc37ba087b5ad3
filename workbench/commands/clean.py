"""``workbench clean``: find mislabelled training items by cross-fitting a config."""

import argparse
import logging

from workbench.commands.arguments import add_configs

HELP = "find training items whose labels look wrong (K-fold cross-fitting, cleanlab)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    add_configs(parser)
    parser.add_argument("--out", required=True, help="cleaning folder (rerun to continue)")
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default 5)")
    parser.add_argument(
        "--method",
        default="confident",
        choices=["confident", "loss", "ensemble"],
        help="confident learning (cleanlab), loss ranking, or ensemble disagreement",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=None,
        help="models per fold, seeds seed..seed+M-1 (default: 3 for ensemble, else 1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds and the models")
    parser.add_argument("--workers", type=int, default=1, help="folds at once (Ray above 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each fold")
    parser.add_argument("--ray-address", default=None, help="HOST:PORT of a running Ray cluster")


def run(args: argparse.Namespace) -> int:
    """Runs the cleaning; prints what it found and where the files are."""
    from workbench.training.cleaning.run import CleanOptions, clean

    for name in ("lightning_fabric", "pytorch_lightning"):  # one line per fold, not Lightning's
        logging.getLogger(name).setLevel(logging.WARNING)
    values = {k: v for k, v in vars(args).items() if k in CleanOptions.model_fields}
    report = clean(CleanOptions.parse(**values), say=lambda line: print(line, flush=True))
    print(
        f"{report['flagged']} of {report['items']} training items flagged by {report['method']} "
        f"(held-out accuracy against the given labels {report['held_out_accuracy']:.4f})"
    )
    if report["noise"] is not None:
        d = report["noise"]["detection"]
        shown = {k: "n/a" if d[k] is None else f"{d[k]:.3f}"
                 for k in ("precision", "recall", "precision_at_noise_rate")}  # fmt: skip
        print(
            f"against the {d['flipped']} labels flipped on purpose: precision "
            f"{shown['precision']}, recall {shown['recall']}, precision at the noise rate "
            f"{shown['precision_at_noise_rate']}"
        )
    out = args.out
    print(f"suspects: {out}/suspects.csv, report: {out}/report.json")
    print(f"train without them: add `exclude: {out}/exclude.json` to each source")
    return 0
