"""Loss functions by name: classification (cross entropy, focal) and masked depth regression."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch.nn.functional as F
from kornia.losses import focal_loss
from torch import Tensor

from workbench.errors import WorkbenchError

CLASSIFICATION_LOSSES = ("cross_entropy", "focal")
DEPTH_LOSSES = ("l1", "l2", "huber")


def classification_loss(
    name: str, label_smoothing: float = 0.0, focal_gamma: float = 2.0
) -> Callable[[Tensor, Tensor], Tensor]:
    """Returns ``loss(logits[B, K], target[B]) -> mean loss`` for integer class targets.

    Args:
        name: ``"cross_entropy"`` or ``"focal"`` (multi-class focal loss, Lin et al. 2017, no
            class weighting; with ``focal_gamma=0`` it equals cross entropy).
        label_smoothing: cross entropy only; mixes the one-hot target with the uniform
            distribution, as :func:`torch.nn.functional.cross_entropy` does.
        focal_gamma: focal only; the focusing exponent ``gamma >= 0``.

    Raises:
        WorkbenchError: unknown name or invalid parameter.
    """
    if name not in CLASSIFICATION_LOSSES:
        raise WorkbenchError(
            f"classification loss must be one of {', '.join(CLASSIFICATION_LOSSES)}; got {name!r}"
        )
    if not 0 <= label_smoothing < 1:
        raise WorkbenchError(f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
    if name == "cross_entropy":
        return partial(F.cross_entropy, label_smoothing=label_smoothing)
    if label_smoothing:
        raise WorkbenchError("label_smoothing applies to cross_entropy only, not to focal")
    if focal_gamma < 0:
        raise WorkbenchError(f"focal_gamma must be >= 0; got {focal_gamma!r}")
    return partial(_focal, gamma=focal_gamma)


def _focal(logits: Tensor, target: Tensor, gamma: float) -> Tensor:
    # kornia's "mean" also divides by the class count; sum the class slices, average the batch.
    return focal_loss(logits, target, alpha=None, gamma=gamma).sum(dim=1).mean()


def depth_loss(name: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """Returns ``loss(pred, target, mask) -> scalar`` averaged over the pixels where ``mask``.

    ``mask`` is a boolean tensor broadcastable to ``pred``. Values of ``target`` outside the
    mask never enter the loss or its gradient. An empty mask gives 0 with the graph intact.

    Args:
        name: ``"l1"``, ``"l2"`` (squared error) or ``"huber"`` (delta 1).

    Raises:
        WorkbenchError: unknown name.
    """
    if name not in DEPTH_LOSSES:
        raise WorkbenchError(f"depth loss must be one of {', '.join(DEPTH_LOSSES)}; got {name!r}")
    elementwise = {"l1": F.l1_loss, "l2": F.mse_loss, "huber": F.huber_loss}[name]
    return partial(_masked, elementwise=elementwise)


def _masked(pred: Tensor, target: Tensor, mask: Tensor, elementwise: Callable) -> Tensor:
    mask = mask.bool().expand_as(pred)
    total = elementwise(pred[mask], target.expand_as(pred)[mask], reduction="sum")
    return total / mask.sum().clamp(min=1)
