"""``workbench robustness``: adversarial sweep, worst case, corruptions, condition shift and
honesty checks of a classifier or dense checkpoint; writes report.json and report.html."""

import argparse
from pathlib import Path

from workbench.errors import WorkbenchError

# the tables of workbench.evaluation.corruptions.PARAMETER_SETS, named here so that --help
# does not import torch (a test keeps the two equal)
CORRUPTION_PARAMETERS = ("cifar10c", "imagenet_c")

HELP = (
    "evaluate a classifier's or a dense model's robustness (attacks, corruptions, conditions) "
    "into a report"
)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers such as 0.05,0.1, got {text!r}"
        ) from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument(
        "--ckpt",
        required=True,
        help="classifier or dense (segmentation / depth) checkpoint (.ckpt); a dense one is "
        "evaluated on rendered data with PGD and APGD on the per-pixel loss",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="'digits' (natural test split), a rendered dataset, a folder of paired conditions "
        "(workbench render --conditions) or an ImageFolder tree",
    )
    parser.add_argument("--out", required=True, help="report folder (resumes a stopped run)")
    parser.add_argument(
        "--attacks",
        type=_names,
        default=None,
        help="comma-separated attacks of the sweep (default: all that fit the norm; "
        "fgsm,pgd with --budget quick); the AutoAttack cascade always follows",
    )
    parser.add_argument(
        "--eps", type=_floats, default=None, help="comma-separated radii (default per budget)"
    )
    parser.add_argument("--norm", default="linf", choices=["linf", "l2"])
    parser.add_argument("--n", type=int, default=None, help="examples (default per budget)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per model call (default 128; 16 for a dense model)",
    )
    parser.add_argument("--steps", type=int, default=None, help="attack iterations")
    parser.add_argument("--restarts", type=int, default=None, help="attack restarts")
    parser.add_argument(
        "--budget",
        default="standard",
        choices=["quick", "standard"],
        help="quick: 64 examples, 10 steps, 3 epsilons (about a minute on 2 cores)",
    )
    parser.add_argument(
        "--cascade",
        default="standard",
        choices=["standard", "plus", "rand"],
        help="AutoAttack version completing the worst case: standard (APGD-CE, APGD-T, FAB-T, "
        "Square), plus (also restarts and untargeted APGD-DLR and FAB), rand (EOT, for "
        "randomised models)",
    )
    parser.add_argument(
        "--corruptions",
        type=_names,
        default=None,
        help="comma-separated corruptions (default all; 'none' for none)",
    )
    parser.add_argument(
        "--corruption-parameters",
        default="cifar10c",
        choices=CORRUPTION_PARAMETERS,
        help="the corruptions' parameter table: cifar10c (CIFAR-10-C's, for small images) or "
        "imagenet_c (ImageNet-C's as the imagecorruptions package applies it, 32 pixels or more)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="sweep points (one per epsilon) and corruptions at once, as Ray tasks when above 1",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of each unit with --workers or --ray-address (default: torch's "
        "choice here; the numbers depend on it, not on --workers)",
    )
    parser.add_argument(
        "--ray-address", default=None, help="HOST:PORT of a running Ray cluster for the units"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="a classifier checkpoint of the same classes that normalises the corruption "
        "errors: CE, mCE and relative mCE in the report (Hendrycks and Dietterich 2019)",
    )
    parser.add_argument(
        "--target-class",
        default=None,
        help="dense only: a targeted attack pushes the --target-region pixels to this class",
    )
    parser.add_argument(
        "--target-region",
        default=None,
        help="dense only: the class whose pixels the targeted attack changes (such as car)",
    )


# Marks a folder as a robustness report, so a rerun may overwrite and resume it.
MARKER = ".workbench-report"
# What a report writes; a folder holding only these, with units/settings.key, is a report too
# (an interrupted run, one from before the marker existed, or the demo's).
_OWN = {"report.json", "report.html", "units", MARKER}


