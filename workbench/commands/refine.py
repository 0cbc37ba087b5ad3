"""``workbench refine``: a refined copy of a rendered dataset, with its labels."""

import argparse

HELP = "write a refined copy of a rendered dataset (labels, seg and depth kept)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument(
        "--ckpt", required=True, help="SimGAN refiner or diffusion checkpoint (.ckpt)"
    )
    parser.add_argument("--data", required=True, help="rendered dataset at the model's size")
    parser.add_argument("--out", required=True, help="new dataset folder (rerun to resume)")
    diffusion = parser.add_argument_group("diffusion refiner (SDEdit)")
    diffusion.add_argument(
        "--strength",
        type=float,
        default=None,
        help="share of the noise schedule each image is noised to, in (0, 1]: low keeps the "
        "layout and labels, high looks more natural (required for a diffusion checkpoint)",
    )
    diffusion.add_argument(
        "--conditioned", action="store_true", help="condition on each sample's own label"
    )
    diffusion.add_argument(
        "--steps", type=int, default=None, help="DDIM steps of the full schedule"
    )
    diffusion.add_argument(
        "--guidance", type=float, default=None, help="guidance scale with --conditioned"
    )
    diffusion.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Writes the refined dataset and prints its folder."""
    from pathlib import Path

    from workbench.data.writer import check_output_dir
    from workbench.generative.refine_dataset import refine_checkpoint

    check_output_dir(Path(args.out))
    out = refine_checkpoint(
        args.ckpt, args.data, args.out, not args.quiet, args.strength, args.conditioned,
        args.steps, args.guidance, args.seed,
    )  # fmt: skip
    print(out)
    return 0
