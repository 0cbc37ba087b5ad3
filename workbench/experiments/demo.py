"""``workbench demo``: the main job on the embedded default data.

1. render a digits dataset and paired conditions, with contact sheets, and digits rendered the
   way ``scenes/digits_sim2real.yaml`` makes them (bright strokes filling a black frame, like
   the natural handwritten digits);
2. train the digits classifier with a few natural labels per class, alone and with the rendered
   sim-to-real digits, for a short budget, and compare their accuracy on the natural test split
   (where the studies show rendered data helps: few labels, renders made to resemble them);
3. train a small conditional VAE on the natural digits and write a sample grid per class;
4. evaluate the classifier trained with rendered digits for robustness (attacks, corruptions,
   honesty checks) with a reduced budget into ``robustness/report.html``.

It prints a short summary (what it made, where, the numbers and what they mean); Lightning's
messages, warnings and progress go to ``logs/demo.log`` under the output folder. Rendering and
the robustness evaluation resume what an earlier run left; training starts anew. ``--quick``
runs every stage on a reduced budget (the tests run it twice and compare).
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.data.preview import condition_grid, contact_sheet
from workbench.data.reader import open_dataset, open_paired
from workbench.data.writer import check_folder_path
from workbench.render.job import RenderJob, run
from workbench.resources import configs_dir, scenes_dir
from workbench.scene.spec import load_spec


@dataclass(frozen=True)
class DemoBudget:
    """How much each stage does.

    Attributes:
        num: rendered digits; paired: scenes rendered under each condition.
        sim2real: digits rendered like the natural ones, for the classifier comparison.
        k: natural labels per class the classifiers see.
        epochs: classifier epochs of ``epoch_size`` draws each; vae_epochs: VAE epochs.
        batches: limit on the training, validation and test batches of each epoch (None: all).
        eval_n: test examples the robustness evaluation attacks; eval_eps: its epsilons;
            corruptions: those it applies (None: the quick budget's).
    """

    num: int = 300
    paired: int = 24
    sim2real: int = 1000
    k: int = 3
    epochs: int = 8
    epoch_size: int = 2048
    vae_epochs: int = 15
    batches: int | None = None
    eval_n: int | None = 200
    eval_eps: tuple[float, ...] | None = None
    corruptions: tuple[str, ...] | None = None


FULL = DemoBudget()
QUICK = DemoBudget(
    num=64, paired=6, sim2real=64, k=1, epochs=1, epoch_size=128, vae_epochs=1, batches=3,
    eval_n=16, eval_eps=(0.1,), corruptions=("gaussian_noise",),
)


def _limits(batches: int | None) -> list[str]:
    """Trainer options that cut every epoch to ``batches`` batches (none when None)."""
    if batches is None:
        return []
    return [
        f"--trainer.limit_{stage}_batches={batches}" for stage in ("train", "val", "test")
    ]


@contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Sends Lightning's messages and every warning to the file ``log`` for the block, so the
    terminal shows only the demo's summary."""
    log.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric",
                                              "lightning", "py.warnings", "workbench")]  # fmt: skip
    saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for logger in loggers:
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            yield
    finally:
        logging.captureWarnings(False)
        for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        handler.close()


