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
        matrix = self.confusion.compute().double()
        true_positive = matrix.diagonal()
        union = matrix.sum(0) + matrix.sum(1) - true_positive
        iou = torch.where(union > 0, true_positive / union.clamp(min=1), torch.nan)
        present = ~iou.isnan()
        miou = iou[present].mean() if present.any() else torch.tensor(torch.nan)
        pixel_acc = true_positive.sum() / matrix.sum().clamp(min=1)
        return {"miou": miou.float(), "pixel_acc": pixel_acc.float(), "iou": iou.float()}

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
        for name in ("abs_rel", "squared", "log_squared", "delta1", "delta2", "delta3", "count"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Adds a batch of predicted and true depth maps in metres (``[B, H, W]``)."""
        valid = target > 0
        p = pred[valid].double().clamp(min=DEPTH_FLOOR)
        t = target[valid].double()
        ratio = torch.maximum(p / t, t / p)
        self.abs_rel += ((p - t).abs() / t).sum()
        self.squared += ((p - t) ** 2).sum()
        self.log_squared += ((p.log() - t.log()) ** 2).sum()
        for power, name in enumerate(("delta1", "delta2", "delta3"), start=1):
            setattr(self, name, getattr(self, name) + (ratio < 1.25**power).sum())
        self.count += valid.sum()

    def compute(self) -> dict[str, Tensor]:
        """Returns the metrics of :data:`DEPTH_METRICS` (NaN when no pixel had a label)."""
        n = self.count if self.count > 0 else torch.tensor(torch.nan, dtype=torch.float64)
        values = {
            "absrel": self.abs_rel / n,
            "rmse": (self.squared / n).sqrt(),
            "log_rmse": (self.log_squared / n).sqrt(),
            "delta1": self.delta1 / n,
            "delta2": self.delta2 / n,
            "delta3": self.delta3 / n,
        }
        return {k: v.float() for k, v in values.items()}
