"""``workbench demo``: the main job on the embedded default data.

1. render a digits dataset and paired conditions, with contact sheets;
2. train the digits classifier on natural plus rendered digits, and on natural digits alone,
   for a short budget, and compare their accuracy on the natural test split;
3. train a small conditional VAE on the natural digits and write a sample grid per class;
4. evaluate the natural-only classifier's robustness (attacks, corruptions, honesty checks) with
   a reduced budget into ``robustness/report.html``.
Rendering and the robustness evaluation resume what an earlier run left; training starts anew.
"""

from __future__ import annotations

import json
from pathlib import Path

from workbench.data.preview import condition_grid, contact_sheet
from workbench.data.reader import open_dataset, open_paired
from workbench.render.job import RenderJob, run
from workbench.scene.spec import load_spec

SCENES = Path(__file__).resolve().parents[2] / "scenes"


def render_stage(out: Path, num: int = 600, paired: int = 48, workers: int = 2) -> dict[str, Path]:
    """Renders the demo digits (resumable) and paired conditions; returns the paths it wrote."""
    spec = load_spec(SCENES / "digits.yaml")
    digits = run(
        RenderJob(
            spec=spec, out=out / "digits", num=num, workers=workers, source="scenes/digits.yaml"
        )
    )
    paired_dirs = run(
        RenderJob(
            spec=spec,
            out=out / "digits_conditions",
            num=paired,
            seed=1,
            workers=workers,
            conditions=["clone", "fog", "rain", "sunset", "night"],
            source="scenes/digits.yaml",
        )
    )
    sheet = contact_sheet(open_dataset(digits["clone"]), out / "digits_sheet.png", 8)
    grid = condition_grid(open_paired(out / "digits_conditions"), out / "digits_conditions.png", 6)
    return {
        "digits": digits["clone"],
        "conditions": next(iter(paired_dirs.values())).parent,
        "sheet": sheet,
        "conditions_grid": grid,
    }


CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CONFIG = CONFIGS / "classifier_digits.yaml"


def train_stage(out: Path, rendered: Path, epochs: int = 8) -> dict[str, float]:
    """Trains the classifier config with and without the rendered digits; returns the natural
    test accuracy of each (also written to ``out/train_summary.json``)."""
    from workbench.models.lightning_cli import build

    natural = {"kind": "digits", "name": "natural"}
    rendered_source = {
        "kind": "rendered",
        "path": str(rendered),
        "name": "rendered",
        "weights": {"train": 1.0, "val": 1.0, "test": 0.0},
    }
    results = {}
    for name, sources in (
        ("natural only", [natural]),
        ("natural + rendered", [natural, rendered_source]),
    ):
        run_name = "demo_" + name.replace(" + ", "_plus_").replace(" ", "_")
        cli = build(
            [
                "-c",
                str(CONFIG),
                "--trainer.max_epochs",
                str(epochs),
                "--trainer.default_root_dir",
                str(out / "runs"),
                "--data.init_args.sources",
                json.dumps(sources),
            ],
            run_name=run_name,
        )
        cli.trainer.fit(cli.model, cli.datamodule)
        metrics = cli.trainer.test(cli.model, cli.datamodule, verbose=False)[0]
        results[name] = float(metrics["test/acc/natural"])
    (out / "train_summary.json").write_text(json.dumps(results, indent=1))
    return results


def generator_stage(out: Path, epochs: int = 40) -> Path:
    """Trains ``configs/vae_digits.yaml`` for ``epochs`` and writes a sample grid per class."""
    from workbench.generative.grid import save_sample_grid
    from workbench.models.lightning_cli import build

    cli = build(
        [
            "-c",
            str(CONFIGS / "vae_digits.yaml"),
            "--trainer.max_epochs",
            str(epochs),
            "--trainer.default_root_dir",
            str(out / "runs"),
        ],
        run_name="demo_vae",
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    return save_sample_grid(cli.model.eval(), out / "vae_samples.png", per_class=10)


def robustness_stage(out: Path) -> Path:
    """Evaluates the natural-only classifier on the natural test digits with the quick budget;
    returns the path of ``report.html``."""
    from workbench.evaluation.runner import evaluate_checkpoint, make_settings

    checkpoint = out / "runs" / "demo_natural_only" / "checkpoints" / "last.ckpt"
    return evaluate_checkpoint(
        checkpoint, "digits", out / "robustness", make_settings(budget="quick")
    )


def run_demo(out: str | Path) -> dict[str, object]:
    """Runs every demo stage into ``out`` and returns what each wrote."""
    out = Path(out)
    written: dict[str, object] = dict(render_stage(out))
    accuracy = train_stage(out, written["digits"])
    for name, value in accuracy.items():
        written[f"natural test accuracy, {name}"] = f"{value:.4f}"
    written["runs"] = out / "runs"
    written["vae samples"] = generator_stage(out)
    written["robustness report"] = robustness_stage(out)
    return written
