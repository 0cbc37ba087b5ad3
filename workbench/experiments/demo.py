"""``workbench demo``: the main job on the embedded default data.

Stage 1 renders a digits dataset and paired conditions, and writes contact sheets. Later
stages (training, evaluation, the report) build on these folders.
"""

from __future__ import annotations

import logging
from pathlib import Path

from workbench.data.preview import condition_grid, contact_sheet
from workbench.data.reader import open_dataset, open_paired
from workbench.render.job import RenderJob, run
from workbench.scene.spec import load_spec

log = logging.getLogger(__name__)
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


def run_demo(out: str | Path) -> dict[str, Path]:
    """Runs every demo stage into ``out`` and returns what each wrote."""
    out = Path(out)
    return render_stage(out)
