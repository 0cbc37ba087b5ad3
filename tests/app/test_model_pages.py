"""Augmenters, Attack lab and Robustness pages on tiny checkpoints and a real tiny report;
wrong, corrupt or outside files give error boxes, never an exception."""

from __future__ import annotations

import io
import shutil

import numpy as np
from PIL import Image

from tests.test_imageio import bomb_png, encode
from workbench.imageio import UPLOAD_MAX_BYTES, UPLOAD_MAX_MB
from workbench.inspect.attacklab import MAX_RESTARTS, MAX_STEPS


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_augmenters_sample_interpolate_and_refuse_bad_files(models_root, tmp_path, open_page):
    app = open_page(models_root, "pages/augmenters.py")
    app.selectbox(key="ckpt").select("ckpt/vae.ckpt").run()
    assert not app.exception and not app.error
    assert len(app.image) == 2  # the class grid and the interpolation
    app.selectbox(key="ckpt").select("ckpt/gan.ckpt").run()
    assert not app.exception and not app.error
    assert len(app.image) == 2  # the GAN interpolates too
    app.selectbox(key="ckpt").select("ckpt/refiner.ckpt").run()
    assert not app.exception and not app.error
    assert [c for i in app.image for c in i.captions] == ["rendered", "refined"]
    app.selectbox(key="ckpt").select("ckpt/diffusion.ckpt").run()
    assert not app.exception and not app.error, _texts(app.error)
    # the class grid, the denoising path, and a rendered digit before and after SDEdit
    assert len(app.image) == 4
    assert [c for i in app.image[2:] for c in i.captions] == ["rendered", "refined"]
    app.slider(key="ddim_steps").set_value(3)
    app.slider(key="guidance").set_value(0.0)
    app.slider(key="strength").set_value(0.5).run()
    assert not app.exception and not app.error and len(app.image) == 4
    app.selectbox(key="ckpt").select("ckpt/classifier.ckpt").run()
    assert "needs a vae, gan, diffusion or refiner checkpoint" in _texts(app.error)
    app.text_input(key="ckpt_typed").input("../../elsewhere.ckpt").run()
    assert not app.exception and "outside the data root" in _texts(app.error)

    (tmp_path / "bad.ckpt").write_bytes(b"PK\x03\x04 truncated")
    app = open_page(tmp_path, "pages/augmenters.py")
    assert not app.exception and "not a readable checkpoint" in _texts(app.error)


def test_attack_lab_shows_what_the_attack_did(models_root, open_page):
    app = open_page(models_root, "pages/attack.py")
    app.selectbox(key="ckpt").select("ckpt/classifier.ckpt").run()
    assert not app.exception and not app.error
    app.selectbox(key="attack").select("pgd")
    app.number_input(key="eps").set_value(0.1)
    app.number_input(key="steps").set_value(3)
    app.button(key="run_attack").click().run()
    assert not app.exception and not app.error
    captions = [c for image in app.image for c in image.captions]
    assert captions[1] == "perturbation (amplified)"
    assert captions[0].startswith("original:") and captions[2].startswith("adversarial:")
    metrics = {m.label: float(m.value) for m in app.metric}
    assert 0 < metrics["SSIM"] <= 1 and 0 < metrics["LINF"] <= 0.1 + 1e-6

    app.radio(key="source").set_value("upload").run()
    buffer = io.BytesIO()
    Image.fromarray(np.tile(np.arange(16, dtype=np.uint8)[None] * 16, (16, 1))).save(buffer, "PNG")
    app.file_uploader(key="upload").upload("ramp.png", buffer.getvalue(), "image/png").run()
    app.selectbox(key="attack").select("fgsm")
    app.button(key="run_attack").click().run()
    assert not app.exception and not app.error
    assert app.image[0].captions[0].endswith("(true 0)")
    app.file_uploader(key="upload").set_value(("junk.png", b"not an image", "image/png")).run()
    assert not app.exception
    assert "uploaded file junk.png: not a readable PNG or JPEG image" in _texts(app.error)