def render_stage(
    out: Path, num: int = 300, paired: int = 24, sim2real: int = 1000, workers: int = 2
) -> dict[str, Path]:
    """Renders the demo digits, paired conditions and sim-to-real digits (resumable, quietly);
    returns the paths it wrote."""
    spec = load_spec(scenes_dir() / "digits.yaml")
    digits = run(
        RenderJob(
            spec=spec, out=out / "digits", num=num, workers=workers, source="scenes/digits.yaml",
            progress=False,
        )
    )  # fmt: skip
    lookalike = run(
        RenderJob(
            spec=load_spec(scenes_dir() / "digits_sim2real.yaml"), out=out / "digits_sim2real",
            num=sim2real, workers=workers, source="scenes/digits_sim2real.yaml", progress=False,
        )
    )  # fmt: skip
    paired_dirs = run(
        RenderJob(
            spec=spec,
            out=out / "digits_conditions",
            num=paired,
            seed=1,
            workers=workers,
            conditions=["clone", "fog", "rain", "sunset", "night"],
            source="scenes/digits.yaml",
            progress=False,
        )
    )
    sheet = contact_sheet(open_dataset(digits["clone"]), out / "digits_sheet.png", 8)
    grid = condition_grid(open_paired(out / "digits_conditions"), out / "digits_conditions.png", 6)
    return {
        "digits": digits["clone"],
        "sim-to-real digits": lookalike["clone"],
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


def arms(k: int, rendered: int) -> tuple[str, str]:
    """The two classifiers' names: ``k`` natural labels per class, without and with
    ``rendered`` rendered digits."""
    few = f"{k} natural label{'s' if k > 1 else ''} per class"
    return few, f"{few} + {rendered} rendered digits"


def train_stage(
    out: Path, rendered: Path, budget: DemoBudget = FULL
) -> tuple[dict[str, float], dict[str, str]]:
    """Trains the classifier config (16 px, the same number of draws for both) on ``k`` natural
    labels per class, alone and mixed 1:1 with the rendered sim-to-real digits.

    Returns:
        the natural test accuracy of each (also written to ``out/train_summary.json``) and the
        :func:`weights_digest` of each trained model.
    """
    from workbench.training.lightning_cli import build

    natural = {"kind": "digits", "name": "natural", "per_class": budget.k}
    # the config's rendered source names a scene; jsonargparse merges a list override into the
    # config's entries, so the scene fields are cleared explicitly
    rendered_source = {
        "kind": "rendered",
        "path": str(rendered),
        "name": "rendered",
        "weights": {"train": 1.0, "val": 0.0, "test": 0.0},
        **dict.fromkeys(("scene", "num", "seed", "cache")),
    }
    few, mixed = arms(budget.k, budget.sim2real)
    results, weights = {}, {}
    for name, run_name, sources in (
        (few, "demo_natural_only", [natural]),
        (mixed, "demo_natural_plus_rendered", [natural, rendered_source]),
    ):
        cli = build(
            [
                "-c", str(configs_dir() / "classifier_digits.yaml"),
                "--trainer.max_epochs", str(budget.epochs),
                "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false",
                "--trainer.default_root_dir", str(out / "runs"),
                "--data.init_args.sources", json.dumps(sources),
                "--data.init_args.image_size", "16",
                "--data.init_args.epoch_size", str(budget.epoch_size),
                *_limits(budget.batches),
            ],
            run_name=run_name,
        )  # fmt: skip
        cli.trainer.fit(cli.model, cli.datamodule)
        metrics = cli.trainer.test(cli.model, cli.datamodule, verbose=False)[0]
        results[name] = float(metrics["test/acc/natural"])
        weights[name] = weights_digest(cli.model)
    (out / "train_summary.json").write_text(json.dumps(results, indent=1))
    return results, weights


def generator_stage(out: Path, epochs: int = 15, batches: int | None = None) -> Path:
    """Trains ``configs/vae_digits.yaml`` for ``epochs`` and writes a sample grid per class."""
    from workbench.generative.grid import save_sample_grid
    from workbench.training.lightning_cli import build

    cli = build(
        [
            "-c",
            str(configs_dir() / "vae_digits.yaml"),
            "--trainer.max_epochs",
            str(epochs),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
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
    """Evaluates the classifier trained with rendered digits on ``n`` natural test digits at
    ``eps`` with the quick budget (its own choices where None); returns the path of
    ``report.html``."""
    from workbench.evaluation.runner import evaluate_checkpoint, make_settings

    checkpoint = out / "runs" / "demo_natural_plus_rendered" / "checkpoints" / "last.ckpt"
    settings = make_settings(budget="quick", eps=eps, n=n, corruptions=corruptions)
    return evaluate_checkpoint(checkpoint, "digits", out / "robustness", settings, progress=False)


def run_demo(out: str | Path, budget: DemoBudget = FULL) -> dict[str, object]:
    """Runs every demo stage into ``out`` and returns what each wrote and measured.

    The measured numbers are also written to ``out/summary.json`` with their provenance.
    """
    from workbench.experiments.common import dataset_renderer
    from workbench.experiments.provenance import Recorder

    recorder = Recorder(seeds={"render": 0, "paired render": 1, "training": 0, "evaluation": 0})
    out = Path(out)
    check_folder_path(out)  # before the log file is made under it
    with quiet(out / "logs" / "demo.log"):
        written: dict[str, object] = dict(
            render_stage(out, budget.num, budget.paired, budget.sim2real)
        )
        recorder.gl = dataset_renderer(written["digits"])
        accuracy, weights = train_stage(out, written["sim-to-real digits"], budget)
        for name, value in accuracy.items():
            written[f"natural test accuracy, {name}"] = f"{value:.4f}"
        written["what it means"] = meaning(accuracy, budget)
        for name, digest in weights.items():
            written[f"weights sha256, {name}"] = digest
        written["runs"] = out / "runs"
        written["vae samples"] = generator_stage(out, budget.vae_epochs, budget.batches)
        report = robustness_stage(out, budget.eval_n, budget.eval_eps, budget.corruptions)
    numbers = json.loads(report.with_name("report.json").read_text())
    mixed = arms(budget.k, budget.sim2real)[1]
    for eps, value in numbers["worst_case_acc"].items():
        written[f"worst-case accuracy, {mixed}, linf eps {eps}"] = f"{value:.4f}"
    written["robustness report"] = report
    written["logs"] = out / "logs" / "demo.log"
    summary = {
        "budget": asdict(budget),
        "quick": budget != FULL,
        "printed": {key: value for key, value in written.items() if isinstance(value, str)},
        "provenance": recorder.block(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return written


def meaning(accuracy: dict[str, float], budget: DemoBudget) -> str:
    """One line saying what the two accuracies mean."""
    few, mixed = (accuracy[name] for name in arms(budget.k, budget.sim2real))
    change = 100 * (mixed - few)
    verb = "add" if change >= 0 else "cost"
    return (
        f"with {budget.k} natural label{'s' if budget.k > 1 else ''} per class, digits rendered "
        f"to resemble the natural ones {verb} {abs(change):.1f} points of natural test accuracy "
        f"(one seed, short budget; the sim2real and augment studies measure it over seeds)"
    )


def markdown(summary: dict[str, Any]) -> str:
    """The README's demo region: what the demo printed, as a code block."""
    lines = [f"{key}: {value}" for key, value in summary["printed"].items()]
    return "```\n" + "\n".join(lines) + "\n```\n"
