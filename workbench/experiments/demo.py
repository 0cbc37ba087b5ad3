"""``workbench demo``: the main job on the embedded default data.

1. render a digits dataset and paired conditions, with contact sheets;
2. train the digits classifier on natural plus rendered digits, and on natural digits alone,
   for a short budget, and compare their accuracy on the natural test split;
3. train a small conditional VAE on the natural digits and write a sample grid per class;
4. evaluate the natural-only classifier's robustness (attacks, corruptions, honesty checks) with
   a reduced budget into ``robustness/report.html``.
Rendering and the robustness evaluation resume what an earlier run left; training starts anew.
``--quick`` runs every stage on a reduced budget (the tests run it twice and compare).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.data.preview import condition_grid, contact_sheet
from workbench.data.reader import open_dataset, open_paired
from workbench.render.job import RenderJob, run
from workbench.resources import configs_dir, scenes_dir
from workbench.scene.spec import load_spec


@dataclass(frozen=True)
class DemoBudget:
    """How much each stage does.

    Attributes:
        num: rendered digits; paired: scenes rendered under each condition.
        epochs: classifier epochs; vae_epochs: VAE epochs.
        batches: limit on the training, validation and test batches of each epoch (None: all).
        eval_n: test examples the robustness evaluation attacks; eval_eps: its epsilons;
            corruptions: those it applies (None: the quick budget's).
    """

    num: int = 600
    paired: int = 48
    epochs: int = 8
    vae_epochs: int = 40
    batches: int | None = None
    eval_n: int | None = None
    eval_eps: tuple[float, ...] | None = None
    corruptions: tuple[str, ...] | None = None


FULL = DemoBudget()
QUICK = DemoBudget(
    num=64, paired=6, epochs=1, vae_epochs=1, batches=3, eval_n=16, eval_eps=(0.1,),
    corruptions=("gaussian_noise",),
)


def _limits(batches: int | None) -> list[str]:
    """Trainer options that cut every epoch to ``batches`` batches (none when None)."""
    if batches is None:
        return []
    return [
        f"--trainer.limit_{stage}_batches={batches}" for stage in ("train", "val", "test")
    ]


def render_stage(out: Path, num: int = 600, paired: int = 48, workers: int = 2) -> dict[str, Path]:
    """Renders the demo digits (resumable) and paired conditions; returns the paths it wrote."""
    spec = load_spec(scenes_dir() / "digits.yaml")
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


def weights_digest(model) -> str:
    """The first 16 hex digits of the sha256 over a model's weights and buffers, in order: two
    runs that print the same digest trained bit for bit the same model."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def train_stage(
    out: Path, rendered: Path, epochs: int = 8, batches: int | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """Trains the classifier config with and without the rendered digits.

    Returns:
        the natural test accuracy of each (also written to ``out/train_summary.json``) and the
        :func:`weights_digest` of each trained model.
    """
    from workbench.training.lightning_cli import build

    natural = {"kind": "digits", "name": "natural"}
    rendered_source = {
        "kind": "rendered",
        "path": str(rendered),
        "name": "rendered",
        "weights": {"train": 1.0, "val": 1.0, "test": 0.0},
    }
    results, weights = {}, {}
    for name, sources in (
        ("natural only", [natural]),
        ("natural + rendered", [natural, rendered_source]),
    ):
        run_name = "demo_" + name.replace(" + ", "_plus_").replace(" ", "_")
        cli = build(
            [
                "-c",
                str(configs_dir() / "classifier_digits.yaml"),
                "--trainer.max_epochs",
                str(epochs),
                "--trainer.default_root_dir",
                str(out / "runs"),
                "--data.init_args.sources",
                json.dumps(sources),
                *_limits(batches),
            ],
            run_name=run_name,
        )
        cli.trainer.fit(cli.model, cli.datamodule)
        metrics = cli.trainer.test(cli.model, cli.datamodule, verbose=False)[0]
        results[name] = float(metrics["test/acc/natural"])
        weights[name] = weights_digest(cli.model)
    (out / "train_summary.json").write_text(json.dumps(results, indent=1))
    return results, weights


def generator_stage(out: Path, epochs: int = 40, batches: int | None = None) -> Path:
    """Trains ``configs/vae_digits.yaml`` for ``epochs`` and writes a sample grid per class."""
    from workbench.generative.grid import save_sample_grid
    from workbench.training.lightning_cli import build

    cli = build(
        [
            "-c",
            str(configs_dir() / "vae_digits.yaml"),
            "--trainer.max_epochs",
            str(epochs),
            "--trainer.default_root_dir",
            str(out / "runs"),
            *_limits(batches),
        ],
        run_name="demo_vae",
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    return save_sample_grid(cli.model.eval(), out / "vae_samples.png", per_class=10)


def robustness_stage(
    out: Path,
    n: int | None = None,
    eps: tuple[float, ...] | None = None,
    corruptions: tuple[str, ...] | None = None,
) -> Path:
    """Evaluates the natural-only classifier on ``n`` natural test digits at ``eps`` with the
    quick budget (its own choices where None); returns the path of ``report.html``."""
    from workbench.evaluation.runner import evaluate_checkpoint, make_settings

    checkpoint = out / "runs" / "demo_natural_only" / "checkpoints" / "last.ckpt"
    settings = make_settings(budget="quick", eps=eps, n=n, corruptions=corruptions)
    return evaluate_checkpoint(checkpoint, "digits", out / "robustness", settings)


def run_demo(out: str | Path, budget: DemoBudget = FULL) -> dict[str, object]:
    """Runs every demo stage into ``out`` and returns what each wrote and measured.

    The measured numbers are also written to ``out/summary.json`` with their provenance.
    """
    from workbench.experiments.common import dataset_renderer
    from workbench.experiments.provenance import Recorder

    recorder = Recorder(seeds={"render": 0, "paired render": 1, "training": 0, "evaluation": 0})
    out = Path(out)
    written: dict[str, object] = dict(render_stage(out, budget.num, budget.paired))
    recorder.gl = dataset_renderer(written["digits"])
    accuracy, weights = train_stage(out, written["digits"], budget.epochs, budget.batches)
    for name, value in accuracy.items():
        written[f"natural test accuracy, {name}"] = f"{value:.4f}"
    for name, digest in weights.items():
        written[f"weights sha256, {name}"] = digest
    written["runs"] = out / "runs"
    written["vae samples"] = generator_stage(out, budget.vae_epochs, budget.batches)
    report = robustness_stage(out, budget.eval_n, budget.eval_eps, budget.corruptions)
    numbers = json.loads(report.with_name("report.json").read_text())
    for eps, value in numbers["worst_case_acc"].items():
        written[f"worst-case accuracy, natural only, linf eps {eps}"] = f"{value:.4f}"
    written["robustness report"] = report
    summary = {
        "budget": asdict(budget),
        "quick": budget != FULL,
        "printed": {key: value for key, value in written.items() if isinstance(value, str)},
        "provenance": recorder.block(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return written


def markdown(summary: dict[str, Any]) -> str:
    """The README's demo region: what the demo printed, as a code block."""
    lines = [f"{key}: {value}" for key, value in summary["printed"].items()]
    return "```\n" + "\n".join(lines) + "\n```\n"
