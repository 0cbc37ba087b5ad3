"""What the studies share: run names, summary statistics and the ``workbench experiment`` entry."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from workbench.render.job import RenderJob, run
from workbench.scene.spec import load_spec


def slug(name: str) -> str:
    """Returns ``name`` with every run of non-alphanumerics as ``_`` (for run and file names)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def stats(values: list[float]) -> dict[str, Any]:
    """Returns the mean, population standard deviation (0 for one value) and the values."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def render_scene(scene: Path, out: Path, num: int, resolution: int | None = None) -> None:
    """Renders (or finishes rendering) ``num`` samples of ``scene`` with seed 0 into ``out``,
    at ``resolution`` when given, without a progress bar (the study has its own)."""
    spec = load_spec(scene)
    if resolution is not None:
        spec = spec.model_copy(update={"resolution": resolution})
    run(RenderJob(spec=spec, out=out, num=num, seed=0, source=str(scene), progress=False))


def run_study(study: type, config_type: type, out: Path, quick: bool, seeds: int | None) -> int:
    """Runs ``study(out, config)`` with the full or ``quick`` config (``seeds`` seeds when given)
    and prints its table and where its files are."""
    config = config_type.quick() if quick else config_type()
    if seeds is not None:
        config.seeds = list(range(seeds))
    summary = study(out, config).run()
    print((out / "results.md").read_text())
    print(f"results: {out / 'results.json'}, plot: {out / 'results.png'}")
    return 0 if summary else 1