def test_attack_lab_refuses_bombs_oversize_uploads_and_budgets(models_root, open_page):
    app = open_page(models_root, "pages/attack.py")
    app.selectbox(key="ckpt").select("ckpt/classifier.ckpt").run()
    app.radio(key="source").set_value("upload").run()
    uploader = app.file_uploader(key="upload")
    assert uploader.proto.max_upload_size_mb == UPLOAD_MAX_MB
    assert sorted(uploader.allowed_type) == [".jpeg", ".jpg", ".png"]
    refused = {
        "bomb.png": (bomb_png(30000, 30000), "uploaded file bomb.png: too many pixels"),
        "big.png": (bomb_png(3000, 3000), "uploaded file big.png: too many pixels (3000 x 3000"),
        "huge.png": (bytes(UPLOAD_MAX_BYTES + 1), "uploaded file huge.png: 4,194,305 bytes is too"),
        "anim.png": (encode(np.zeros((8, 8, 3), np.uint8), "GIF"), "not a readable PNG or JPEG"),
    }
    for name, (data, message) in refused.items():
        app.file_uploader(key="upload").set_value((name, data, "image/png")).run()
        assert not app.exception and message in _texts(app.error), name
        assert "run_attack" not in [b.key for b in app.button]  # no image, no attack button
        assert "outcome" not in app.session_state

    # the widgets' bounds: a square budget of 5,000 queries, then pgd (at most 1,000 steps)
    app.file_uploader(key="upload").set_value(
        ("ok.png", encode(np.zeros((8, 8), np.uint8)), "image/png")
    ).run()
    assert not app.exception and not app.error
    app.selectbox(key="attack").select("square").run()
    app.number_input(key="steps").set_value(5000).run()
    assert not app.exception
    app.selectbox(key="attack").select("pgd").run()
    assert not app.exception and app.number_input(key="steps").max == MAX_STEPS
    assert app.number_input(key="restarts").max == MAX_RESTARTS


def test_robustness_page_shows_curves_tables_and_checks(models_root, tmp_path, open_page):
    app = open_page(models_root, "pages/robustness.py")
    app.selectbox(key="report").select("report").run()
    assert not app.exception and not app.error
    labels = [m.label for m in app.metric]
    assert labels[0] == "Clean accuracy" and "Honesty checks" in labels
    assert [c for i in app.image for c in i.captions] == [
        "accuracy against epsilon",
        "accuracy against corruption severity",
    ]
    assert len(app.dataframe) == 3  # checks, accuracy, corruptions

    shutil.copytree(models_root / "report", tmp_path / "report")
    (tmp_path / "report" / "report.json").write_text('{"clean_acc": 0.5')
    app = open_page(tmp_path, "pages/robustness.py")
    assert not app.exception and "unreadable report" in _texts(app.error)


def test_browse_shows_a_dense_prediction_beside_the_truth(models_root, open_page):
    app = open_page(models_root, "pages/browse.py")
    app.multiselect(key="datasets").set_value(["digits"]).run()
    app.selectbox(key="dense_ckpt").select("ckpt/dense.ckpt").run()
    assert not app.exception and not app.error
    captions = {c for image in app.image for c in image.captions}
    assert {
        "input",
        "predicted classes",
        "true classes",
        "predicted depth",
        "true depth",
    } <= captions
    assert {m.label for m in app.metric} >= {"miou", "pixel_acc", "absrel"}
    app.selectbox(key="dense_ckpt").select("ckpt/vae.ckpt").run()
    assert not app.exception and "needs a dense checkpoint" in _texts(app.error)


def test_attack_lab_attacks_a_dense_model_on_a_rendered_sample(models_root, open_page):
    app = open_page(models_root, "pages/attack.py")
    app.selectbox(key="ckpt").select("ckpt/dense.ckpt").run()
    assert not app.exception and not app.error
    app.selectbox(key="ds").select("digits")
    app.selectbox(key="dense_attack").select("apgd")
    app.number_input(key="steps").set_value(2)
    app.button(key="run_attack").click().run()
    assert not app.exception and not app.error
    captions = [c for image in app.image for c in image.captions]
    for caption in (
        "clean input",
        "perturbation (amplified)",
        "adversarial input",
        "clean classes",
        "attacked classes",
        "true classes",
    ):
        assert caption in captions
    assert {m.label for m in app.metric} == {
        "miou attacked",
        "pixel_acc attacked",
        "absrel attacked",
    }
    app.number_input(key="eps").set_value(0.0).run()
    app.button(key="run_attack").click().run()
    assert not app.exception and "eps: Input should be greater than 0" in _texts(app.error)


def test_robustness_page_shows_a_dense_report(models_root, open_page):
    app = open_page(models_root, "pages/robustness.py")
    app.selectbox(key="report").select("dense_report").run()
    assert not app.exception
    # an untrained model: a large radius has nothing left to break, and the page says so
    (failed,) = app.error
    assert failed.value.startswith("Failed checks: large radius breaks the model (miou)")
    assert [c for i in app.image for c in i.captions] == [
        "miou against epsilon",
        "miou against corruption severity",
        "absrel against epsilon",
        "absrel against corruption severity",
    ]
    assert "Honesty checks" in [m.label for m in app.metric]
    assert len(app.dataframe) == 3  # checks, sweep, corruptions
