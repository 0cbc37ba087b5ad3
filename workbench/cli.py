"""The ``workbench`` command: dispatches subcommands; user errors become one line and exit 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.resources import resolve_scene


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    return i, n


def _render(args: argparse.Namespace) -> int:
    from workbench.render.job import RenderJob, run
    from workbench.scene.spec import load_spec

    path = resolve_scene(args.scene)
    spec = load_spec(path)
    if args.resolution is not None:
        if not 16 <= args.resolution <= 2048:
            raise WorkbenchError(f"--resolution: must lie in [16, 2048], got {args.resolution}")
        spec = spec.model_copy(update={"resolution": args.resolution})
    conditions = (
        [c.strip() for c in args.conditions.split(",") if c.strip()] if args.conditions else None
    )
    job = RenderJob(
        spec=spec,
        out=Path(args.out),
        num=args.num,
        seed=args.seed,
        workers=args.workers,
        shard=args.shard,
        backend=args.backend,
        ray_address=args.ray_address,
        conditions=conditions,
        shard_size=args.shard_size,
        gl=args.gl,
        progress=not args.quiet,
        source=str(path),
    )
    dirs = run(job)
    for condition, folder in dirs.items():
        print(f"{condition}: {folder}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from workbench.data.export import EXPORTS, to_coco, to_webdataset

    if args.format == "coco":
        print(to_coco(args.data, args.out, force=args.force))
    elif args.format == "webdataset":
        print(to_webdataset(args.data, args.out, args.samples_per_tar, force=args.force))
    else:
        if args.out is None:
            raise WorkbenchError(f"--out: {args.format} writes a folder; name it with --out DIR")
        print(EXPORTS.get(args.format)(args.data, args.out, args.force, not args.quiet))
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Exit 0: intact; 1: corrupt or missing files (listed); 2: cannot verify (one line)."""
    from workbench.data import open_paired

    try:
        sets = open_paired(args.data, modalities=())
    except WorkbenchError as exc:
        raise WorkbenchError(f"cannot verify {args.data}: {exc}") from None
    bad = 0
    for condition, dataset in sets.items():
        problems = dataset.verify()
        bad += len(problems)
        for line in problems:
            print(line)
        print(
            f"{condition}: {len(dataset)} samples, "
            f"{'OK' if not problems else f'{len(problems)} problems'}"
        )
    if bad:
        print(f"corrupt: {bad} problems in {args.data} (listed above)", file=sys.stderr)
    return 1 if bad else 0


def _demo(args: argparse.Namespace) -> int:
    from workbench.numerics import pin_cpu_numerics

    pin_cpu_numerics()  # before torch loads: the same printed numbers on any x86-64 machine
    from workbench.experiments.demo import FULL, QUICK, run_demo

    for name, path in run_demo(args.out, QUICK if args.quick else FULL).items():
        print(f"{name}: {path}")
    return 0


# The Lightning CLI's subcommands: name -> one line of help. main() hands a command line that
# starts with one of them to the Lightning CLI whole; the parser lists them for --help only.
LIGHTNING_COMMANDS = {
    "fit": "train a model from a config given with -c CONFIG",
    "validate": "evaluate a model on the validation split",
    "test": "evaluate a model on the test split",
    "predict": "predict with a model",
}

# Experiments: name -> module with ``main(out, quick, seeds, workers, threads, ray_address) -> int``
# (units spread over workers through :mod:`workbench.execution`).
# the formats of workbench.data.export.EXPORTS (listed here so --help imports nothing heavy; a
# test keeps the two equal)
EXPORT_FORMATS = ("coco", "webdataset", "hf", "yolo", "kitti", "voc")

EXPERIMENTS = {
    "sim2real": "workbench.experiments.sim2real",
    "augment": "workbench.experiments.augment",
    "semisupervised": "workbench.experiments.semisupervised",
    "noisy": "workbench.experiments.noisy",
    "conditions": "workbench.experiments.conditions",
    "gan": "workbench.experiments.gan",
}

# Commands that live beside the part they drive: name -> module with ``HELP`` (one line),
# ``add_arguments(parser)`` and ``run(args) -> int``. Those modules import only the standard
# library at load time, so ``workbench --help`` stays fast.
COMMANDS = {
    "sample": "workbench.commands.sample",
    "refine": "workbench.commands.refine",
    "robustness": "workbench.commands.robustness",
    "attack-scenes": "workbench.commands.attack_scenes",
    "tune": "workbench.commands.tune",
    "clean": "workbench.commands.clean",
    "pseudo-label": "workbench.commands.pseudo_label",
    "app": "workbench.commands.app",
}


