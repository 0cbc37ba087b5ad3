"""Augmenters, the attack lab and robustness reports on tiny checkpoints and a real tiny report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.inspect.tiny_models import make_checkpoints, make_report
from tests.test_imageio import bomb_png, encode
from workbench.adversarial import attacks
from workbench.errors import WorkbenchError
from workbench.imageio import UPLOAD_MAX_BYTES
from workbench.inspect.attacklab import (
    MAX_QUERIES,
    MAX_STEPS,
    attack_budget,
    attack_names,
    attack_options,
    attack_restarts,
    class_names,
    is_dense,
    load_attack_target,
    model_input,
    read_upload,
    run_attack,
)
from workbench.inspect.augmenters import (
    interpolation,
    kind_of,
    load_augmenter,
    refine_image,
    sample_grid,
)
from workbench.inspect.reports import (
    accuracy_rows,
    check_rows,
    corruption_rows,
    find_reports,
    read_report,
    report_plots,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    checkpoints = make_checkpoints(folder / "ckpt")
    make_report(checkpoints["classifier"], folder / "eval")
    return folder


def test_attack_lab_attacks_within_the_budget(root):
    model = load_attack_target(root, "ckpt/classifier.ckpt")
    assert not is_dense(model) and is_dense(load_attack_target(root, "ckpt/dense.ckpt"))
    assert class_names(model) == [str(i) for i in range(10)]
    assert "cw" in attack_names("l2") and "cw" not in attack_names("linf")  # cw is L2 only
    assert attack_budget("square") == ("queries", 1000) and attack_budget("fgsm") is None
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = model_input(model, rgb)
    assert tuple(x.shape) == (1, 1, 8, 8) and 0 <= float(x.min()) <= float(x.max()) <= 1
    outcome = run_attack(model, x, 3, "pgd", "linf", 0.05, steps=3)
    assert outcome.stats["linf"] <= 0.05 + 1e-6 and 0 < outcome.stats["ssim"] <= 1
    assert np.isclose(outcome.clean_probs.sum(), 1) and np.isclose(
        outcome.adversarial_probs.sum(), 1
    )
    assert outcome.perturbation.min() >= 0 and outcome.perturbation.max() <= 1
    assert np.abs(outcome.adversarial - outcome.clean).max() <= 0.05 + 1e-6
    with pytest.raises(WorkbenchError, match="label"):
        run_attack(model, x, 10, "fgsm", "linf", 0.05)
    with pytest.raises(WorkbenchError, match="eps"):
        run_attack(model, x, 1, "fgsm", "linf", 2.0)
    with pytest.raises(WorkbenchError, match="outside the data root"):
        load_attack_target(root / "ckpt", "../eval/report.json")
    with pytest.raises(WorkbenchError, match="needs a classifier or dense checkpoint"):
        load_attack_target(root, "ckpt/vae.ckpt")


def test_attack_lab_bounds_every_option_before_attacking(root, monkeypatch):
    model = load_attack_target(root, "ckpt/classifier.ckpt")
    x = model_input(model, np.zeros((8, 8), np.uint8))
    built = []
    real = attacks.build_attack
    monkeypatch.setattr(attacks, "build_attack", lambda *a, **k: built.append(k) or real(*a, **k))
    refused = {
        "steps: at most 1,000 steps for pgd, got 1,000,000": {"steps": 10**6},
        "restarts: Input should be less than or equal to 5": {"restarts": 50},
        "eps: Input should be a finite number": {"eps": float("nan")},
        "eps: Input should be greater than 0": {"eps": -1.0},
        "eps: Input should be less than or equal to 100": {"eps": 1e9},
        "seed: Input should be greater than or equal to 0": {"seed": -1},
        "norm: Input should be 'linf' or 'l2'": {"norm": "l1"},
        "attack: unknown attack 'rm -rf'": {"attack": "rm -rf"},
    }
    for message, change in refused.items():
        request = {"attack": "pgd", "norm": "linf", "eps": 0.05, "steps": 2, **change}
        with pytest.raises(WorkbenchError, match=f"^{re.escape(message)}"):
            run_attack(model, x, 1, **request)
    with pytest.raises(WorkbenchError, match="^steps: at most 10,000 queries for square"):
        run_attack(model, x, 1, "square", "linf", 0.05, steps=MAX_QUERIES + 1)
    with pytest.raises(WorkbenchError, match="^steps: fgsm takes no steps or queries"):
        run_attack(model, x, 1, "fgsm", "linf", 0.05, steps=5)
    with pytest.raises(WorkbenchError, match="^restarts: mifgsm takes no restarts"):
        run_attack(model, x, 1, "mifgsm", "linf", 0.05, restarts=2)
    with pytest.raises(WorkbenchError, match="^norm: cw does not support linf; it supports l2"):
        run_attack(model, x, 1, "cw", "linf", 0.05)
    assert built == []  # nothing was attacked
    outcome = run_attack(model, x, 1, "pgd", "linf", 0.05, steps=MAX_STEPS // 500, restarts=2)
    assert built == [{"seed": 0, "steps": 2, "restarts": 2}]
    assert outcome.stats["linf"] <= 0.05 + 1e-6
    assert attack_restarts("pgd") == 1 and attack_restarts("mifgsm") is None
    with pytest.raises(WorkbenchError, match="^extra: not an option; allowed: attack, norm"):
        attack_options(attack="pgd", norm="linf", eps=0.1, extra=1)


def test_attack_lab_uploads_only_small_png_or_jpeg():
    rgb = np.random.default_rng(0).integers(0, 256, (12, 10, 3), np.uint8)
    np.testing.assert_allclose(read_upload(encode(rgb), "a.png"), rgb / 255.0, atol=1e-6)
    assert read_upload(encode(rgb, "JPEG"), "photo.jpg").shape == (12, 10, 3)
    grey = read_upload(encode(rgb[..., 0]), "grey.png")
    assert grey.shape == (12, 10, 3) and grey.dtype == np.float32
    refused = {
        "uploaded file x.png: not a readable PNG or JPEG image": b"nothing",
        "uploaded file x.png: too many pixels (more than Pillow's": bomb_png(30000, 30000),
        "uploaded file x.png: too many pixels (3000 x 3000 > 4,194,304": bomb_png(3000, 3000),
        "uploaded file x.png: truncated or corrupt PNG": encode(rgb)[:60],
        "uploaded file x.png: not a readable PNG or JPEG image (judged": encode(rgb, "GIF"),
        f"uploaded file x.png: {UPLOAD_MAX_BYTES + 1:,} bytes is too large": bytes(
            UPLOAD_MAX_BYTES + 1
        ),
    }
    for message, data in refused.items():
        with pytest.raises(WorkbenchError, match=f"^{re.escape(message)}"):
            read_upload(data, "x.png")


def test_augmenters_sample_interpolate_and_refine(root):
    vae, gan = load_augmenter(root, "ckpt/vae.ckpt"), load_augmenter(root, "ckpt/gan.ckpt")
    assert (kind_of(vae), kind_of(gan)) == ("vae", "gan")
    assert isinstance(sample_grid(gan, 2, seed=1), Figure)
    assert isinstance(interpolation(vae, 1, steps=4), Figure)
    assert isinstance(interpolation(gan, 1, steps=4), Figure)
    refiner = load_augmenter(root, "ckpt/refiner.ckpt")
    with pytest.raises(WorkbenchError, match="refiner checkpoint offers no latent interpolation"):
        interpolation(refiner, 0)
    with pytest.raises(WorkbenchError, match="samples per class"):
        sample_grid(vae, 0)
    rgb = np.full((32, 32, 3), (200, 100, 50), np.uint8)
    refined = refine_image(refiner, rgb)
    assert refined.shape == (8, 8, 3)
    assert (refined[..., 0] == refined[..., 2]).all()  # grey refiner: grey RGB
    luminance = 0.299 * 200 + 0.587 * 100 + 0.114 * 50  # identity at initialisation
    assert np.abs(refined.astype(float) - luminance).max() <= 2


def test_reports_are_read_into_tables_and_plots(root):
    assert find_reports(root) == ["eval"]
    report = read_report(root, "eval")
    rows = accuracy_rows(report)
    assert [r["attack"] for r in rows] == ["clean", "fgsm", "worst case"]
    assert set(rows[0]) == {"attack", "eps 0.05", "eps 0.1"}
    assert rows[2]["eps 0.1"] <= rows[0]["eps 0.1"]
    assert [r["corruption"] for r in corruption_rows(report)] == ["gaussian_noise"]
    assert all(r["status"] in ("PASS", "FAIL", "SKIP") for r in check_rows(report))
    plots = report_plots(report)
    assert len(plots) == 2 and all(png.startswith(b"\x89PNG") for png in plots.values())
    (root / "partial").mkdir()
    (root / "partial" / "report.json").write_text(json.dumps({"clean_acc": 0.5}))
    with pytest.raises(WorkbenchError, match="not a robustness report"):
        read_report(root, "partial")
    with pytest.raises(WorkbenchError, match="no report here"):
        read_report(root, "ckpt")


def test_a_dense_model_on_a_rendered_sample_and_under_attack(root, rendered_dir):
    from workbench.data import open_dataset
    from workbench.inspect.datasets import load_sample
    from workbench.inspect.dense import dense_prediction, load_dense, run_dense_attack

    model = load_dense(root, "ckpt/dense.ckpt")
    dataset = open_dataset(rendered_dir)
    sample = load_sample(dataset, 0)
    views, scores = dense_prediction(model, sample, dataset.classes)
    assert list(views) == [
        "input", "predicted classes", "predicted depth", "true classes", "true depth"]  # fmt: skip
    assert all(v.dtype == np.uint8 and v.ndim == 3 and v.shape[2] == 3 for v in views.values())
    assert 0 <= scores["miou"] <= 1 and 0 <= scores["pixel_acc"] <= 1 and scores["absrel"] >= 0
    outcome = run_dense_attack(model, sample, dataset.classes, attack="pgd", eps=0.03, steps=2)
    assert {"clean input", "adversarial input", "attacked classes", "true depth"} <= set(
        outcome.views)  # fmt: skip
    assert set(outcome.clean) == set(outcome.attacked) == {"miou", "pixel_acc", "absrel"}
    with pytest.raises(WorkbenchError, match=r"classes \['a', 'b'\] differ from the model's"):
        dense_prediction(model, sample, ["a", "b"])
    with pytest.raises(WorkbenchError, match="eps"):
        run_dense_attack(model, sample, dataset.classes, attack="pgd", eps=2.0)
    with pytest.raises(WorkbenchError, match="needs a dense checkpoint"):
        load_dense(root, "ckpt/classifier.ckpt")