def check_report_dir(out: Path) -> None:
    """Refuses an ``--out`` that a report would damage; writes nothing.

    Raises:
        WorkbenchError: ``out`` is a file, or a non-empty folder that is not a report (the
            report would overwrite ``report.*`` and delete ``units/*.pt`` in it).
    """
    from workbench.data.writer import check_folder_path

    check_folder_path(out)
    if out.is_dir() and not (out / MARKER).is_file():
        names = {p.name for p in out.iterdir()}
        ours = names <= _OWN and (out / "units" / "settings.key").is_file()
        if names and not ours:
            raise WorkbenchError(
                f"--out {out}: not empty and not a robustness report (no {MARKER}); "
                "choose a new or empty folder"
            )


def run(args: argparse.Namespace) -> int:
    """Runs the evaluation and prints the path of report.html."""
    from workbench.checkpoint import checkpoint_kind, read_checkpoint

    corruptions = args.corruptions
    if corruptions == ["none"]:
        corruptions = []
    choices = {
        "norm": args.norm,
        "eps": args.eps,
        "attacks": args.attacks,
        "budget": args.budget,
        "n": args.n,
        "steps": args.steps,
        "seed": args.seed,
        "corruptions": corruptions,
        "corruption_parameters": args.corruption_parameters,
    }
    check_report_dir(Path(args.out))
    dense = checkpoint_kind(read_checkpoint(args.ckpt)) == "dense"
    page = (_run_dense if dense else _run_classifier)(args, choices)
    (Path(args.out) / MARKER).write_text("workbench robustness report folder\n")
    print(page)
    return 0


def _run_classifier(args: argparse.Namespace, choices: dict) -> Path:
    from workbench.evaluation.runner import evaluate_checkpoint
    from workbench.evaluation.settings import RobustnessOptions

    for flag in ("target_class", "target_region"):
        if getattr(args, flag) is not None:
            raise WorkbenchError(
                f"--{flag.replace('_', '-')}: applies to dense checkpoints only; a classifier's "
                "targeted attacks pick their target classes themselves"
            )
    choices = {
        **choices,
        "restarts": args.restarts,
        "batch_size": 128 if args.batch_size is None else args.batch_size,
        "cascade": args.cascade,
    }
    # errors name the flags (--batch-size), not the library's parameters
    settings = RobustnessOptions.from_dict(choices, prefix="--").settings()
    executor = None
    if args.workers != 1 or args.ray_address or args.threads:
        import torch

        from workbench.execution import Executor

        threads = args.threads or torch.get_num_threads()
        executor = Executor(workers=args.workers, ray_address=args.ray_address, threads=threads)
    return evaluate_checkpoint(args.ckpt, args.data, args.out, settings, device=args.device,
                               progress=not args.quiet, executor=executor,
                               baseline=args.baseline)  # fmt: skip


def _run_dense(args: argparse.Namespace, choices: dict) -> Path:
    from workbench.evaluation.dense_runner import DenseRobustnessOptions, evaluate_dense_checkpoint

    if args.workers != 1 or args.ray_address:
        raise WorkbenchError(
            "--workers: a dense evaluation runs its units one after another here (its units "
            "are not on the Ray execution layer yet); leave --workers and --ray-address out"
        )
    if args.cascade != "standard":
        raise WorkbenchError("--cascade: applies to classifiers only (dense: --attacks pgd,apgd)")
    if args.baseline is not None:
        raise WorkbenchError(
            "--baseline: mCE normalises classification errors; a dense report gives mIoU and "
            "AbsRel per corruption instead"
        )
    choices = {
        **choices,
        "restarts": args.restarts or 1,
        "batch_size": 16 if args.batch_size is None else args.batch_size,
        "target_class": args.target_class,
        "target_region": args.target_region,
    }
    settings = DenseRobustnessOptions.from_dict(choices, prefix="--").settings()
    return evaluate_dense_checkpoint(args.ckpt, args.data, args.out, settings,
                                     device=args.device, progress=not args.quiet)  # fmt: skip
