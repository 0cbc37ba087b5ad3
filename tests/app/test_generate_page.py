"""Generate page: live preview of every view, spec edits, and a dataset render from the app that
every tab sees and no second tab can start again into the same folder."""

from __future__ import annotations

import json
import time

from workbench.data.reader import open_dataset
from workbench.inspect.jobs import JobRegistry
from workbench.inspect.preview import MAX_SAMPLES, MAX_WORKERS, render_jobs


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_preview_shows_every_view_and_follows_edits(tmp_path, open_page):
    app = open_page(tmp_path)
    assert not app.exception and not app.error
    assert [i.captions[0] for i in app.image] == [
        "rgb",
        "depth",
        "segmentation",
        "instances",
        "boxes",
        "amodal",
    ]
    app.selectbox(key="condition").select("fog").run()
    app.slider(key="bundled: digits:camera.distance").set_value((4.0, 5.0)).run()
    assert not app.exception and not app.error and len(app.image) == 6
    assert "difficulty" in _texts(app.caption)


def test_a_broken_spec_under_the_root_is_an_error_box(tmp_path, open_page):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "bad.yaml").write_text("kind: digits\ncamera: {distance: [3, 1]}\n")
    app = open_page(tmp_path)
    app.selectbox(key="spec").select("scenes/bad.yaml").run()
    assert not app.exception and not app.image
    assert "camera.distance" in _texts(app.error)


def _wait(until, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while not until() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_render_refuses_escapes_finishes_and_cancels(tmp_path, open_page):
    app = open_page(tmp_path)
    app.select_slider(key="bundled: digits:resolution").set_value(16)
    app.text_input(key="out").input("../escape")
    app.button(key="render_start").click().run()
    assert "outside the data root" in _texts(app.error)
    assert not (tmp_path.parent / "escape").exists()
    assert app.number_input(key="num").max == MAX_SAMPLES
    assert app.number_input(key="workers").max == MAX_WORKERS

    registry = JobRegistry(tmp_path)
    app.text_input(key="out").input("made/small")
    app.number_input(key="num").set_value(4)
    app.button(key="render_start").click().run()
    (job,) = registry.jobs("render")
    _wait(lambda: not registry.get(job.id).running)
    app.run()
    assert "Done" in _texts(app.success), job.tail()
    assert len(open_dataset(tmp_path / "made" / "small")) == 4

    app.button(key=f"clear_{job.id}").click().run()
    assert not registry.jobs() and not app.success
    app.text_input(key="out").input("made/big")
    app.number_input(key="num").set_value(1000)
    app.button(key="render_start").click().run()
    (job,) = registry.jobs("render")
    task = render_jobs(tmp_path)[0]
    _wait(lambda: task.done() > 0 or not registry.get(job.id).running)

    other_tab = open_page(tmp_path)  # a second tab (or a reload): it shows the running render
    assert f"/ {task.total} (running)" in " ".join(p.proto.text for p in other_tab.get("progress"))
    other_tab.select_slider(key="bundled: digits:resolution").set_value(16)
    other_tab.text_input(key="out").input("made/big")
    other_tab.button(key="render_start").click().run()
    assert f"made/big: render job {job.id} into made/big" in _texts(other_tab.error)
    assert [j.id for j in registry.jobs()] == [job.id]  # nothing else started

    other_tab.button(key=f"cancel_{job.id}").click().run()  # any tab may cancel it
    assert registry.get(job.id).status == "stopped" and 0 < task.done() < 1000
    app.run()
    assert "resume" in _texts(app.warning) and not app.exception
    manifest = json.loads((tmp_path / "made" / "big" / "manifest.json").read_text())
    assert not manifest["complete"]  # finished shards stay; rendering again resumes
