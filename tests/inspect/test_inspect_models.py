"""Augmenters, the attack lab and robustness reports on tiny checkpoints and a real tiny report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.inspect.tiny_models import make_checkpoints, make_report
from workbench.errors import WorkbenchError
from workbench.inspect.attacklab import (
    attack_budget,
    attack_names,
    class_names,
    load_classifier,
    model_input,
    read_image,
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
    model = load_classifier(root, "ckpt/classifier.ckpt")
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
    with pytest.raises(WorkbenchError, match="not a readable image"):
        read_image(b"nothing", "x.png")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        load_classifier(root / "ckpt", "../eval/report.json")
    with pytest.raises(WorkbenchError, match="needs a classifier"):
        load_classifier(root, "ckpt/vae.ckpt")


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
