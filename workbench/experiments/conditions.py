"""``workbench experiment conditions``: dense networks under weather, time of day and camera
turns, in the spirit of Virtual KITTI.

Protocol:

* the street scene rendered as paired sets at 64 px (clone, overcast, morning, sunset, fog,
  rain, night, and the camera turned 15 and 30 degrees left and right): a training set from
  seed 0 and a test set from seed 1, so no test scene was seen in training;
* one recipe for every arm (:mod:`workbench.training.dense_recipe`: a U-Net with a segmentation
  and a depth head, cross entropy + Dice and SILog, the same draws, epochs and geometric
  augmentation); arms:

  - ``clone only``: the clone renders;
  - ``condition randomisation``: every condition's renders, drawn equally;
  - ``+ curriculum``: the same, on the difficulty curriculum (the rendered difficulty includes
    darkness and fog; easy first, the pool from 30% to all by 70% of training);
  - ``photometric augmentation``: the clone renders with kornia colour jitter and blur on the
    image, the cheap baseline a user tries first;

* mIoU (background included) and AbsRel on every test condition, mean over 3 seeds with the
  sample std; each condition's change from clone as a paired difference with a 95% interval;
* targets: clone-only mIoU on clone test renders at least 0.6; condition randomisation
  recovers at least half of clone-only's mIoU drop under fog and under night (per seed:
  (randomised - clone only) / (clone only on clone - clone only), decided on the interval);
  whether the curriculum adds anything over randomisation (mean over conditions, decided on
  the interval);
* a figure with one row per condition on the same test scene: the image, the ground truth and
  the predictions of the clone-only and randomised models (seed 0).

Every training run is a unit of :mod:`workbench.execution` (saved as it ends; ``--workers``
spreads them over Ray). Results carry a ``provenance`` block.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from workbench.checkpoint import load_module
from workbench.execution import Unit
from workbench.experiments import stats
from workbench.experiments.common import (
    StudyBase,
    dataset_renderer,
    grouped_bars,
    run_study,
    slug,
)
from workbench.render.job import RenderJob, run
from workbench.resources import scenes_dir
from workbench.scene.spec import load_spec
from workbench.training.dense_overlays import SEG_CMAP
from workbench.training.dense_recipe import DenseBudget, dense_scores, rendered_batches, train_dense

CONDITIONS = [
    "clone",
    "overcast",
    "morning",
    "sunset",
    "fog",
    "rain",
    "night",
    "15-deg-left",
    "15-deg-right",
    "30-deg-left",
    "30-deg-right",
]
ARMS = ("clone only", "condition randomisation", "+ curriculum", "photometric augmentation")
CURRICULUM = {"scorer": "difficulty", "pacing": "linear", "start": 0.3, "full_at": 0.7}
PHOTOMETRIC = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "blur_sigma": [0.1, 1.5]}
MIOU_TARGET, RECOVERY_TARGET = 0.6, 0.5
RECOVERY_CONDITIONS = ("fog", "night")


@dataclass
class StudyConfig:
    """Budget of the study; ``quick`` is the reduced machinery check used by the tests."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    conditions: list[str] = field(default_factory=lambda: list(CONDITIONS))
    train_per_condition: int = 600
    test_per_condition: int = 150
    dense: DenseBudget = field(default_factory=DenseBudget)

    @classmethod
    def quick(cls) -> StudyConfig:
        return cls(
            seeds=[0],
            conditions=["clone", "fog", "night"],
            train_per_condition=24,
            test_per_condition=6,
            dense=DenseBudget(
                image_size=32, width=8, levels=2, epochs=1, epoch_size=64, batch_size=16
            ),
        )


def arm_sources(arm: str, train: Path, conditions: list[str]) -> list[dict[str, Any]]:
    """The training sources of an arm: the clone renders, or every condition's."""
    names = ["clone"] if arm in ("clone only", "photometric augmentation") else conditions
    return [{"kind": "rendered", "path": str(train / name), "name": name} for name in names]


def fit_arm(
    config: StudyConfig, arm: str, seed: int, train: str, test: str, save: str | None = None
) -> dict[str, Any]:
    """One unit: trains an arm and scores it on every test condition; saves the model to
    ``save`` when given."""
    model = train_dense(
        arm_sources(arm, Path(train), config.conditions),
        config.dense,
        seed,
        curriculum=CURRICULUM if arm == "+ curriculum" else None,
        augment=PHOTOMETRIC if arm == "photometric augmentation" else None,
    )
    if save is not None:
        model.trainer.save_checkpoint(save)
    return {"scores": {c: dense_scores(model, Path(test) / c) for c in config.conditions}}


