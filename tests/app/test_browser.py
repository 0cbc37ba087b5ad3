"""End to end in a real headless Chromium (Debian's, driven by Playwright; nothing downloaded):
the app loads, the Generate page makes a preview, and the screenshot shows it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.app.server import chromium_context, free_port, start_app, stop_app


def test_generate_page_makes_a_preview_in_chromium(tmp_path):
    port = free_port()
    (tmp_path / "root").mkdir()
    app = start_app(tmp_path / "root", port)
    try:
        with chromium_context(tmp_path / "profile") as browser:
            page = browser.new_page()
            page.goto(app.url, timeout=120_000)
            page.get_by_text("Generate").first.wait_for(timeout=120_000)
            images = page.locator('[data-testid="stImage"] img')
            images.nth(4).wait_for(timeout=180_000)  # rgb, depth, segmentation, ids, boxes
            page.get_by_text("label:").first.wait_for(timeout=60_000)
            shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
            preview = np.asarray(Image.open(io.BytesIO(images.nth(0).screenshot())).convert("RGB"))
    finally:
        stop_app(app)
    assert shot.std() > 10, "the page screenshot is blank"
    background = np.median(shot.reshape(-1, 3), axis=0)
    assert (np.abs(shot.astype(int) - background).sum(-1) > 30).mean() > 0.05
    assert preview.shape[0] > 50 and preview.std() > 5, "the preview image is blank"
