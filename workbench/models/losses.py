"""Loss functions by name: classification (cross entropy, focal), masked depth regression (L1,
L2, Huber, berHu, scale-invariant log); per-sample weights of a training batch (online hard
example mining, self-paced learning). Segmentation losses are in
:mod:`workbench.models.dense_losses`."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from kornia.losses import focal_loss
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from torch import Tensor

from workbench.errors import WorkbenchError

CLASSIFICATION_LOSSES = ("cross_entropy", "focal")
DEPTH_LOSSES = ("l1", "l2", "huber", "berhu", "silog")
DEPTH_FLOOR = 1e-3  # metres: predictions are clamped to it before a logarithm
REDUCTIONS = ("mean", "none")


def classification_loss(
    name: str, label_smoothing: float = 0.0, focal_gamma: float = 2.0, reduction: str = "mean"
) -> Callable[[Tensor, Tensor], Tensor]:
    """Returns ``loss(logits[B, K], target[B]) -> mean loss`` for integer class targets.

    Args:
        name: ``"cross_entropy"`` or ``"focal"`` (multi-class focal loss, Lin et al. 2017, no
            class weighting; with ``focal_gamma=0`` it equals cross entropy).
        label_smoothing: cross entropy only; mixes the one-hot target with the uniform
            distribution, as :func:`torch.nn.functional.cross_entropy` does.
        focal_gamma: focal only; the focusing exponent ``gamma >= 0``.
        reduction: ``"mean"``, or ``"none"`` for the loss of every sample (B), whose mean is
            the loss.

    Raises:
        WorkbenchError: unknown name or invalid parameter.
    """
    if reduction not in REDUCTIONS:
        raise WorkbenchError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")
    if name not in CLASSIFICATION_LOSSES:
        raise WorkbenchError(
            f"classification loss must be one of {', '.join(CLASSIFICATION_LOSSES)}; got {name!r}"
        )
    if not 0 <= label_smoothing < 1:
        raise WorkbenchError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
    if name == "cross_entropy":
        return partial(F.cross_entropy, label_smoothing=label_smoothing, reduction=reduction)
    if label_smoothing:
        raise WorkbenchError("label_smoothing applies to cross_entropy only, not to focal")
    if focal_gamma < 0:
        raise WorkbenchError(f"focal_gamma must be >= 0; got {focal_gamma!r}")
    return partial(_focal, gamma=focal_gamma, reduction=reduction)


def _focal(logits: Tensor, target: Tensor, gamma: float, reduction: str) -> Tensor:
    # kornia's "mean" also divides by the class count; sum the class slices, average the batch.
    per_sample = focal_loss(logits, target, alpha=None, gamma=gamma).sum(dim=1)
    return per_sample.mean() if reduction == "mean" else per_sample


def depth_loss(name: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """Returns ``loss(pred, target, mask) -> scalar`` over the pixels where ``mask``.

    ``mask`` is a boolean tensor broadcastable to ``pred``. Values of ``target`` outside the
    mask never enter the loss or its gradient. An empty mask gives 0 with the graph intact.

    Args:
        name: ``"l1"``, ``"l2"`` (squared error), ``"huber"`` (delta 1), ``"berhu"`` (reverse
            Huber, Laina et al. 2016: L1 below ``c = 0.2 max |error|`` of the batch, scaled L2
            above) or ``"silog"`` (scale-invariant log error, Eigen et al. 2014, with lambda
            0.5: ``mean(d^2) - 0.5 mean(d)^2`` for ``d = log pred - log target``, predictions
            clamped to 1 mm).

    Raises:
        WorkbenchError: unknown name.
    """
    if name not in DEPTH_LOSSES:
        raise WorkbenchError(f"depth loss must be one of {', '.join(DEPTH_LOSSES)}; got {name!r}")
    if name == "berhu":
        return partial(_masked, elementwise=_berhu)
    if name == "silog":
        return _silog
    elementwise = {"l1": F.l1_loss, "l2": F.mse_loss, "huber": F.huber_loss}[name]
    return partial(_masked, elementwise=elementwise)


def _masked(pred: Tensor, target: Tensor, mask: Tensor, elementwise: Callable) -> Tensor:
    mask = mask.bool().expand_as(pred)
    total = elementwise(pred[mask], target.expand_as(pred)[mask], reduction="sum")
    return total / mask.sum().clamp(min=1)


def _berhu(pred: Tensor, target: Tensor, reduction: str = "sum") -> Tensor:
    error = (pred - target).abs()
    c = (0.2 * error.max().detach()).clamp(min=1e-6) if error.numel() else error.new_tensor(1.0)
    loss = torch.where(error <= c, error, (error**2 + c**2) / (2 * c))
    return loss.sum()


def _silog(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    mask = mask.bool().expand_as(pred)
    if not mask.any():
        return pred.sum() * 0.0
    d = pred[mask].clamp(min=DEPTH_FLOOR).log() - target.expand_as(pred)[mask].log()
    return (d**2).mean() - 0.5 * d.mean() ** 2


class SampleWeighting(BaseModel):
    """The options of :func:`sample_weights`, checked.

    Attributes:
        hard_mining: fraction of each batch kept by online hard example mining, in (0, 1];
            1.0 = off.
        self_paced: the self-paced age threshold at epoch 0, positive; None = off.
        self_paced_growth: the factor by which the threshold grows every epoch (>= 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hard_mining: float = 1.0
    self_paced: float | None = None
    self_paced_growth: float = 1.1

    @field_validator("hard_mining")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"must be in (0, 1], got {value}")
        return value

    @field_validator("self_paced")
    @classmethod
    def _threshold(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not value > 0:
            raise ValueError(f"must be positive, got {value}")
        if value is not None and info.data.get("hard_mining", 1.0) < 1:
            raise ValueError(
                "hard_mining and self_paced pull opposite ways (hardest kept, hardest dropped); "
                "set only one"
            )
        return value

    @field_validator("self_paced_growth")
    @classmethod
    def _growth(cls, value: float) -> float:
        if not value >= 1:
            raise ValueError(f"must be >= 1, got {value}")
        return value


def hard_mining_weights(losses: Tensor, fraction: float) -> Tensor:
    """Online hard example mining (Shrivastava et al. 2016): weight ``1 / k`` on the ``k =
    ceil(fraction * B)`` largest of the B per-sample ``losses``, zero on the others."""
    keep = math.ceil(round(fraction * len(losses), 9))
    weights = torch.zeros_like(losses)
    weights[losses.topk(keep).indices] = 1.0 / keep
    return weights


def self_paced_weights(losses: Tensor, threshold: float) -> Tensor:
    """Self-paced learning with binary weights (Kumar et al. 2010): weight ``1 / B`` on the
    per-sample ``losses`` below ``threshold``, zero on the others, so a batch of dropped samples
    contributes nothing."""
    return (losses < threshold).to(losses.dtype) / len(losses)


def sample_weights(
    losses: Tensor,
    epoch: int,
    hard_mining: float = 1.0,
    self_paced: float | None = None,
    self_paced_growth: float = 1.1,
) -> Tensor:
    """Returns the weight of every per-sample loss of a training batch at ``epoch`` (zero =
    dropped); the weights sum to at most 1.

    Args:
        losses: the B per-sample losses (detached).
        epoch: the training epoch (self-paced thresholds grow with it).
        hard_mining: see :func:`hard_mining_weights`; 1.0 = every sample, weight ``1 / B``.
        self_paced: the threshold of :func:`self_paced_weights` at epoch 0 (None = off); it is
            ``self_paced * self_paced_growth ** epoch`` at ``epoch``.
        self_paced_growth: the threshold's growth factor per epoch.
    """
    if self_paced is not None:
        return self_paced_weights(losses, self_paced * self_paced_growth**epoch)
    return hard_mining_weights(losses, hard_mining)
