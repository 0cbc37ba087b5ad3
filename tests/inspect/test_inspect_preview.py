"""Spec editing, the preview workers (same pixels as ``workbench render``; a timeout; a bounded
wait when busy), sample views, the checks before a background render (bounds, disk room, mesh
files under the root), and subprocesses that no module in the data root can shadow (progress and
cancel are driven through the app in tests/app/test_generate_page.py)."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import psutil
import pytest

from workbench.data.reader import open_dataset
from workbench.errors import WorkbenchError
from workbench.inspect.jobs import JobRegistry
from workbench.inspect.preview import (
    MAX_RESOLUTION,
    MAX_SAMPLES,
    MAX_WORKERS,
    PreviewRenderer,
    apply_overrides,
    check_spec,
    colorize_depth,
    range_fields,
    render_need,
    sample_views,
    start_render,
)
from workbench.resources import scenes_dir
from workbench.scene.spec import load_spec, parse_spec

SCENES_DIR = scenes_dir()


@pytest.fixture(scope="module")
def renderer(tmp_path_factory):
    worker = PreviewRenderer(tmp_path_factory.mktemp("preview_root"))
    yield worker
    worker.close()


def _until(condition, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def _small():
    return load_spec(SCENES_DIR / "digits.yaml").model_copy(update={"resolution": 16})


def test_ranges_are_listed_and_overrides_validated():
    spec = load_spec(SCENES_DIR / "digits.yaml")
    fields = {f.key: f for f in range_fields(spec)}
    assert (fields["camera.distance"].low, fields["camera.distance"].high) == (2.3, 3.2)
    assert fields["distractors"].integer and fields["distractors"].step == 1
    for field in fields.values():
        assert field.bounds[0] <= field.low <= field.high <= field.bounds[1]
    edited = apply_overrides(spec, {"camera.distance": (2.0, 2.5), "resolution": 16})
    assert edited.camera.distance == (2.0, 2.5) and edited.resolution == 16
    assert spec.camera.distance == (2.3, 3.2)
    with pytest.raises(WorkbenchError, match="camera.distance"):
        apply_overrides(spec, {"camera.distance": (3.0, 2.0)})
    with pytest.raises(WorkbenchError, match="no such field"):
        apply_overrides(spec, {"camera.zoom": (1, 2)})


def test_preview_matches_the_rendered_dataset(renderer, rendered_dir):
    manifest = json.loads((rendered_dir / "manifest.json").read_text())
    spec = parse_spec(manifest["spec"])
    sample = renderer.render(spec, manifest["seed"], 3)
    stored = open_dataset(rendered_dir)[3]
    for name in ("rgb", "depth", "seg", "inst"):
        np.testing.assert_array_equal(sample.arrays[name], stored[name])
    assert sample.meta["label"] == stored["meta"]["label"]
    views = sample_views(sample.arrays, sample.meta, size=64)
    assert set(views) == {"rgb", "depth", "segmentation", "instances", "boxes", "amodal"}
    for image in views.values():
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and image.std() > 0
    with pytest.raises(WorkbenchError, match="condition"):
        renderer.render(spec, 0, 0, "blizzard")


def test_depth_colours_leave_misses_black():
    depth = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)
    colours = colorize_depth(depth)
    assert (colours[0, 0] == 0).all() and (colours[1:, :] > 0).any(axis=-1).all()
    assert not np.array_equal(colours[0, 1], colours[1, 1])


def test_a_render_refuses_escapes_bad_counts_and_a_full_disk(tmp_path, monkeypatch):
    spec = _small()
    with pytest.raises(WorkbenchError, match="outside the data root"):
        start_render(tmp_path, spec, "../escape", num=1)
    for kwargs, message in [
        ({"num": 0}, "samples: must lie in"),
        ({"num": MAX_SAMPLES + 1}, "samples: must lie in"),
        ({"num": 1, "workers": MAX_WORKERS + 1}, "workers: must lie in"),
        ({"num": 1, "seed": -1}, "seed: must lie in"),
    ]:
        with pytest.raises(WorkbenchError, match=message):
            start_render(tmp_path, spec, "data", **kwargs)
    with pytest.raises(WorkbenchError, match=f"resolution: at most {MAX_RESOLUTION}"):
        start_render(tmp_path, spec.model_copy(update={"resolution": 1024}), "data", num=1)
    monkeypatch.setattr("shutil.disk_usage", lambda _p: SimpleNamespace(total=1, used=1, free=0))
    with pytest.raises(WorkbenchError, match="render into data: needs about"):
        start_render(tmp_path, spec, "data", num=10)
    assert not (tmp_path / "data").exists() and not JobRegistry(tmp_path).jobs()
    assert not list((tmp_path / ".workbench-app").glob("specs/*"))
    assert render_need(1000, 128, 2) > render_need(1000, 64, 2) > render_need(10, 64, 2)


SHADOW = "open(__file__ + '.imported', 'w').write('shadowed')\n"


def test_modules_in_the_data_root_shadow_nothing(tmp_path):
    for name in ("json.py", "random.py", "pickle.py"):
        (tmp_path / name).write_text(SHADOW)
    job = start_render(tmp_path, _small(), "data/d", num=4)
    preview = PreviewRenderer(tmp_path)
    try:
        sample = preview.render(_small(), 0, 1)
    finally:
        preview.close()
    registry = JobRegistry(tmp_path)
    _until(lambda: not registry.get(job.record.id).running)
    assert registry.get(job.record.id).status == "finished", job.record.tail()
    assert len(open_dataset(tmp_path / "data" / "d")) == 4 and job.progress() == 1.0
    assert sample.arrays["rgb"].shape == (16, 16, 3)
    assert not list(tmp_path.glob("*.imported"))


def _worker(tmp_path, body: str) -> list[str]:
    pids = str(tmp_path / "pids")
    code = f"import os, sys, time\nopen({pids!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
    return [sys.executable, "-P", "-c", code + body]


def test_a_slow_preview_is_stopped_and_its_worker_restarted(tmp_path):
    never = _worker(tmp_path, "sys.stdin.buffer.read(8)\ntime.sleep(600)")
    preview = PreviewRenderer(tmp_path, workers=1, timeout=1, command=never)
    for _ in range(2):
        with pytest.raises(WorkbenchError, match="took longer than 1 s and was stopped"):
            preview.render(_small())
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(set(pids)) == 2 and not any(psutil.pid_exists(p) for p in pids)
    assert preview.busy() == 0


def test_a_busy_renderer_answers_other_tabs_within_its_wait(tmp_path):
    release = tmp_path / "release"
    hold = _worker(
        tmp_path,
        f"sys.stdin.buffer.read(8)\nwhile not os.path.exists({str(release)!r}):\n"
        "    time.sleep(0.05)",
    )
    preview = PreviewRenderer(tmp_path, workers=1, wait=0.2, command=hold)
    outcome = {}

    def first_tab() -> None:
        try:
            preview.render(_small())
        except WorkbenchError as exc:
            outcome["first"] = str(exc)

    thread = threading.Thread(target=first_tab)
    thread.start()
    _until(lambda: (tmp_path / "pids").exists() and preview.busy() == 1)
    with pytest.raises(WorkbenchError, match="all 1 preview renderers are busy with other tabs"):
        preview.render(_small())
    release.touch()
    thread.join(60)
    assert "the preview renderer stopped" in outcome["first"] and preview.busy() == 0


def test_mesh_files_outside_the_root_are_refused(tmp_path, renderer):
    bundled = load_spec(SCENES_DIR / "tabletop.yaml")
    check_spec(tmp_path, bundled)  # the bundled example meshes ship with the package
    outside = tmp_path / "outside"
    root = tmp_path / "root"
    shutil.copytree(SCENES_DIR / "assets", outside)
    shutil.copytree(SCENES_DIR / "assets", root / "scenes" / "assets")
    text = (SCENES_DIR / "tabletop.yaml").read_text()
    (root / "scenes" / "inside.yaml").write_text(text)
    (root / "scenes" / "escape.yaml").write_text(text.replace("assets/", f"{outside}/"))
    check_spec(root, load_spec(root / "scenes" / "inside.yaml"))
    escape = load_spec(root / "scenes" / "escape.yaml")
    with pytest.raises(WorkbenchError, match="mug.obj: outside the data root"):
        check_spec(root, escape)
    with pytest.raises(WorkbenchError, match="outside the data root"):
        PreviewRenderer(root, command=["false"]).render(escape)
    with pytest.raises(WorkbenchError, match="outside the data root"):
        start_render(root, escape, "data", num=1)
    assert not JobRegistry(root).jobs()
