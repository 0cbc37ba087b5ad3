"""Dense robustness: PGD and APGD on the per-pixel loss (untargeted, targeted over a region,
depth), their boundary checks, and ``workbench robustness`` on a dense checkpoint end to end:
report sections, honesty checks, resume and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import dense_squares, run_cli, street_config
from workbench.adversarial.dense import dense_attack
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError
from workbench.models.dense_metrics import SegmentationMetrics, confusions
from workbench.training.dense import DenseModule


@pytest.fixture(scope="module")
def squares_model() -> DenseModule:
    """A U-Net that segments the squares and predicts their depth well."""
    torch.manual_seed(0)
    model = DenseModule(
        num_classes=2,
        in_channels=3,
        image_size=16,
        class_names=["road", "car"],
        task="both",
        backbone="unet",
        backbone_options={"width": 8, "depth": 2},
        overlays=0,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    train = dense_squares(32, 0)
    for _ in range(80):
        loss = model.losses(model(train["image"]), train)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _loss(attack, x, labels, target=None):
    with torch.no_grad():
        return attack.objective(attack.logits(x, labels), labels, target)


@pytest.mark.parametrize("name", ["pgd", "apgd"])
@pytest.mark.parametrize("head", ["seg", "depth"])
def test_untargeted_attacks_raise_the_per_pixel_loss_inside_the_ball(squares_model, name, head):
    batch = dense_squares(8, 1)
    labels = batch[head]
    attack = dense_attack(name, squares_model, ThreatModel("linf", 8 / 255), head, steps=10)
    x_adv = attack(batch["image"], labels)
    assert (x_adv - batch["image"]).abs().max() <= 8 / 255 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (_loss(attack, x_adv, labels) > _loss(attack, batch["image"], labels)).all()
    assert squares_model.training is False  # the caller's mode came back


def test_a_targeted_attack_turns_the_region_into_the_target_class(squares_model):
    batch = dense_squares(8, 2)
    seg = batch["seg"]
    target = torch.where(seg == 2, torch.ones_like(seg), -1)  # squares (id 2) to road (id 1)
    attack = dense_attack(
        "apgd", squares_model, ThreatModel("linf", 16 / 255), "seg", targeted=True, steps=20
    )
    x_adv = attack(batch["image"], seg, target)
    with torch.no_grad():
        before = squares_model(batch["image"])["seg"].argmax(1)
        after = squares_model(x_adv)["seg"].argmax(1)
    region = seg == 2
    assert (before[region] == 1).float().mean() < 0.2
    assert (after[region] == 1).float().mean() > 0.5


def test_dense_attacks_refuse_bad_labels_and_targets(squares_model):
    batch = dense_squares(2, 0)
    threat = ThreatModel("linf", 0.03)
    with pytest.raises(WorkbenchError, match=r"y: need one label map per image, \(2, 16, 16\)"):
        dense_attack("pgd", squares_model, threat)(batch["image"], batch["seg"][:, 0])
    with pytest.raises(WorkbenchError, match="target: a targeted attack needs a target map"):
        dense_attack("pgd", squares_model, threat, targeted=True)(batch["image"], batch["seg"])
    with pytest.raises(WorkbenchError, match="only segmentation attacks take a target map"):
        dense_attack("pgd", squares_model, threat, "depth", targeted=True)(
            batch["image"], batch["depth"], batch["seg"]
        )
    with pytest.raises(WorkbenchError, match="unknown dense attack 'fgsm'; known: apgd, pgd"):
        dense_attack("fgsm", squares_model, threat)


def test_per_image_confusions_pool_to_the_metric():
    generator = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (3, 8, 8), generator=generator)
    true = torch.randint(-1, 4, (3, 8, 8), generator=generator)
    metric = SegmentationMetrics(4)
    metric.update(pred, true)
    pooled = confusions(pred, true, 4).sum(0)
    assert torch.equal(pooled, metric.confusion.compute())


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory, rendered_streets) -> dict[str, Path]:
    """A segmentation checkpoint trained for one epoch on the rendered streets (32 px); their
    paired test renders (clone, fog)."""
    root = tmp_path_factory.mktemp("dense_robustness")
    config = street_config(root, rendered_streets, "segmentation_street.yaml")
    run_cli("fit", "-c", str(config), "--trainer.max_epochs", "1")
    return {
        "ckpt": root / "runs" / "segmentation_street" / "checkpoints" / "last.ckpt",
        "test": rendered_streets / "test",
    }


QUICK = ("--budget", "quick", "--n", "4", "--steps", "2", "--quiet")


def test_robustness_of_a_dense_checkpoint_writes_every_section_and_resumes(tmp_path, dense_run):
    out = tmp_path / "report"
    args = (
        "robustness",
        "--ckpt",
        str(dense_run["ckpt"]),
        "--data",
        str(dense_run["test"]),
        "--out",
        str(out),
        *QUICK,
        "--corruptions",
        "gaussian_noise,fog_3d",
        "--target-class",
        "road",
        "--target-region",
        "car",
    )
    done = run_cli(*args, timeout=600)
    assert done.stdout.strip().endswith("report.html")
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "dense" and report["task"] == "segmentation" and report["n"] == 4
    assert report["classes"][0] == "background" and "car" in report["classes"]
    assert list(report["sweep"]["seg"]) == ["apgd", "pgd"]
    eps = [f"{e:.6g}" for e in report["eps"]]
    for attack in ("apgd", "pgd"):
        assert list(report["sweep"]["seg"][attack]) == eps
    for e in eps:  # the per-image worst case is no better than either attack
        worst = report["worst_case"]["seg"][e]["miou"]
        assert worst <= min(report["sweep"]["seg"][a][e]["miou"] for a in ("apgd", "pgd")) + 1e-6
    assert [c["name"] for c in report["checks"]] == [
        "monotone sweep (miou)",
        "budget stability (miou)",
        "large radius breaks the model (miou)",
        "re-verification",
    ]
    assert report["checks"][-1]["status"] == "PASS"
    assert set(report["corruptions"]) == {"gaussian_noise", "fog_3d"}
    assert list(report["conditions"]) == ["clone", "fog"]
    assert report["conditions"]["clone"]["miou"] == pytest.approx(report["clean"]["miou"])
    assert set(report["targeted"]["per_eps"]) == set(eps)
    page = (out / "report.html").read_text()
    assert "Clean and attacked predictions" in page and "Honesty checks" in page
    stamps = {p: p.stat().st_mtime_ns for p in (out / "units").glob("*.pt")}
    assert len(stamps) == 1 + 2 * 2 + 2 + 2 + 1 + 2  # clean, sweep, checks, corruptions, ...
    run_cli(*args, timeout=600)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing recomputed


def _one_line(done, text: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and text in errors[0], done.stderr[-2000:]


def test_dense_bad_input_is_one_line(tmp_path, dense_run, rendered_dir):
    ckpt = str(dense_run["ckpt"])

    def robustness(*extra: str):
        return run_cli(
            "robustness", "--ckpt", ckpt, "--out", str(tmp_path / "r"), *QUICK, *extra, check=False
        )

    _one_line(robustness("--data", "digits"), "--data: 'digits' is not rendered data")
    _one_line(robustness("--data", str(rendered_dir)), "--data: its classes ['0', '1', '2'")
    _one_line(
        robustness("--data", str(dense_run["test"]), "--target-class", "road"),
        "needs both --target-class and --target-region",
    )
    _one_line(
        robustness(
            "--data", str(dense_run["test"]), "--target-class", "bus", "--target-region", "car"
        ),
        "--target-class: 'bus' is not a class of the model",
    )
    _one_line(
        robustness("--data", str(dense_run["test"]), "--attacks", "fgsm"),
        "--attacks: unknown dense attack 'fgsm'",
    )


def test_classifier_robustness_runs_depth_corruptions_on_rendered_data_only(
    tmp_path, tiny_ckpt, rendered_dir
):
    out = tmp_path / "classifier"
    run_cli(
        "robustness",
        "--ckpt",
        str(tiny_ckpt),
        "--data",
        str(rendered_dir),
        "--out",
        str(out),
        "--budget",
        "quick",
        "--n",
        "8",
        "--attacks",
        "fgsm",
        "--eps",
        "0.1",
        "--corruptions",
        "contrast,fog_3d",
        "--quiet",
    )
    report = json.loads((out / "report.json").read_text())
    assert set(report["corruptions"]) == {"contrast", "fog_3d"}
    done = run_cli(
        "robustness",
        "--ckpt",
        str(tiny_ckpt),
        "--data",
        "digits",
        "--out",
        str(tmp_path / "digits"),
        "--budget",
        "quick",
        "--corruptions",
        "fog_3d",
        check=False,
    )
    _one_line(done, "--corruptions: fog_3d needs the images' depth")
    done = run_cli(
        "robustness",
        "--ckpt",
        str(tiny_ckpt),
        "--data",
        "digits",
        "--out",
        str(tmp_path / "t"),
        "--target-class",
        "road",
        check=False,
    )
    _one_line(done, "--target-class: applies to dense checkpoints only")
