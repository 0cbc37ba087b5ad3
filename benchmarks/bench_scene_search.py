"""Scene search benchmark: random scenes against the evolution strategy, at the same budget.

Both arms run :func:`workbench.evaluation.scene_search.search_scenes` (``workbench
attack-scenes``) on the same classifier, the same scene spec (``scenes/digits_sim2real.yaml``)
and the same number of rendered and classified scenes, once per search seed:

* random: the whole budget on uniform random points of the factor space (``population`` equal
  to the budget, so the search's random phase is all of it);
* evolution: the default search, a quarter of the budget on random points, then the
  (mu + lambda) evolution strategy.

With the same seed both arms draw the same first random scenes (a paired design). The model is
made here, deterministically: a small CNN (16 px grey, as the sim-to-real study harmonises
these renders) trained on rendered ``digits_sim2real`` digits, its accuracy measured on a
separately seeded held-out render. The arms are compared on *distinct* failures, not on every
misclassified scene: near-copies of one failure (the evolution makes many) and identical images
count once (:data:`workbench.evaluation.scene_search.DISTINCT_RULE`). Statistics over the
search seeds: mean, sample std and n per arm; evolution minus random as paired differences with
a 95% Student t interval; the target (evolution finds more distinct failures) decided on that
interval. The order of the arms alternates by seed for the timings. The JSON carries a
``provenance`` block (commit, command, host, versions, GL renderer, seeds, wall and CPU time).

Usage: python benchmarks/bench_scene_search.py --out bench_out [--seeds 5] [--budget 200]
Writes OUT/scene_search.json (the found scenes and the model under OUT/scene_search/).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from workbench.data.reader import open_dataset
from workbench.data.transforms import harmonise
from workbench.evaluation.scene_search import DISTINCT_RULE, random_share, search_scenes
from workbench.experiments import stats
from workbench.experiments.provenance import Recorder, gl_renderers
from workbench.render.job import RenderJob
from workbench.render.job import run as render
from workbench.scene.spec import load_spec
from workbench.training.classifier import Classifier

ROOT = Path(__file__).resolve().parent.parent
SCENE = ROOT / "scenes" / "digits_sim2real.yaml"
IMAGE_SIZE = 16
BACKBONE = {"width": 8, "depth": 2}
TRAIN_SEED, TEST_SEED, MODEL_SEED = 100, 101, 0
ARMS = ("random", "evolution")
DIFFERENCE_TARGET = 0.0


def _images(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A rendered dataset as the search sees it: rgb / 255, harmonised to the model's input."""
    dataset = open_dataset(folder)
    images, labels = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        label = int(item["meta"]["label"])
        image = {"image": item["rgb"].astype(np.float32) / 255.0, "label": label}
        images.append(harmonise(image, IMAGE_SIZE, 1)["image"])
        labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def make_model(work: Path, train_num: int, test_num: int, epochs: int) -> dict:
    """Renders the training and held-out digits, trains the classifier, saves its checkpoint.

    Returns:
        what was made: sizes, seeds, held-out accuracy, seconds, and the checkpoint path.
    """
    spec = load_spec(SCENE)
    start = time.perf_counter()
    for name, num, seed in (("train", train_num, TRAIN_SEED), ("test", test_num, TEST_SEED)):
        render(RenderJob(spec, work / name, num, seed, workers=1, progress=False))
    render_seconds = time.perf_counter() - start
    x, y = _images(work / "train")
    x_test, y_test = _images(work / "test")

    start = time.perf_counter()
    pl.seed_everything(MODEL_SEED, verbose=False)
    model = Classifier(backbone="small_cnn", backbone_options=BACKBONE, image_size=IMAGE_SIZE,
                       in_channels=1, class_names=spec.classes())  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    generator = torch.Generator().manual_seed(MODEL_SEED)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            loss = F.cross_entropy(model(x[batch])["logits"], y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x_test)["logits"].argmax(1) == y_test).float().mean())
    train_seconds = time.perf_counter() - start
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    ckpt = work / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    return {
        "backbone": "small_cnn",
        "backbone_options": BACKBONE,
        "image_size": IMAGE_SIZE,
        "channels": 1,
        "epochs": epochs,
        "train_samples": train_num,
        "test_samples": test_num,
        "render_seeds": {"train": TRAIN_SEED, "test": TEST_SEED},
        "test_accuracy": accuracy,
        "render_seconds": round(render_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "checkpoint": str(ckpt),
    }


def search(ckpt: Path, out: Path, arm: str, seed: int, budget: int, population: int) -> dict:
    """One search of one arm; returns its counts and times."""
    wall, cpu = time.perf_counter(), time.process_time()
    folder = search_scenes(ckpt, SCENE, out, budget=budget, seed=seed, progress=False,
                           population=budget if arm == "random" else population)  # fmt: skip
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    summary = json.loads((folder / "manifest.json").read_text())["search"]
    dataset = open_dataset(folder)
    labels = {dataset.meta(i)["label"] for i in range(len(dataset))}
    return {
        "seed": seed,
        "found": summary["found"],
        "distinct": summary["distinct"],
        "classes": len(labels),
        "random_phase": summary["random_phase"],
        "evolution_phase": summary["evolution_phase"],
        "best_margin": summary["best_margin"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--seeds", type=int, default=5, help="search seeds 0 .. N-1")
    parser.add_argument("--budget", type=int, default=200, help="scenes per search")
    parser.add_argument("--population", type=int, default=8, help="children per generation")
    parser.add_argument("--train-num", type=int, default=2000, help="rendered training digits")
    parser.add_argument("--test-num", type=int, default=500, help="rendered held-out digits")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a smoke run (not publishable)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget, args.train_num, args.test_num, args.epochs = 2, 32, 200, 100, 3
    seeds = list(range(args.seeds))
    recorder = Recorder(
        seeds={"search": seeds, "render_train": TRAIN_SEED, "render_test": TEST_SEED,
               "model": MODEL_SEED},
        gl=gl_renderers(("egl",)),
    )  # fmt: skip
    out = Path(args.out)
    work = out / "scene_search"
    if work.exists():
        shutil.rmtree(work)  # this benchmark's own folder: searches need empty outputs
    work.mkdir(parents=True)
    model = make_model(work, args.train_num, args.test_num, args.epochs)
    print(f"model: {100 * model['test_accuracy']:.1f}% on {args.test_num} held-out renders")

    runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for seed in seeds:
        for arm in ARMS if seed % 2 == 0 else ARMS[::-1]:
            run = search(Path(model["checkpoint"]), work / f"{arm}_seed{seed}", arm, seed,
                         args.budget, args.population)  # fmt: skip
            runs[arm].append(run)
            print(f"seed {seed} {arm:<9}: {run['found']:>3} found, {run['distinct']:>3} distinct, "
                  f"{run['classes']} classes, {run['wall_s']:.0f} s")  # fmt: skip
    results = {
        "scene": str(SCENE.relative_to(ROOT)),
        "budget": args.budget,
        "population": args.population,
        "random_share_of_evolution": random_share(args.budget, args.population),
        "seeds": seeds,
        "model": model,
        "distinct_rule": DISTINCT_RULE,
        "std": stats.STD,
        "arms": {
            arm: {
                "runs": runs[arm],
                **{
                    key: stats.summary([r[key] for r in runs[arm]])
                    for key in ("found", "distinct", "classes", "wall_s")
                },
            }
            for arm in ARMS
        },
        "difference": {
            key: stats.paired_difference(
                [r[key] for r in runs["evolution"]], [r[key] for r in runs["random"]]
            )
            for key in ("found", "distinct")
        },
    }
    results["target"] = target(results)
    results["provenance"] = recorder.block()
    (out / "scene_search.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"wrote {out / 'scene_search.json'}")


def target(results: dict) -> dict:
    """Evolution minus random distinct failures, decided on its paired interval."""
    diffs = results["difference"]["distinct"]["values"]
    return {
        "name": "evolution finds more distinct failures than random search (paired difference)",
        "difference": True,
        **stats.decide(diffs, DIFFERENCE_TARGET, ">"),
    }


def _count(summary: dict) -> str:
    if summary["std"] is None:
        return f"{summary['mean']:.1f}"
    return f"{summary['mean']:.1f} ± {summary['std']:.1f}"


def _difference(difference: dict) -> str:
    text = f"{difference['mean']:+.1f}"
    if difference["interval"] is None:
        return text
    low, high = difference["interval"]
    return f"{text} [{low:+.1f}, {high:+.1f}]"


def markdown(results: dict) -> str:
    """The README's scene-search table and target, from ``scene_search.json``."""
    model, budget = results["model"], results["budget"]
    first = results["random_share_of_evolution"]
    n = len(results["seeds"])
    arms = results["arms"]
    names = {
        "random": f"random search ({budget} random scenes)",
        "evolution": f"evolution ({first} random scenes, then {budget - first} evolved)",
    }
    lines = [
        (
            f"`{results['scene']}`, {budget} scenes rendered and classified per search, "
            f"{n} search seeds (the same seeds in both arms); the classifier: a `small_cnn` "
            f"(width {model['backbone_options']['width']}, depth "
            f"{model['backbone_options']['depth']}, {model['image_size']} px grey) trained "
            f"{model['epochs']} epochs on {model['train_samples']} rendered digits, "
            f"{100 * model['test_accuracy']:.1f}% on {model['test_samples']} held-out renders. "
            f"Counts per search, mean ± sample std (n = {n}):"
        ),
        "",
        (
            "| arm | misclassified scenes | distinct failures | classes among them "
            "| s per search, wall / CPU |"
        ),
        "|---|---|---|---|---|",
    ]
    for arm in ARMS:
        a = arms[arm]
        lines.append(
            f"| {names[arm]} | {_count(a['found'])} | {_count(a['distinct'])} | "
            f"{_count(a['classes'])} | {_count(a['wall_s'])} / "
            f"{_count(stats.summary([r['cpu_s'] for r in a['runs']]))} |"
        )
    difference = results["difference"]
    decided = results["target"]
    lines += [
        "",
        (
            f"Evolution minus random, paired by seed (95% interval): "
            f"{_difference(difference['distinct'])} distinct failures, "
            f"{_difference(difference['found'])} misclassified scenes. Target (evolution finds "
            f"more distinct failures): {stats.verdict(decided)}; rule: {decided['rule']}."
        ),
        "",
        f"Distinct: {results['distinct_rule']}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
