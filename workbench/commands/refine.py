"""``workbench refine``: a refined copy of a rendered dataset, with its labels."""

import argparse

HELP = "write a refined copy of a rendered dataset (labels, seg and depth kept)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument("--ckpt", required=True, help="refiner checkpoint (.ckpt)")
    parser.add_argument("--data", required=True, help="rendered dataset at the refiner's size")
    parser.add_argument("--out", required=True, help="new dataset folder (rerun to resume)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Writes the refined dataset and prints its folder."""
    from pathlib import Path

    from workbench.data.writer import check_output_dir
    from workbench.generative.refine_dataset import refine_checkpoint

    check_output_dir(Path(args.out))
    print(refine_checkpoint(args.ckpt, args.data, args.out, progress=not args.quiet))
    return 0
