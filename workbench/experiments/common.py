"""What the studies share: run names, rendering, and the ``workbench experiment`` entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from tqdm import tqdm

from workbench.execution import Executor, Unit
from workbench.experiments.provenance import Recorder
from workbench.render.job import RenderJob, run
from workbench.scene.spec import load_spec


def slug(name: str) -> str:
    """Returns ``name`` with every run of non-alphanumerics as ``_`` (for run and file names)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def render_scene(scene: Path, out: Path, num: int, resolution: int | None = None) -> dict[str, str]:
    """Renders (or finishes rendering) ``num`` samples of ``scene`` with seed 0 into ``out``,
    at ``resolution`` when given, without a progress bar (the study has its own).

    Returns:
        the GL backend and ``GL_RENDERER`` string recorded in the dataset's manifest (for the
        study's provenance).
    """
    spec = load_spec(scene)
    if resolution is not None:
        spec = spec.model_copy(update={"resolution": resolution})
    run(RenderJob(spec=spec, out=out, num=num, seed=0, source=str(scene), progress=False))
    return dataset_renderer(out)


def dataset_renderer(folder: Path) -> dict[str, str]:
    """The GL backend and ``GL_RENDERER`` string a rendered dataset's manifest records."""
    renderer = json.loads((Path(folder) / "manifest.json").read_text())["renderer"]
    return {"backend": renderer["backend"], "gl_renderer": renderer["gl_renderer"]}


def grouped_bars(ax: Axes, groups: list[str], summaries: dict[str, dict[str, dict]]) -> None:
    """Draws one bar per series in every group, side by side: the mean in percent with the
    sample std as an error bar (``summaries[series][group]`` is a :func:`stats.summary` of
    values in [0, 1]), the groups as x ticks and the series in the legend."""
    import numpy as np

    width = 0.8 / len(summaries)
    for i, (name, per_group) in enumerate(summaries.items()):
        positions = np.arange(len(groups)) + (i - (len(summaries) - 1) / 2) * width
        ax.bar(positions, [100 * per_group[g]["mean"] for g in groups], width,
               yerr=[100 * (per_group[g]["std"] or 0.0) for g in groups], capsize=2,
               label=name)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)


def reused_runs(runs: Path) -> bool:
    """Whether ``runs`` already holds results of an earlier invocation (a resumed study, whose
    provenance times then cover only the part this invocation did)."""
    return runs.is_dir() and any(runs.iterdir())


class StudyBase:
    """What every study holds: its folder and budget, the store of its finished units
    (``out/runs``, so a rerun resumes), how its units are spread, its provenance recorder and a
    progress bar that :meth:`tick` advances as units end.

    Args:
        out: the study's folder.
        config: its budget (with ``seeds``).
        executor: how its units are spread (serial by default); finished units are saved in
            ``out/runs`` whatever it says.
    """

    def __init__(self, out: str | Path, config: Any, executor: Executor | None = None):
        import torch

        self.out, self.config = Path(out), config
        self.runs = self.out / "runs"
        self.resumed = reused_runs(self.runs)
        self.runs.mkdir(parents=True, exist_ok=True)
        executor = executor or Executor(threads=torch.get_num_threads())
        self.executor = replace(executor, store=self.runs)
        self.recorder = Recorder(seeds=list(config.seeds))
        self.bar: tqdm | None = None

    def save(
        self,
        summary: dict[str, Any],
        tables: Callable[[dict[str, Any]], str],
        plot: Callable[[dict[str, Any], Path], None] | None = None,
    ) -> None:
        """Writes ``results.json``, ``results.md`` (``tables(summary)``) and, with ``plot``,
        ``results.png`` into the study's folder."""
        (self.out / "results.json").write_text(json.dumps(summary, indent=1))
        (self.out / "results.md").write_text(tables(summary))
        if plot is not None:
            plot(summary, self.out / "results.png")

    def tick(self, unit: Unit, result: Any, seconds: float) -> None:
        """Advances the progress bar by one finished unit (an executor's ``done`` callback)."""
        if self.bar is not None:
            self.bar.update()


def run_study(
    study: type,
    config_type: type,
    out: Path,
    quick: bool,
    seeds: int | None,
    workers: int = 1,
    threads: int | None = None,
    ray_address: str | None = None,
) -> int:
    """Runs ``study(out, config, executor)`` with the full or ``quick`` config (``seeds`` seeds
    when given) and prints its table and where its files are.

    Args:
        study: the study's class.
        config_type: its budget's class (with a ``quick()`` constructor).
        out: the study's folder (a rerun resumes it).
        quick: the reduced budget that checks the machinery.
        seeds: the number of seeds (default: the config's).
        workers: units at once (Ray tasks when above 1).
        threads: torch threads of every unit (default: torch's choice here).
        ray_address: a running Ray cluster to use instead of a local one.
    """
    import torch

    config = config_type.quick() if quick else config_type()
    if seeds is not None:
        config.seeds = list(range(seeds))
    threads = threads or torch.get_num_threads()
    executor = Executor(workers=workers, ray_address=ray_address, threads=threads)
    summary = study(out, config, executor).run()
    print((out / "results.md").read_text())
    print(f"results: {out / 'results.json'}, plot: {out / 'results.png'}")
    return 0 if summary else 1
