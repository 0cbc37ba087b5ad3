"""Metrics of dense predictions as torchmetrics metrics (summed over processes under DDP).

Segmentation: per-class IoU, mean IoU and pixel accuracy from torchmetrics' confusion matrix.
Depth: the error measures of Eigen et al. (2014) over the pixels with a depth label.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix

from workbench.models.losses import DEPTH_FLOOR

DEPTH_METRICS = ("absrel", "rmse", "log_rmse", "delta1", "delta2", "delta3")
"""What :class:`DepthMetrics` computes; higher is better for the deltas only."""


class SegmentationMetrics(Metric):
    """Per-class IoU ``TP / (TP + FP + FN)``, their mean and pixel accuracy, pooled over every
    labelled pixel seen since the last reset.

    Classes that neither the targets nor the predictions contain have no IoU (NaN) and stay out
    of the mean, as in the Cityscapes and PASCAL VOC evaluations. Id 0 (background) is a class
    like any other here: the renderer labels it (sky, open ground), it is not void.

    Args:
        num_outputs: class ids ``0 .. num_outputs - 1``.
        ignore_index: the target value of unlabelled pixels.
    """

    full_state_update = False

    def __init__(self, num_outputs: int, ignore_index: int = -1) -> None:
        super().__init__()
        self.confusion = MulticlassConfusionMatrix(num_outputs, ignore_index=ignore_index)

    def update(self, logits: Tensor, target: Tensor) -> None:
        """Adds a batch: ``logits[B, C, H, W]`` (or predicted ids ``[B, H, W]``) and ``target``."""
        pred = logits.argmax(dim=1) if logits.dim() == 4 else logits
        self.confusion.update(pred, target)

    def compute(self) -> dict[str, Tensor]:
        """Returns ``miou``, ``pixel_acc`` and ``iou`` (a tensor of one value per class)."""
        return segmentation_scores(self.confusion.compute())

    def reset(self) -> None:
        super().reset()
        self.confusion.reset()


class DepthMetrics(Metric):
    """AbsRel, RMSE, log RMSE and the threshold accuracies delta < 1.25, 1.25^2, 1.25^3
    (Eigen et al. 2014), pooled over every pixel with a depth label (target > 0).

    Predictions are clamped to at least 1 mm before the ratios and logarithms.
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("sums", torch.zeros(7, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Adds a batch of predicted and true depth maps in metres (``[B, H, W]``)."""
        self.sums += depth_sums(pred, target).sum(0)

    def compute(self) -> dict[str, Tensor]:
        """Returns the metrics of :data:`DEPTH_METRICS` (NaN when no pixel had a label)."""
        return depth_scores(self.sums)


def segmentation_scores(matrix: Tensor) -> dict[str, Tensor]:
    """``miou``, ``pixel_acc`` and per-class ``iou`` of a confusion matrix (true classes by row,
    predicted by column); classes without any pixel in either have NaN IoU, out of the mean."""
    matrix = matrix.double()
    true_positive = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - true_positive
    iou = torch.where(union > 0, true_positive / union.clamp(min=1), torch.nan)
    present = ~iou.isnan()
    miou = iou[present].mean() if present.any() else torch.tensor(torch.nan)
    pixel_acc = true_positive.sum() / matrix.sum().clamp(min=1)
    return {"miou": miou.float(), "pixel_acc": pixel_acc.float(), "iou": iou.float()}


def confusions(pred: Tensor, target: Tensor, num_outputs: int) -> Tensor:
    """Per image, the confusion matrix ``num_outputs x num_outputs`` (true by row) of predicted
    and true class ids ``[B, H, W]``; pixels with a target outside ``0 .. num_outputs - 1`` (the
    ignore index) are left out."""
    valid = (target >= 0) & (target < num_outputs)
    image = torch.arange(len(pred), device=pred.device)[:, None, None].expand_as(pred)
    flat = (image * num_outputs + target.clamp(min=0)) * num_outputs + pred
    counts = torch.bincount(flat[valid], minlength=len(pred) * num_outputs**2)
    return counts.view(len(pred), num_outputs, num_outputs)


def depth_sums(pred: Tensor, target: Tensor) -> Tensor:
    """Per image, the sums the depth metrics need over pixels with depth (target > 0): absolute
    relative error, squared error, squared log error, the three delta hits and the pixel count
    (``[B, 7]``, float64)."""
    valid = target > 0
    p = pred.double().clamp(min=DEPTH_FLOOR)
    t = target.double().clamp(min=DEPTH_FLOOR)
    ratio = torch.maximum(p / t, t / p)
    terms = [(p - t).abs() / t, (p - t) ** 2, (p.log() - t.log()) ** 2,
             *(ratio < 1.25**k for k in (1, 2, 3)), torch.ones_like(p)]  # fmt: skip
    return torch.stack([(term * valid).flatten(1).sum(1) for term in terms], dim=1)


def depth_scores(sums: Tensor) -> dict[str, Tensor]:
    """The metrics of :data:`DEPTH_METRICS` from summed :func:`depth_sums` (NaN without pixels)."""
    count = sums[6] if sums[6] > 0 else torch.tensor(torch.nan, dtype=torch.float64)
    values = {
        "absrel": sums[0] / count,
        "rmse": (sums[1] / count).sqrt(),
        "log_rmse": (sums[2] / count).sqrt(),
        "delta1": sums[3] / count,
        "delta2": sums[4] / count,
        "delta3": sums[5] / count,
    }
    return {k: v.float() for k, v in values.items()}
