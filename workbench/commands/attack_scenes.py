"""``workbench attack-scenes``: search a scene spec for rendered scenes a classifier gets wrong
and write them as a dataset (feed it back with ``{kind: rendered, path: OUT}``)."""

import argparse

HELP = "search a scene spec's factors for scenes a classifier gets wrong; write them as a dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument("checkpoint", help="classifier checkpoint (.ckpt)")
    parser.add_argument(
        "scene", help="scene spec YAML, or a bundled scene name (digits, shapes, tabletop, street)"
    )
    parser.add_argument("--out", required=True, help="dataset folder to create")
    parser.add_argument("--budget", type=int, default=200, help="scenes to render and classify")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search and the renders")
    parser.add_argument(
        "--population", type=int, default=8, help="children per generation of the evolution"
    )
    parser.add_argument("--resolution", type=int, help="render resolution (default: the spec's)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="keep scenes whose margin (best other logit minus true logit) exceeds this; "
        "0 = misclassified",
    )
    parser.add_argument("--gl", default="auto", choices=["auto", "egl", "osmesa"])
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Runs the search and prints the dataset folder and what it found."""
    import json
    from pathlib import Path

    from workbench.data.writer import check_folder_path
    from workbench.evaluation.scene_search import search_scenes
    from workbench.resources import resolve_scene

    check_folder_path(Path(args.out))
    out = search_scenes(
        args.checkpoint,
        resolve_scene(args.scene),
        args.out,
        budget=args.budget,
        seed=args.seed,
        population=args.population,
        resolution=args.resolution,
        threshold=args.threshold,
        gl=args.gl,
        progress=not args.quiet,
    )
    summary = json.loads((out / "manifest.json").read_text())["search"]
    print(
        f"{summary['found']} of {summary['budget']} scenes misclassified, "
        f"{summary['distinct']} distinct "
        f"(random phase {summary['random_phase']['misclassified']} of "
        f"{summary['random_phase']['evaluations']}, evolution "
        f"{summary['evolution_phase']['misclassified']} of "
        f"{summary['evolution_phase']['evaluations']}); best margin {summary['best_margin']}"
    )
    print(out)
    return 0
