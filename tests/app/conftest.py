"""Fixtures of the app tests: a data root with rendered digits and a way to open the app on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.inspect.tiny_models import make_checkpoints, make_dense_report, make_report

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


@pytest.fixture(scope="session")
def models_root(tmp_path_factory, rendered_dir) -> Path:
    """A data root (shared, not to be changed) with tiny checkpoints in ``ckpt/``
    (classifier, vae, gan, refiner, dense), robustness reports of the classifier in ``report/``
    and of the dense model in ``dense_report/``, and the rendered digits in ``digits/``."""
    root = tmp_path_factory.mktemp("models_root")
    checkpoints = make_checkpoints(root / "ckpt")
    make_report(checkpoints["classifier"], root / "report")
    shutil.copytree(rendered_dir, root / "digits")
    make_dense_report(checkpoints["dense"], root / "digits", root / "dense_report")
    return root
