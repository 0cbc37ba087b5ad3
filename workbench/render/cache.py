"""Rendering what a ``rendered`` source names by scene, before training starts.

A data config can name a scene instead of a folder::

    - {kind: rendered, scene: digits, num: 2000, seed: 0, cache: data/digits}

and :func:`render_cached` renders the samples the cache folder lacks, exactly as
``workbench render digits --num 2000 --seed 0 --out data/digits`` would (the same job, so the
same bytes; resumable, with its progress bar), then the source reads the folder. A cache that
holds another dataset (another scene, seed or count) is refused in one line and left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.data.reader import is_finished
from workbench.data.sources import SCENE_RENDERERS
from workbench.errors import WorkbenchError
from workbench.render.job import RenderJob, run
from workbench.resources import resolve_scene
from workbench.scene.spec import load_spec


@SCENE_RENDERERS.register("scene")
def render_cached(
    scene: str, num: int, seed: int, cache: str | Path, progress: bool = True
) -> Path:
    """Renders (or finishes rendering) ``num`` samples of ``scene`` with ``seed`` into ``cache``;
    returns the dataset folder.

    Raises:
        WorkbenchError: an unknown scene, a scene with several conditions (render those with
            ``workbench render --conditions`` and name the folder), or a cache folder that
            holds another dataset.
    """
    path = resolve_scene(scene)
    spec = load_spec(path)
    if len(spec.conditions) > 1:
        raise WorkbenchError(
            f"data.sources: scene {scene!r} renders {len(spec.conditions)} paired conditions; "
            "render it with `workbench render` and name one condition's folder as path"
        )
    job = RenderJob(
        spec=spec,
        out=Path(cache),
        num=num,
        seed=seed,
        workers=os.cpu_count() or 1,
        progress=progress and not is_finished(cache),
        source=str(path),
    )
    return next(iter(run(job).values()))
