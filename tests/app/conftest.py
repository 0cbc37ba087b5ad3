"""Fixtures of the app tests: a data root with rendered digits and a way to open the app on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app" / "main.py"


@pytest.fixture
def data_root(tmp_path, rendered_dir) -> Path:
    """A data root holding a copy of the session's rendered digits in ``digits/``."""
    shutil.copytree(rendered_dir, tmp_path / "digits")
    return tmp_path


@pytest.fixture
def open_page(monkeypatch):
    """Returns ``open_page(root, page)``: the app on data root ``root``, switched to ``page``
    (``pages/NAME.py``) and run once."""

    def open_(root: Path, page: str | None = None) -> AppTest:
        monkeypatch.setenv("WORKBENCH_DATA_ROOT", str(root))
        app = AppTest.from_file(str(APP), default_timeout=120).run()
        if page:
            app.switch_page(page).run()
        return app

    return open_
