"""Training page: metric curves of a logged run, and a real ``workbench fit`` started from the
app's typed fields (no free text), followed from any tab while the app keeps answering, then
listed as a run; configs that escape the data root are error boxes and start nothing."""

from __future__ import annotations

import time

import yaml

from workbench.inspect.jobs import JobRegistry

TINY = {
    "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "limit_train_batches": 2,
                "limit_val_batches": 1, "limit_test_batches": 1, "enable_progress_bar": False},
    "model": {"class_path": "workbench.training.classifier.Classifier",
              "init_args": {"backbone": "small_cnn", "backbone_options": {"width": 4, "depth": 1}}},
    "data": {"class_path": "workbench.data.datamodule.MixedDataModule",
             "init_args": {"image_size": 8, "channels": 1, "batch_size": 16,
                           "sources": [{"kind": "digits", "name": "natural"}]}},
}  # fmt: skip


SHADOW = "open(__file__ + '.imported', 'w').write('shadowed')\n"


def _markdown(app) -> str:
    return " ".join(m.value for m in app.markdown)


def test_start_follow_and_plot_a_run(tmp_path, open_page):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    for name in ("json.py", "random.py"):  # a job must not import these
        (tmp_path / name).write_text(SHADOW)
    app = open_page(tmp_path, "pages/training.py")
    assert not app.exception and not app.error
    assert not app.text_input and not app.text_area  # no free text reaches the command line
    app.number_input(key="max_epochs").set_value(1)
    app.number_input(key="fit_seed").set_value(3)
    app.button(key="fit_start").click().run()
    registry = JobRegistry(tmp_path)
    (job,) = registry.jobs("fit")
    assert job.command[job.command.index("--trainer.max_epochs") + 1] == "1"
    assert job.command[job.command.index("--seed_everything") + 1] == "3"
    assert not app.exception and "running" in _markdown(app)
    reloaded = open_page(tmp_path, "pages/training.py")  # a reload or another tab re-attaches
    assert "`configs/tiny.yaml` into `runs/tiny`: **" in _markdown(reloaded)
    deadline = time.monotonic() + 400
    while registry.get(job.id).running and time.monotonic() < deadline:
        app.run()  # the app answers while the fit runs
        assert not app.exception
        time.sleep(1)
    assert registry.get(job.id).status == "finished", job.tail()
    app.run()
    assert "finished" in _markdown(app)
    assert app.selectbox(key="run").value == "runs/tiny/version_0"
    assert "val/loss" in app.multiselect(key="metrics").options
    assert app.get("arrow_vega_lite_chart") or app.get("vega_lite_chart")
    assert not app.exception and not app.error
    assert not list(tmp_path.glob("*.imported"))


BAD = {
    "writes.yaml": ({"trainer": {"default_root_dir": "/tmp/x"}}, "trainer.default_root_dir"),
    "remote.yaml": ({"ckpt_path": "http://127.0.0.1:9/x.ckpt"}, "ckpt_path: URLs"),
    "reads.yaml": ({"data": {"init_args": {"sources": [{"path": "/etc"}]}}}, "data.init_args"),
}


def test_configs_that_escape_are_error_boxes_and_start_nothing(tmp_path, open_page):
    (tmp_path / "configs").mkdir()
    for name, (config, _key) in BAD.items():
        (tmp_path / "configs" / name).write_text(yaml.safe_dump({**TINY, **config}))
    app = open_page(tmp_path, "pages/training.py")
    for name, (_config, key) in BAD.items():
        app.selectbox(key="config").select(f"configs/{name}").run()
        app.button(key="fit_start").click().run()
        assert not app.exception and f"configs/{name}: {key}" in " ".join(
            e.value for e in app.error
        )
    assert not JobRegistry(tmp_path).jobs()


def test_sweeps_are_listed_with_table_best_trial_and_plot(tmp_path, open_page):
    from tests.inspect.test_inspect_sweeps import make_sweep

    make_sweep(tmp_path / "sweeps" / "digits")
    app = open_page(tmp_path, "pages/training.py")
    assert not app.exception and not app.error
    assert app.selectbox(key="sweep").value == "sweeps/digits"
    assert "Best trial **0**: val/acc/natural 0.5000 (validation)" in _markdown(app)
    assert [c for image in app.image for c in image.captions] == ["sweeps/digits/tune.png"]
