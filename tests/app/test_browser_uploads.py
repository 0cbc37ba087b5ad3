"""Uploads to the Attack lab in a real headless Chromium: decompression bombs and a file that is
no image get error boxes, a file over the size limit is refused by the uploader, the server keeps
answering, and a real image is still attacked in the same session."""

from __future__ import annotations

import urllib.request

import numpy as np
import torch

from tests.app.server import chromium_context, free_port, start_app, stop_app
from tests.inspect.tiny_models import save_module
from tests.test_imageio import bomb_png, encode

ERROR_BOX = '[data-testid="stAlert"]'


def upload(page, name: str, data: bytes) -> None:
    """Puts a file into the page's file input, as choosing it in the file dialog would."""
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}]
    )


def test_attack_lab_upload_bomb_gets_an_error_box_in_chromium(tmp_path):
    from workbench.training.classifier import Classifier

    torch.manual_seed(0)
    classifier = Classifier(
        num_classes=10, in_channels=1, image_size=8, backbone="small_cnn",
        backbone_options={"width": 4, "depth": 1},
    )  # fmt: skip
    save_module(classifier, "classifier", tmp_path / "root" / "classifier.ckpt")
    app = start_app(tmp_path / "root", free_port())
    try:
        with chromium_context(tmp_path / "profile") as browser:
            page = browser.new_page()
            page.goto(app.url, timeout=120_000)
            page.get_by_role("link", name="Attack lab").click(timeout=120_000)
            page.get_by_text("upload", exact=True).click(timeout=120_000)
            page.locator('input[type="file"]').wait_for(state="attached", timeout=60_000)

            # a few kilobytes declaring 30000 x 30000 pixels (2.7 GB decoded)
            upload(page, "bomb.png", bomb_png(30000, 30000))
            box = page.locator(ERROR_BOX).filter(has_text="uploaded file bomb.png")
            box.wait_for(timeout=120_000)
            assert "too many pixels" in box.inner_text()
            # 5000 x 5000: below Pillow's own limit, refused by the workbench's
            upload(page, "big.png", bomb_png(5000, 5000))
            box = page.locator(ERROR_BOX).filter(has_text="uploaded file big.png")
            box.wait_for(timeout=120_000)
            assert "too many pixels (5000 x 5000 > 4,194,304 allowed)" in box.inner_text()
            upload(page, "notes.png", b"just text, renamed to .png\n")
            box = page.locator(ERROR_BOX).filter(has_text="uploaded file notes.png")
            box.wait_for(timeout=120_000)
            assert "not a readable PNG or JPEG image" in box.inner_text()
            primary = page.locator('[data-testid="stBaseButton-primary"]')
            assert primary.count() == 0  # no image, so no Attack button
            assert "Traceback" not in page.inner_text("body")
            # over the uploader's limit: the browser refuses it before sending
            upload(page, "huge.png", bytes(5 * 2**20))
            page.get_by_text("File must be 4.0MB or smaller").wait_for(timeout=60_000)

            # the server still answers, and the same session still attacks a real image
            with urllib.request.urlopen(f"http://127.0.0.1:{app.port}/_stcore/health") as r:
                assert r.read() == b"ok"
            ramp = np.tile(np.arange(8, dtype=np.uint8)[None] * 32, (8, 1))
            upload(page, "ramp.png", encode(ramp))
            primary.filter(has_text="Attack").click(timeout=120_000)
            page.get_by_text("perturbation (amplified)").wait_for(timeout=120_000)
            assert page.locator(ERROR_BOX).count() == 0
        assert app.proc.poll() is None, "the server died"
    finally:
        stop_app(app)
