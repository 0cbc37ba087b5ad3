"""Generate page: live preview of every view, spec edits, and a dataset render from the app."""

from __future__ import annotations

import json
import time

from workbench.data.reader import open_dataset


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
    ]
    app.selectbox(key="condition").select("fog").run()
    app.slider(key="bundled: digits:camera.distance").set_value((4.0, 5.0)).run()
    assert not app.exception and not app.error and len(app.image) == 5
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

    app.text_input(key="out").input("made/small")
    app.number_input(key="num").set_value(4)
    app.button(key="render_start").click().run()
    task = app.session_state["render"]
    _wait(lambda: task.job.returncode is not None)
    app.run()
    assert "Done" in _texts(app.success), task.job.tail()
    assert task.progress() == 1.0 and task.done() == task.total == 4
    assert len(open_dataset(tmp_path / "made" / "small")) == 4

    app.button(key="render_clear").click().run()
    app.text_input(key="out").input("made/big")
    app.number_input(key="num").set_value(1000)
    app.button(key="render_start").click().run()
    task = app.session_state["render"]
    _wait(lambda: task.done() > 0 or task.job.returncode is not None)
    app.button(key="render_cancel").click().run()  # shown since the start, while it runs
    assert task.job.status() == "stopped" and 0 < task.done() < 1000
    assert "resume" in _texts(app.warning) and not app.exception
    manifest = json.loads((tmp_path / "made" / "big" / "manifest.json").read_text())
    assert not manifest["complete"]  # finished shards stay; rendering again resumes
