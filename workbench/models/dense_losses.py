"""Segmentation losses by name: cross entropy with class weights and an ignore index, Dice
(kornia's), and their sum."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from kornia.losses import dice_loss
from torch import Tensor

from workbench.errors import WorkbenchError

SEGMENTATION_LOSSES = ("cross_entropy", "dice", "cross_entropy+dice")


def segmentation_loss(
    name: str, num_outputs: int, class_weights: Sequence[float] | None, ignore_index: int
) -> Callable[[Tensor, Tensor], Tensor]:
    """Returns ``loss(logits[B, C, H, W], target[B, H, W]) -> scalar``.

    Pixels whose target is ``ignore_index`` enter neither the loss nor its gradient.

    Args:
        name: ``"cross_entropy"`` (mean over the labelled pixels, each weighted by its class's
            weight), ``"dice"`` (soft multi-class Dice, kornia's micro average) or
            ``"cross_entropy+dice"`` (their sum).
        num_outputs: ``C``, the channels of the logits (classes and background).
        class_weights: one weight per output channel, or None for equal weights.
        ignore_index: the target value of unlabelled pixels (outside ``0 .. C - 1``).

    Raises:
        WorkbenchError: an unknown name, a weight list of the wrong length or with a negative
            entry, or an ignore index inside ``0 .. C - 1``.
    """
    if name not in SEGMENTATION_LOSSES:
        raise WorkbenchError(
            f"segmentation loss must be one of {', '.join(SEGMENTATION_LOSSES)}; got {name!r}"
        )
    if 0 <= ignore_index < num_outputs:
        raise WorkbenchError(
            f"ignore_index {ignore_index} is a class id (ids 0 .. {num_outputs - 1}); "
            "choose a value outside them, such as -1"
        )
    weight = None
    if class_weights is not None:
        if len(class_weights) != num_outputs or min(class_weights) < 0:
            raise WorkbenchError(
                f"class_weights must hold {num_outputs} non-negative numbers (background first, "
                f"then one per class); got {list(class_weights)}"
            )
        weight = torch.tensor([float(w) for w in class_weights])
    terms = {
        "cross_entropy": partial(_cross_entropy, weight=weight, ignore_index=ignore_index),
        "dice": partial(_dice, weight=weight, ignore_index=ignore_index),
    }
    if name in terms:
        return terms[name]
    return partial(_sum, terms=tuple(terms.values()))


def _cross_entropy(logits: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int):
    if not (target != ignore_index).any():
        return logits.sum() * 0.0  # torch's weighted mean over no pixels is NaN
    weight = None if weight is None else weight.to(logits)
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def _dice(logits: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int) -> Tensor:
    weight = None if weight is None else weight.to(logits)
    return dice_loss(logits, target, weight=weight, ignore_index=ignore_index)


def _sum(logits: Tensor, target: Tensor, terms: tuple[Callable, ...]) -> Tensor:
    return sum(term(logits, target) for term in terms)
