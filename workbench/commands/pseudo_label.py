"""``workbench pseudo-label``: an ensemble of classifiers labels unlabelled items."""

import argparse

HELP = "label unlabelled images with an ensemble of classifiers (kept by agreement, confidence)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument(
        "--ckpt",
        action="append",
        required=True,
        dest="checkpoints",
        help="classifier checkpoint of one member; repeat for each",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="digits, a dataset folder, an ImageFolder tree (labels used only to score) or a "
        "folder of images without class folders",
    )
    parser.add_argument("--out", required=True, help="dataset folder of the kept items")
    parser.add_argument("--agree", default="all", choices=["all", "majority"],
                        help="members that must predict the label (default all)")  # fmt: skip
    parser.add_argument("--min-confidence", type=float, default=0.9,
                        help="least mean probability of a kept label (default 0.9)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Labels the items; prints how many were kept (and their accuracy when it is known)."""
    from pathlib import Path

    from workbench.data.sources import open_unlabelled
    from workbench.data.writer import check_output_dir
    from workbench.training.pseudo_label import pseudo_label

    check_output_dir(Path(args.out))
    source = open_unlabelled(args.data)
    summary = pseudo_label(args.checkpoints, source, args.data, args.out, args.agree,
                           args.min_confidence, progress=not args.quiet)  # fmt: skip
    line = f"{summary['kept']} of {summary['items']} items pseudo-labelled into {args.out}"
    if summary["accuracy_kept"] is not None:
        accuracy = summary["accuracy_kept"]
        line += f" (accuracy of the kept labels against the known ones {accuracy:.4f})"
    print(line)
    print(f"train with them: {{kind: pseudo, path: {args.out}}} in data.sources")
    return 0
