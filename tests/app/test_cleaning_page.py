"""Cleaning page: a cleaning run's top suspects as a grid with their images, a keep / exclude
decision per item saved to ``exclude.json`` (read back by sources), and source paths that leave
the data root refused."""

from __future__ import annotations

import json

from workbench.data.datamodule import MixedDataModule
from workbench.inspect.cleaning import read_cleaning, suspect_images

FLAGGED = [40, 3, 17, 250, 9, 1000, 12]


def write_cleaning(folder, source=None):
    """A finished cleaning folder as ``workbench clean`` writes it (the page is a view of it)."""
    folder.mkdir(parents=True)
    source = source or {"kind": "digits", "name": "natural", "path": None}
    config = {"data": {"init_args": {"sources": [source]}}}
    (folder / "clean.json").write_text(json.dumps({"config": config, "folds": 2}))
    rows = ["rank,source,item,given,predicted,score"]
    rows += [f"{r},natural,{i},3,8,{1 - r / 100:.3f}" for r, i in enumerate(FLAGGED, 1)]
    (folder / "suspects.csv").write_text("\n".join(rows) + "\n")
    exclude = {"flagged": {"natural": FLAGGED}, "reviewed": {}, "items": {"natural": FLAGGED}}
    (folder / "exclude.json").write_text(json.dumps(exclude))
    report = {"method": "confident", "folds": 2, "members": 1, "items": 1259, "flagged": 7,
              "held_out_accuracy": 0.8, "noise": None}  # fmt: skip
    (folder / "report.json").write_text(json.dumps(report))


def test_review_suspects_and_save_the_decisions(tmp_path, open_page):
    write_cleaning(tmp_path / "clean")
    app = open_page(tmp_path, "pages/cleaning.py")
    assert not app.exception and not app.error
    assert "**7** of 1259 training items flagged by `confident`" in app.markdown[0].value
    assert len(app.image) == 7 and len(app.radio) == 7
    assert app.image[0].captions[0] == "#1 given 3, predicted 8 (0.990)"
    assert all(r.value == "exclude" for r in app.radio)
    app.radio(key="decision_natural/40").set_value("keep").run()
    app.button(key="clean_save").click().run()
    assert not app.exception and "6 natural items left out" in app.success[0].value
    exclude = json.loads((tmp_path / "clean" / "exclude.json").read_text())
    assert exclude["reviewed"]["natural/40"] == "keep" and 40 not in exclude["items"]["natural"]
    data = MixedDataModule([{"kind": "digits", "name": "natural",
                             "exclude": str(tmp_path / "clean" / "exclude.json")}], image_size=8)
    data.setup("fit")
    assert len(data.datasets["train"]) == 1259 - 6
    reopened = open_page(tmp_path, "pages/cleaning.py")  # the decision is shown on a reload
    assert reopened.radio(key="decision_natural/40").value == "keep"


def test_the_images_are_the_items_of_the_source(tmp_path):
    write_cleaning(tmp_path / "clean")
    suspects = read_cleaning(tmp_path, "clean").suspects
    images = suspect_images(tmp_path, "clean", suspects[:2])
    data = MixedDataModule([{"kind": "digits", "name": "natural"}], image_size=8)
    pool = data._splits["train"][0][1]
    for suspect, image in zip(suspects[:2], images, strict=True):
        assert (image == pool[suspect.item]["image"]).all()


def test_a_source_outside_the_data_root_is_an_error_box(tmp_path, open_page):
    write_cleaning(tmp_path / "clean", {"kind": "rendered", "name": "natural", "path": "/etc"})
    app = open_page(tmp_path, "pages/cleaning.py")
    assert not app.exception
    assert "/etc: outside the data root" in app.error[0].value
