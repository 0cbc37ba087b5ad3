"""Browse page: grid, filters, sample view, statistics and paired sets; corrupt files and paths
outside the data root give error boxes, never an exception."""

from __future__ import annotations

import json
import shutil

from tests.conftest import RENDERED_DIGITS


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_grid_filters_sample_and_statistics(data_root, open_page):
    pairs = data_root / "pairs"
    for name in ("clone", "night"):
        shutil.copytree(data_root / "digits", pairs / name)
    (pairs / "conditions.json").write_text(json.dumps({"conditions": ["clone", "night"]}))
    app = open_page(data_root, "pages/browse.py")
    app.multiselect(key="datasets").set_value(["digits"]).run()
    assert not app.exception and not app.error
    captions = [c for image in app.image for c in image.captions]
    assert len([c for c in captions if " · d=" in c]) == RENDERED_DIGITS  # the grid
    assert {"rgb", "depth", "segmentation", "instances", "boxes", "amodal"} <= set(captions)
    assert {"clone", "night"} <= set(captions)  # paired conditions side by side
    assert app.metric[0].value == str(RENDERED_DIGITS)
    first = app.multiselect(key="f_class").options[0]
    app.multiselect(key="f_class").set_value([first]).run()
    shown = [c for image in app.image for c in image.captions if " · d=" in c]
    assert shown and all(c.startswith(f"{first} ·") for c in shown)
    assert f"{len(shown)} of {RENDERED_DIGITS} samples" in _texts(app.caption)


def test_escapes_and_corrupt_files_show_error_boxes(data_root, open_page):
    shutil.copytree(data_root / "digits", data_root / "broken")
    (data_root / "broken" / "manifest.json").write_text("{oops")
    (data_root / "digits" / "shards" / "000000" / "000001.rgb.png").write_bytes(b"not a png")
    app = open_page(data_root, "pages/browse.py")
    app.multiselect(key="datasets").set_value(["broken", "digits"]).run()
    assert not app.exception
    errors = _texts(app.error)
    assert "broken: unreadable manifest.json" in errors
    assert "sample 1 is unreadable" in errors
    app.text_input(key="typed").input("../../").run()
    assert not app.exception
    assert "outside the data root" in _texts(app.error)