def _experiment(args: argparse.Namespace) -> int:
    from workbench.data.writer import check_folder_path

    check_folder_path(Path(args.out))
    module = importlib.import_module(EXPERIMENTS[args.name])
    spread = {"workers": args.workers, "threads": args.threads, "ray_address": args.ray_address}
    return module.main(Path(args.out), quick=args.quick, seeds=args.seeds, **spread)


def build_parser() -> argparse.ArgumentParser:
    """Returns the argument parser of the ``workbench`` command."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in LIGHTNING_COMMANDS.items():
        sub.add_parser(name, help=f"{text} (the Lightning CLI: see workbench {name} --help)")

    render = sub.add_parser("render", help="render a labelled dataset from a scene spec")
    render.add_argument(
        "scene", help="scene spec YAML, or a bundled scene name (digits, shapes, tabletop, street)"
    )
    render.add_argument("--out", required=True, help="output dataset folder")
    render.add_argument("--num", type=int, required=True, help="samples per condition")
    render.add_argument("--seed", type=int, default=0)
    render.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="render processes or Ray tasks (default: one per CPU core)",
    )
    render.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="I/N",
        help="render only shards k with k %% N == I",
    )
    render.add_argument("--shard-size", type=int, default=64, help="samples per shard")
    render.add_argument("--backend", default="local", choices=["local", "ray"])
    render.add_argument(
        "--ray-address", default=None, help="existing Ray cluster (default: start a local one)"
    )
    render.add_argument(
        "--resolution", type=int, default=None, help="override the spec's resolution"
    )
    render.add_argument(
        "--conditions",
        default=None,
        help="comma-separated render conditions, such as clone,fog,night (default: the spec's; "
        "an unknown name lists the known ones)",
    )
    render.add_argument(
        "--gl", default="auto", choices=["auto", "egl", "osmesa"], help="OpenGL backend"
    )
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=_render)

    exp = sub.add_parser(
        "export",
        help="export a dataset as COCO, WebDataset, Hugging Face datasets, YOLO, KITTI or VOC",
    )
    exp.add_argument("format", choices=EXPORT_FORMATS)
    exp.add_argument("data", help="dataset folder, or a paired-conditions folder")
    exp.add_argument(
        "--out",
        default=None,
        help="output file (coco; default DATA/coco.json) or folder (webdataset: default "
        "DATA/webdataset; the others: required)",
    )
    exp.add_argument("--samples-per-tar", type=int, default=1000)
    exp.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output (coco: the file; webdataset: its tars; others: the "
        "folder, swapped in only once the new export is complete)",
    )
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(func=_export)

    verify = sub.add_parser(
        "verify",
        help="check every file of a dataset against its sha256 "
        "(exit 1: corrupt files found, 2: cannot verify)",
    )
    verify.add_argument("data")
    verify.set_defaults(func=_verify)

    experiment = sub.add_parser("experiment", help="run a study that produces a results table")
    experiment.add_argument("name", choices=sorted(EXPERIMENTS))
    experiment.add_argument("--out", required=True)
    experiment.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3)")
    experiment.add_argument(
        "--quick", action="store_true", help="reduced budget: checks the machinery only"
    )
    experiment.add_argument(
        "--workers", type=int, default=1, help="units at once, as Ray tasks when above 1"
    )
    experiment.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every run (default: torch's own choice for this machine); the "
        "numbers depend on it, not on --workers",
    )
    experiment.add_argument(
        "--ray-address", default=None, help="HOST:PORT of a running Ray cluster"
    )
    experiment.set_defaults(func=_experiment)

    demo = sub.add_parser(
        "demo", help="the main job on the embedded data: render, (train, evaluate, report)"
    )
    demo.add_argument("--out", default="demo_out")
    demo.add_argument(
        "--quick", action="store_true", help="every stage on a reduced budget (for tests)"
    )
    demo.set_defaults(func=_demo)

    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP)
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from workbench.training.lightning_cli import run

        try:
            run(argv)
        except WorkbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        return 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
