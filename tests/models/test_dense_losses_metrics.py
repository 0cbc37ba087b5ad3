"""Segmentation losses (class weights, ignore index, Dice) and the dense metrics (IoU, pixel
accuracy, Eigen's depth errors) against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from workbench.errors import WorkbenchError
from workbench.models.dense_losses import SEGMENTATION_LOSSES, segmentation_loss
from workbench.models.dense_metrics import DEPTH_METRICS, DepthMetrics, SegmentationMetrics


def _logits_and_target(seed: int = 0, classes: int = 4):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, 8, 8, generator=generator, requires_grad=True)
    target = torch.randint(0, classes, (2, 8, 8), generator=generator)
    target[:, :3] = -1  # unlabelled rows
    return logits, target


@pytest.mark.parametrize("name", SEGMENTATION_LOSSES)
def test_ignored_pixels_neither_count_nor_get_gradient(name):
    logits, target = _logits_and_target()
    loss = segmentation_loss(name, 4, None, -1)(logits, target)
    loss.backward()
    assert loss.isfinite()
    assert (logits.grad[:, :, :3] == 0).all() and (logits.grad[:, :, 3:] != 0).any()
    # changing the logits of ignored pixels changes nothing
    other = logits.detach().clone()
    other[:, :, :3] = 100.0
    torch.testing.assert_close(segmentation_loss(name, 4, None, -1)(other, target), loss.detach())


def test_cross_entropy_weights_classes_like_torch():
    logits, target = _logits_and_target()
    weights = [0.5, 1.0, 2.0, 3.0]
    loss = segmentation_loss("cross_entropy", 4, weights, -1)(logits, target)
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=-1)
    torch.testing.assert_close(loss, expected)


def test_dice_is_zero_for_a_perfect_prediction_and_the_sum_adds_both():
    _, target = _logits_and_target()
    perfect = F.one_hot(target.clamp(min=0), 4).permute(0, 3, 1, 2).float() * 50
    assert segmentation_loss("dice", 4, None, -1)(perfect, target).item() == pytest.approx(
        0, abs=1e-6
    )
    logits, _ = _logits_and_target(1)
    both = segmentation_loss("cross_entropy+dice", 4, None, -1)(logits, target)
    parts = sum(
        segmentation_loss(n, 4, None, -1)(logits, target) for n in ("cross_entropy", "dice")
    )
    torch.testing.assert_close(both, parts)


def test_a_batch_without_labels_gives_zero_with_graph():
    logits, target = _logits_and_target()
    loss = segmentation_loss("cross_entropy", 4, [1, 1, 1, 1], -1)(
        logits, torch.full_like(target, -1)
    )
    assert loss.item() == 0
    loss.backward()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("focal", 4, None, -1), "segmentation loss must be one of cross_entropy, dice"),
        (("dice", 4, [1, 2], -1), r"class_weights must hold 4 non-negative numbers .*got \[1, 2\]"),
        (("dice", 4, [1, 2, 3, -1], -1), "class_weights must hold 4 non-negative"),
        (("cross_entropy", 4, None, 2), r"ignore_index 2 is a class id \(ids 0 .. 3\)"),
    ],
)
def test_bad_options_are_one_line_errors(args, match):
    with pytest.raises(WorkbenchError, match=match):
        segmentation_loss(*args)


def test_iou_and_pixel_accuracy_by_hand():
    metric = SegmentationMetrics(3)
    metric.update(torch.tensor([[[0, 1], [1, 2]]]), torch.tensor([[[0, 1], [2, -1]]]))
    values = metric.compute()
    # class 0: 1/1; class 1: TP 1, FP 1 -> 1/2; class 2: TP 0, FN 1 -> 0; the -1 pixel is out
    torch.testing.assert_close(values["iou"], torch.tensor([1.0, 0.5, 0.0]))
    assert values["miou"].item() == pytest.approx(0.5)
    assert values["pixel_acc"].item() == pytest.approx(2 / 3)


def test_absent_classes_stay_out_of_the_mean_and_miou_matches_torchmetrics():
    metric = SegmentationMetrics(4)
    metric.update(torch.tensor([[0, 1, 1, 0]]), torch.tensor([[0, 1, 0, 0]]))
    values = metric.compute()
    assert values["iou"][2:].isnan().all()
    assert values["miou"].item() == pytest.approx((2 / 3 + 1 / 2) / 2)
    logits, target = _logits_and_target(3)
    metric, reference = SegmentationMetrics(4), MulticlassJaccardIndex(4, ignore_index=-1)
    for half in (slice(0, 1), slice(1, 2)):  # pooled over batches
        metric.update(logits[half].detach(), target[half])
        reference.update(logits[half].detach().argmax(1), target[half])
    torch.testing.assert_close(metric.compute()["miou"], reference.compute())


def test_depth_metrics_match_eigen_definitions():
    generator = np.random.default_rng(0)
    truth = generator.uniform(1, 50, (2, 6, 6))
    truth[0, 0] = 0  # no label
    pred = truth * generator.uniform(0.7, 1.4, truth.shape)
    metric = DepthMetrics()
    metric.update(
        torch.tensor(pred[:1], dtype=torch.float32), torch.tensor(truth[:1], dtype=torch.float32)
    )
    metric.update(
        torch.tensor(pred[1:], dtype=torch.float32), torch.tensor(truth[1:], dtype=torch.float32)
    )
    values = metric.compute()
    assert set(values) == set(DEPTH_METRICS)
    valid = truth > 0
    p, t = pred[valid], truth[valid]
    ratio = np.maximum(p / t, t / p)
    expected = {
        "absrel": np.mean(np.abs(p - t) / t),
        "rmse": np.sqrt(np.mean((p - t) ** 2)),
        "log_rmse": np.sqrt(np.mean((np.log(p) - np.log(t)) ** 2)),
        "delta1": np.mean(ratio < 1.25),
        "delta2": np.mean(ratio < 1.25**2),
        "delta3": np.mean(ratio < 1.25**3),
    }
    for name, value in expected.items():
        assert values[name].item() == pytest.approx(value, rel=1e-4), name


def test_depth_metrics_without_labels_are_nan():
    metric = DepthMetrics()
    metric.update(torch.ones(1, 2, 2), torch.zeros(1, 2, 2))
    assert all(v.isnan() for v in metric.compute().values())
