"""``workbench sample``: write a generator's class-conditional samples as a labelled dataset."""

import argparse

HELP = "write samples of a VAE, GAN or diffusion checkpoint as a labelled dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument("--ckpt", required=True, help="VAE, GAN or diffusion checkpoint (.ckpt)")
    parser.add_argument("--num", type=int, required=True, help="number of samples")
    parser.add_argument("--out", required=True, help="dataset folder (rerun to resume)")
    parser.add_argument(
        "--classes",
        default=None,
        help="comma-separated class names to sample, in turn (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--shard-size", type=int, default=256, help="samples per shard")
    parser.add_argument(
        "--grid", action="store_true", help="also write OUT/samples.png, 8 samples per class"
    )
    diffusion = parser.add_argument_group("diffusion models")
    diffusion.add_argument(
        "--steps", type=int, default=None, help="DDIM steps (default: the model's own)"
    )
    diffusion.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale >= 0: 0 unconditional, 1 plain conditional "
        "(default: the model's own)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Writes the samples and prints the dataset folder."""
    from pathlib import Path

    from workbench.data.writer import check_output_dir
    from workbench.generative.sampling import sample_checkpoint

    check_output_dir(Path(args.out))
    classes = None
    if args.classes is not None:
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    dataset = sample_checkpoint(
        args.ckpt, args.out, args.num, args.seed, classes, args.shard_size, not args.quiet,
        args.steps, args.guidance,
    )  # fmt: skip
    print(f"{len(dataset)} samples of {', '.join(dataset.manifest['sampled_classes'])}: {args.out}")
    if args.grid:
        from workbench.generative.grid import save_sample_grid
        from workbench.generative.sampling import load_generator

        generator = load_generator(args.ckpt, args.steps, args.guidance)
        print(
            f"grid: {save_sample_grid(generator, Path(args.out) / 'samples.png', seed=args.seed)}"
        )
    return 0