class Study(StudyBase):
    """Runs the study into ``out``; see the module docstring and :class:`StudyBase`."""

    def _key(self, arm: str, seed: int) -> str:
        return f"{slug(arm)}_seed{seed}"

    def _checkpoint(self, arm: str) -> Path:
        return self.runs / f"{self._key(arm, self.config.seeds[0])}.ckpt"

    def _render(self) -> None:
        c = self.config
        spec = load_spec(scenes_dir() / "street.yaml").model_copy(
            update={"resolution": c.dense.image_size}
        )
        for split, seed, num in (
            ("train", 0, c.train_per_condition),
            ("test", 1, c.test_per_condition),
        ):
            run(
                RenderJob(
                    spec=spec,
                    out=self.out / split,
                    num=num,
                    seed=seed,
                    source="street",
                    conditions=c.conditions,
                    progress=False,
                )
            )
        self.recorder.gl = dataset_renderer(self.out / "test" / c.conditions[0])

    def run(self) -> dict[str, Any]:
        c = self.config
        self._render()
        units = []
        for arm in ARMS:
            for seed in c.seeds:
                save = self._checkpoint(arm) if seed == c.seeds[0] else None
                units.append(
                    Unit(
                        self._key(arm, seed),
                        fit_arm,
                        dict(
                            config=c,
                            arm=arm,
                            seed=seed,
                            train=str(self.out / "train"),
                            test=str(self.out / "test"),
                            save=str(save) if save else None,
                        ),
                    )
                )
        self.bar = tqdm(total=len(units), desc="conditions", unit="run")
        done = self.executor.run(units, self.tick)
        self.bar.close()
        summary = self._summary(done)
        self.save(summary, tables, _plot)
        self._prediction_rows(self.out / "predictions.png")
        return summary

    def _summary(self, done: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        scores = {
            arm: {
                cond: [done[self._key(arm, seed)]["scores"][cond] for seed in c.seeds]
                for cond in c.conditions
            }
            for arm in ARMS
        }
        metrics = {}
        for name in ("miou", "absrel", "pixel_acc", "delta1"):
            metrics[name] = {
                arm: {cond: stats.summary([s[name] for s in per]) for cond, per in by_cond.items()}
                for arm, by_cond in scores.items()
            }
        drops = {
            name: {
                arm: {
                    cond: stats.paired_difference(
                        metrics[name][arm][cond]["values"], metrics[name][arm]["clone"]["values"]
                    )
                    for cond in c.conditions
                    if cond != "clone"
                }
                for arm in ARMS
            }
            for name in ("miou", "absrel")
        }
        summary = {
            "config": asdict(c),
            "metrics": metrics,
            "miou_drop_from_clone": drops["miou"],
            "absrel_change_from_clone": drops["absrel"],
            "iou_per_class": {
                arm: {cond: per[0]["iou"] for cond, per in by_cond.items()}
                for arm, by_cond in scores.items()
            },
            "std": stats.STD,
            "execution": {"workers": self.executor.workers, "threads": self.executor.threads},
        }
        summary["targets"] = targets(summary)
        summary["provenance"] = self.recorder.block(resumed=self.resumed)
        return summary

    def _prediction_rows(self, path: Path) -> None:
        """One row per condition, the same test scene: image, truth, clone-only and randomised
        predictions (seed 0)."""
        models = {
            arm: load_module(self._checkpoint(arm), ["dense"])
            for arm in ("clone only", "condition randomisation")
        }
        conditions = self.config.conditions
        fig = Figure(figsize=(7.2, 1.8 * len(conditions)))
        axes = fig.subplots(len(conditions), 4, squeeze=False)
        style = {"cmap": SEG_CMAP, "vmin": 0, "vmax": 19, "interpolation": "nearest"}
        for row, cond in enumerate(conditions):
            batch = next(
                rendered_batches(self.out / "test" / cond, self.config.dense.image_size, 1)
            )
            cells = [
                (batch["image"][0].permute(1, 2, 0).numpy(), {}),
                (np.ma.masked_less(batch["seg"][0].numpy(), 0), style),
            ]
            with torch.no_grad():
                for model in models.values():
                    cells.append((model(batch["image"])["seg"].argmax(1)[0].numpy(), style))
            for col, (picture, options) in enumerate(cells):
                axes[row, col].imshow(picture, **options)
                axes[row, col].set_xticks([])
                axes[row, col].set_yticks([])
            axes[row, 0].set_ylabel(cond, fontsize=8)
        for col, title in enumerate(["image", "truth", "clone only", "randomised"]):
            axes[0, col].set_title(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(path, dpi=110)


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's targets, decided on the per-seed values (see :func:`stats.decide`)."""
    miou = summary["metrics"]["miou"]
    conditions = list(miou["clone only"])
    found = [
        {
            "name": f"clone only, mIoU on clone test renders >= {100 * MIOU_TARGET:.0f}%",
            "difference": False,
            **stats.decide(miou["clone only"]["clone"]["values"], MIOU_TARGET),
        }
    ]
    base_clone = miou["clone only"]["clone"]["values"]
    for cond in RECOVERY_CONDITIONS:
        if cond not in conditions:
            continue
        base = miou["clone only"][cond]["values"]
        randomised = miou["condition randomisation"][cond]["values"]
        recovered = [
            (r - b) / (c - b) if c != b else float("nan")
            for r, b, c in zip(randomised, base, base_clone, strict=True)
        ]
        found.append(
            {
                "name": f"randomisation recovers >= {100 * RECOVERY_TARGET:.0f}% of clone "
                f"only's mIoU drop under {cond}",
                "difference": False,
                **stats.decide(recovered, RECOVERY_TARGET),
            }
        )
    mean_over = [
        float(np.mean([miou[arm][c]["values"][i] for c in conditions]))
        for arm in ("+ curriculum", "condition randomisation")
        for i in range(len(base_clone))
    ]
    n = len(base_clone)
    found.append(
        {
            "name": "the curriculum adds mIoU over randomisation (mean over conditions)",
            "difference": True,
            **stats.decide(
                [a - b for a, b in zip(mean_over[:n], mean_over[n:], strict=True)], 0.0, ">"
            ),
        }
    )
    return found


def tables(summary: dict[str, Any]) -> str:
    """The study's tables in Markdown (``results.md`` and the README)."""
    miou, absrel = summary["metrics"]["miou"], summary["metrics"]["absrel"]
    conditions = list(miou["clone only"])
    n = len(miou["clone only"]["clone"]["values"])
    header = "| test condition | " + " | ".join(ARMS) + " |"
    rule = "|---|" + "---|" * len(ARMS)

    def absrel_cell(arm: str, cond: str) -> str:
        s = absrel[arm][cond]
        return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s["std"] is not None else "")

    def absrel_change(arm: str, cond: str) -> str:
        d = summary["absrel_change_from_clone"][arm][cond]
        bounds = d["interval"]
        return f"{d['mean']:+.3f}" + (f" [{bounds[0]:+.3f}, {bounds[1]:+.3f}]" if bounds else "")

    lines = [
        f"Segmentation mIoU (%, background included, mean ± sample std over n = {n} seeds) per "
        "test condition; the street scene at "
        f"{summary['config']['dense']['image_size']} px, train and test renders from disjoint "
        "seeds.",
        "",
        header,
        rule,
        *(
            f"| {cond} | " + " | ".join(stats.pct(miou[a][cond]["values"]) for a in ARMS) + " |"
            for cond in conditions
        ),
        "",
        "mIoU drop from clone (points, paired over seeds, mean [95% Student t interval]):",
        "",
        header,
        rule,
        *(
            f"| {cond} | "
            + " | ".join(stats.points(summary["miou_drop_from_clone"][a][cond]) for a in ARMS)
            + " |"
            for cond in conditions
            if cond != "clone"
        ),
        "",
        "Depth AbsRel (lower is better, mean ± sample std) per test condition:",
        "",
        header,
        rule,
        *(
            f"| {cond} | " + " | ".join(absrel_cell(a, cond) for a in ARMS) + " |"
            for cond in conditions
        ),
        "",
        "AbsRel change from clone (paired over seeds, mean [95% Student t interval]):",
        "",
        header,
        rule,
        *(
            f"| {cond} | " + " | ".join(absrel_change(a, cond) for a in ARMS) + " |"
            for cond in conditions
            if cond != "clone"
        ),
        "",
        *stats.target_table(summary["targets"]),
    ]
    return "\n".join(lines) + "\n"


def _plot(summary: dict[str, Any], path: Path) -> None:
    miou = summary["metrics"]["miou"]
    conditions = list(miou["clone only"])
    fig = Figure(figsize=(max(7, 0.8 * len(conditions) + 2), 4))
    ax = fig.subplots()
    grouped_bars(ax, conditions, {arm: miou[arm] for arm in ARMS})
    ax.set_xticks(range(len(conditions)), conditions, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test mIoU (%)")
    ax.set_title("segmentation of rendered streets per test condition", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(out: Path, quick: bool = False, seeds: int | None = None, **spread: Any) -> int:
    """Runs the study into ``out`` (``workbench experiment conditions``); prints its tables.
    ``spread`` takes ``workers``, ``threads`` and ``ray_address`` (see :func:`run_study`)."""
    return run_study(Study, StudyConfig, out, quick, seeds, **spread)
