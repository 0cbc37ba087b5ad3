"""Training page: metric curves of a logged run, and a real ``workbench fit`` started from the
app, followed while the app keeps answering, then listed as a run."""

from __future__ import annotations

import time

import yaml

TINY = {
    "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "limit_train_batches": 2,
                "limit_val_batches": 1, "limit_test_batches": 1, "enable_progress_bar": False},
    "model": {"class_path": "workbench.models.classifier.Classifier",
              "init_args": {"backbone": "small_cnn", "backbone_options": {"width": 4, "depth": 1}}},
    "data": {"class_path": "workbench.data.datamodule.MixedDataModule",
             "init_args": {"image_size": 8, "channels": 1, "batch_size": 16,
                           "sources": [{"kind": "digits", "name": "natural"}]}},
}  # fmt: skip


def test_start_follow_and_plot_a_run(tmp_path, open_page):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    app = open_page(tmp_path, "pages/training.py")
    assert not app.exception and not app.error
    app.button(key="fit_start").click().run()
    job = app.session_state["fit"]
    assert not app.exception and "running" in " ".join(m.value for m in app.markdown)
    deadline = time.monotonic() + 400
    while job.returncode is None and time.monotonic() < deadline:
        app.run()  # the app answers while the fit runs
        assert not app.exception
        time.sleep(1)
    assert job.status() == "finished", job.tail()
    app.run()
    assert "finished" in " ".join(m.value for m in app.markdown)
    assert app.selectbox(key="run").value == "runs/tiny/version_0"
    assert "val/loss" in app.multiselect(key="metrics").options
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    assert not app.exception and not app.error
