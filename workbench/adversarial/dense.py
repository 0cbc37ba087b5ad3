"""Attacks on dense models: PGD and APGD ascending a per-pixel loss.

The step rules are those of :class:`~workbench.adversarial.attacks.pgd.PGD` and
:class:`~workbench.adversarial.attacks.apgd.APGDCE`; only what is attacked changes:

* segmentation, untargeted: the mean cross entropy over each image's labelled pixels (labels
  ``B x H x W``, -1 = unlabelled), as in SegPGD's plain form (Gu et al. 2022) and in the
  per-pixel attacks of Arnab et al. (2018);
* segmentation, targeted: minus the mean cross entropy towards a target map over a region
  (``target`` ``B x H x W``, -1 outside the region): for example every car pixel made road;
* depth: the mean absolute log error over each image's pixels with depth (labels metres
  ``B x H x W``, 0 = none).

An image counts as fooled (what restarts and the best-iterate choice read) when every labelled
pixel is wrong (untargeted), every region pixel shows the target class (targeted), or every
pixel's depth is off by more than 25% (depth); the evaluation itself measures mIoU and AbsRel.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.adversarial.attacks.apgd import APGDCE
from workbench.adversarial.attacks.pgd import PGD
from workbench.adversarial.model import attack_mode, check_images
from workbench.errors import WorkbenchError
from workbench.models.losses import DEPTH_FLOOR
from workbench.registry import Registry

HEADS = ("seg", "depth")
DEPTH_FOOLED = 1.25  # a pixel's depth is wrong when off by more than this ratio


class DenseHead(nn.Module):
    """One output of a dense model: ``seg`` logits ``B x C x H x W`` or ``depth`` ``B x H x W``.

    Args:
        model: a :class:`~workbench.training.dense.DenseModule` (dict output).
        head: ``seg`` or ``depth``.
    """

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        if head not in HEADS:
            raise WorkbenchError(f"head: must be one of {', '.join(HEADS)}, got {head!r}")
        self.model, self.head = model, head

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(x)
        if self.head not in out:
            raise WorkbenchError(f"model: has no {self.head} output (outputs: {', '.join(out)})")
        return out[self.head]


class DenseObjective:
    """Turns a gradient attack on class logits into one on a dense model's per-pixel loss (see
    the module docstring). Mixed in before the attack class.

    Args:
        model: a dense model (dict output with ``seg`` and / or ``depth``).
        threat: the threat model.
        head: the output attacked, ``seg`` or ``depth``.
        targeted, seed, **options: as for the attack mixed with.
    """

    def __init__(
        self,
        model: nn.Module,
        threat: Any,
        head: str = "seg",
        targeted: bool = False,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if head not in HEADS:
            raise WorkbenchError(f"head: must be one of {', '.join(HEADS)}, got {head!r}")
        self.head = head
        super().__init__(model, threat, targeted=targeted, seed=seed, **options)

    def wrap(self, model: nn.Module) -> nn.Module:
        return model if isinstance(model, DenseHead) else DenseHead(model, self.head)

    def check_inputs(self, x: Tensor, y: Tensor, target: Tensor | None) -> None:
        check_images(x)
        shape = (x.shape[0], *x.shape[-2:])
        if not isinstance(y, Tensor) or tuple(y.shape) != shape:
            raise WorkbenchError(
                f"y: need one label map per image, {shape}, got "
                f"{tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__}"
            )
        if self.targeted:
            if self.head != "seg":
                raise WorkbenchError("targeted: only segmentation attacks take a target map")
            if target is None or tuple(target.shape) != shape:
                raise WorkbenchError(
                    f"target: a targeted attack needs a target map {shape} (-1 outside the region)"
                )
        elif target is not None:
            raise WorkbenchError(f"target: attack '{self.name}' is untargeted here")

    def logits(self, x: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
        return self.model(x)

    def objective(self, out: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        if self.head == "depth":
            valid = y > 0
            error = (out.clamp(min=DEPTH_FLOOR).log() - y.clamp(min=DEPTH_FLOOR).log()).abs()
            return _mean_over(error, valid)
        if target is not None:
            region = target >= 0
            loss = F.cross_entropy(out, target.clamp(min=0), reduction="none")
            return -_mean_over(loss, region)
        labelled = y >= 0
        return _mean_over(F.cross_entropy(out, y.clamp(min=0), reduction="none"), labelled)

    def success(self, out: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        if self.head == "depth":
            valid = y > 0
            ratio = torch.maximum(out / y.clamp(min=DEPTH_FLOOR), y / out.clamp(min=DEPTH_FLOOR))
            return _all_over(ratio > DEPTH_FOOLED, valid)
        pred = out.argmax(dim=1)
        if target is not None:
            return _all_over(pred == target, target >= 0)
        return _all_over(pred != y, y >= 0)


def _mean_over(values: Tensor, mask: Tensor) -> Tensor:
    """Per image: the mean of ``values`` where ``mask`` (0 where the mask is empty)."""
    mask = mask.to(values.dtype)
    return (values * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)


def _all_over(hits: Tensor, mask: Tensor) -> Tensor:
    """Per image: whether ``hits`` holds at every pixel of a non-empty ``mask``."""
    return ((hits | ~mask).flatten(1).all(1)) & mask.flatten(1).any(1)


class DensePGD(DenseObjective, PGD):
    """PGD (Madry et al. 2018) on the per-pixel loss; options as :class:`PGD`'s (``loss`` is
    the task's per-pixel loss whatever it says)."""


class DenseAPGD(DenseObjective, APGDCE):
    """APGD (Croce and Hein 2020) on the per-pixel loss; options as :class:`APGDCE`'s."""


DENSE_ATTACKS: Registry[type] = Registry("dense attack")
DENSE_ATTACKS.add("pgd", DensePGD)
DENSE_ATTACKS.add("apgd", DenseAPGD)


def dense_attack(
    name: str,
    model: nn.Module,
    threat: Any,
    head: str = "seg",
    targeted: bool = False,
    seed: int = 0,
    **options: Any,
) -> DenseObjective:
    """Builds the dense attack ``name`` (``pgd`` or ``apgd``) on output ``head`` of ``model``.

    Raises:
        WorkbenchError: an unknown name or head, or options the attack does not take.
    """
    return DENSE_ATTACKS.get(name)(model, threat, head, targeted=targeted, seed=seed, **options)


def predict_dense(model: nn.Module, x: Tensor, batch_size: int = 64) -> dict[str, Tensor]:
    """The model's outputs on ``x`` in eval mode, batch by batch (``seg`` as class ids)."""
    outputs: dict[str, list[Tensor]] = {}
    with attack_mode(model), torch.no_grad():
        for start in range(0, len(x), batch_size):
            for key, value in model(x[start : start + batch_size]).items():
                outputs.setdefault(key, []).append(value.argmax(1) if key == "seg" else value)
    return {key: torch.cat(values) for key, values in outputs.items()}
