"""Jobs in a real headless Chromium: the Training page has no free-text field and refuses configs
that write outside the root, load a remote checkpoint or read outside the root, starting nothing;
two tabs cannot render into one folder (the second is refused, the first finishes intact); and a
render stops when the app stops."""

from __future__ import annotations

import psutil
import pytest
import yaml

from tests.app.server import chromium_context, free_port, start_app, stop_app
from tests.app.test_training_page import TINY
from tests.conftest import process_gone, wait_until
from workbench.data.reader import open_dataset
from workbench.inspect.jobs import JobRegistry

ERROR_BOX = '[data-testid="stAlert"]'  # error, warning and success boxes
PROGRESS = '[data-testid="stProgress"]'


@pytest.fixture
def chromium(tmp_path):
    """A Chromium context (one profile, so tabs share the token cookie) closed after the test."""
    with chromium_context(tmp_path / "profile") as browser:
        yield browser


def _server_commands(server) -> list[str]:
    family = psutil.Process(server.proc.pid).children(recursive=True)
    return [" ".join(p.cmdline()) for p in family if p.is_running()]


def test_training_page_refuses_escaping_configs_in_chromium(tmp_path, chromium):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "configs").mkdir(parents=True)
    bad = {
        "writes": ({"trainer": {"default_root_dir": str(outside)}}, "trainer.default_root_dir"),
        "remote": ({"ckpt_path": "http://127.0.0.1:9/evil.ckpt"}, "ckpt_path: URLs"),
        "reads": ({"data": {"init_args": {"sources": [{"path": "/etc"}]}}}, "sources[0].path"),
    }
    for name, (config, _key) in bad.items():
        (root / "configs" / f"{name}.yaml").write_text(yaml.safe_dump({**TINY, **config}))
    server = start_app(root, free_port())
    try:
        page = chromium.new_page()
        page.goto(server.url, timeout=120_000)
        page.get_by_role("link", name="Training").click(timeout=120_000)
        page.get_by_text("Start a run").wait_for(timeout=120_000)
        page.get_by_text("Keep running after the app stops").wait_for(timeout=60_000)
        assert page.locator('[data-testid="stTextInput"], [data-testid="stTextArea"]').count() == 0
        for name, (_config, key) in bad.items():
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Config").click()
            page.get_by_role("option", name=f"configs/{name}.yaml").click(timeout=60_000)
            page.get_by_role("button", name="Start fit").click(timeout=60_000)
            box = page.locator(ERROR_BOX).filter(has_text=f"configs/{name}.yaml:")
            box.wait_for(timeout=120_000)
            assert key in box.inner_text()
        assert "Traceback" not in page.inner_text("body")
        assert not any("workbench.cli fit" in c for c in _server_commands(server))
    finally:
        stop_app(server)
    assert not JobRegistry(root).jobs() and not outside.exists()


def _render(page, num: int | None = None, out: str | None = None) -> None:
    if out is not None:
        page.get_by_label("Output folder (under the data root)").fill(out)
        page.get_by_label("Output folder (under the data root)").press("Enter")
    if num is not None:
        page.get_by_label("Samples per condition").fill(str(num))
        page.get_by_label("Samples per condition").press("Enter")
    page.get_by_role("button", name="Render dataset").click(timeout=60_000)


def test_two_tabs_cannot_render_into_one_folder_in_chromium(tmp_path, chromium):
    root = tmp_path / "root"
    root.mkdir()
    server = start_app(root, free_port())
    registry = JobRegistry(root)
    try:
        first, second = chromium.new_page(), chromium.new_page()
        for tab in (first, second):
            tab.goto(server.url, timeout=120_000)
            tab.get_by_text("label:").first.wait_for(timeout=240_000)  # the preview is there
        _render(first, num=400)
        first.locator(PROGRESS).filter(has_text="/ 400 (running)").wait_for(timeout=120_000)
        (job,) = registry.jobs("render")
        _render(second)  # the same default folder, datasets/digits
        box = second.locator(ERROR_BOX).filter(has_text="still running there")
        box.wait_for(timeout=120_000)
        assert f"datasets/digits: render job {job.id} into datasets/digits" in box.inner_text()
        second.locator(PROGRESS).filter(has_text="/ 400 (").wait_for(timeout=60_000)  # attached
        first.locator(ERROR_BOX).filter(has_text="Done: datasets/digits").wait_for(timeout=400_000)
        assert [j.id for j in registry.jobs()] == [job.id]
        dataset = open_dataset(root / "datasets" / "digits")
        assert len(dataset) == 400 and not dataset.verify()

        _render(first, num=20_000, out="datasets/long")
        first.locator(PROGRESS).filter(has_text="/ 20000 (running)").wait_for(timeout=120_000)
        long = next(j for j in registry.jobs() if j.target == "datasets/long")
        supervisor = psutil.Process(long.pid)
        wait_until(lambda: supervisor.children())
        render = supervisor.children()[0].pid
    finally:
        stop_app(server)
    wait_until(lambda: not registry.get(long.id).running)
    assert registry.get(long.id).status == "stopped"
    assert registry.get(long.id).reason == "the app stopped"
    wait_until(lambda: process_gone(long.pid) and process_gone(render))
