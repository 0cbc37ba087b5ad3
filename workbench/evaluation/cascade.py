"""Per-example worst case over attacks: an AutoAttack-style cascade (Croce & Hein 2020).

Attacks run in order, each only on the points still standing (classified correctly after every
earlier attack); a point counts as robust only when every attack failed on it. Outcomes are
decided by a fresh forward pass on the adversarial example each attack returns, never by the
attack's own bookkeeping. The stages come in AutoAttack's three versions (:data:`PRESETS`):

* ``standard``: APGD with cross-entropy, targeted APGD with the DLR loss and targeted FAB, each
  against the most likely wrong classes in turn, then the black-box Square attack;
* ``plus``: APGD-CE and APGD-DLR with 5 restarts, untargeted FAB with 5 restarts, Square, then
  targeted APGD-DLR and targeted FAB;
* ``rand``: APGD-CE and APGD-DLR averaging 20 gradients per step (EOT), for randomised models.

The model is evaluated in eval mode throughout; the caller's modes come back afterwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.attacks.apgd import dlr_classes
from workbench.adversarial.model import as_logits_model, attack_mode, check_batch
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One attack of a cascade.

    Attributes:
        attack: registered attack name.
        options: the attack's options (steps, restarts, target_classes, ...).
        targeted: run the attack targeted without given targets: APGD-DLR and FAB then try
            the ``target_classes`` most likely wrong classes in turn (AutoAttack's APGD-T and
            FAB-T).
    """

    attack: str
    options: dict[str, Any] = field(default_factory=dict)
    targeted: bool = False

    @property
    def label(self) -> str:
        """The stage's name in reports (targeted ``apgd-dlr`` shows as ``apgd-dlr-t``)."""
        return f"{self.attack}-t" if self.targeted else self.attack


PRESETS = ("standard", "plus", "rand")
# AutoAttack's restarts of the untargeted white-box stages in its plus version, and its EOT
# iterations in the rand version
PLUS_RESTARTS = 5
RAND_EOT_ITER = 20


def capped_targets(targets: int, num_classes: int) -> int:
    """Returns ``targets`` capped at the ``num_classes - 1`` wrong classes there are."""
    return max(min(targets, num_classes - 1), 1)


def cascade_stages(
    preset: str = "standard",
    steps: int = 100,
    queries: int = 5000,
    targets: int = 9,
    restarts: int = 1,
    num_classes: int | None = None,
) -> list[Stage]:
    """Returns the stages of one of AutoAttack's versions (its defaults give AutoAttack's
    budget: 100 steps, 5000 queries, 9 target classes).

    Args:
        preset: ``standard``, ``plus`` or ``rand`` (see the module's docstring).
        steps: iterations of every white-box stage.
        queries: queries of the Square stage.
        targets: target classes of the targeted stages, capped at ``num_classes - 1``.
        restarts: restarts of every white-box stage (``plus`` multiplies those of its
            untargeted ones by 5).
        num_classes: the model's classes, when known (for the cap).

    Raises:
        WorkbenchError: an unknown preset.
    """
    if preset not in PRESETS:
        raise WorkbenchError(f"cascade: unknown {preset!r}; allowed: {', '.join(PRESETS)}")
    if num_classes is not None:
        targets = capped_targets(targets, num_classes)
    white = {"steps": steps, "restarts": restarts}
    aimed = {**white, "target_classes": targets}
    if preset == "rand":
        eot = {**white, "eot_iter": RAND_EOT_ITER}
        return [Stage("apgd-ce", eot), Stage("apgd-dlr", eot)]
    square = Stage("square", {"queries": queries})
    targeted = [Stage("apgd-dlr", aimed, targeted=True), Stage("fab", aimed, targeted=True)]
    if preset == "standard":
        return [Stage("apgd-ce", white), *targeted, square]
    many = {"steps": steps, "restarts": restarts * PLUS_RESTARTS}
    return [Stage("apgd-ce", many), Stage("apgd-dlr", many), Stage("fab", many), square, *targeted]


def stage_notes(stages: Sequence[Stage], num_classes: int, targets: int) -> list[str]:
    """Returns, in words, where ``stages`` run differently from AutoAttack's on a model with
    ``num_classes`` classes: fewer target classes than ``targets``, or the cross-entropy
    instead of a DLR loss the classes cannot support."""
    notes = []
    if any(st.targeted for st in stages) and targets > num_classes - 1:
        notes.append(
            f"target classes capped at {num_classes - 1}: the model has {num_classes} classes"
        )
    for targeted in (True, False):
        needed = dlr_classes(targeted)
        if num_classes < needed and any(
            st.attack == "apgd-dlr" and st.targeted == targeted for st in stages
        ):
            kind = "targeted " if targeted else ""
            notes.append(
                f"{kind}APGD-DLR uses the {kind}cross-entropy loss: the {kind}DLR loss needs "
                f"at least {needed} classes, the model has {num_classes}"
            )
    return notes


def autoattack_stages(steps: int = 100, queries: int = 5000, targets: int = 9) -> list[Stage]:
    """Returns AutoAttack's standard stages: APGD-CE, APGD-T (DLR) and FAB-T on ``targets``
    classes, Square with ``queries`` queries."""
    return cascade_stages("standard", steps, queries, targets)


@dataclass
class CascadeResult:
    """What a cascade found.

    Attributes:
        x_adv: per example the adversarial that broke it, else the last one tried (or the
            clean image when nothing attacked it).
        robust: bool per example, True where the model still classifies correctly.
        broken_by: per example, the label of the stage that broke it (``clean`` when it was
            misclassified to begin with), or None while it stands.
        stages: per stage, how many points it attacked, how many it broke, and its seconds.
    """

    x_adv: Tensor
    robust: Tensor
    broken_by: list[str | None]
    stages: list[dict[str, Any]]

    @property
    def accuracy(self) -> float:
        """Fraction of examples still classified correctly."""
        return float(self.robust.float().mean()) if len(self.robust) else 0.0


def predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Returns the predicted class of every image, in batches, without gradients, with the
    model in eval mode (its modes restored afterwards)."""
    model = as_logits_model(model)
    out = []
    with attack_mode(model), torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(model(x[start : start + batch_size]).argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def run_cascade(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    threat: ThreatModel,
    stages: Sequence[Stage],
    seed: int = 0,
    batch_size: int = 256,
    robust: Tensor | None = None,
    x_adv: Tensor | None = None,
    broken_by: list[str | None] | None = None,
) -> CascadeResult:
    """Runs ``stages`` in order, each on the points still standing, with the model in eval
    mode (its modes restored afterwards).

    Args:
        model: a classifier (dict with ``logits``) or a module returning logits.
        x: clean images, B x C x H x W in [0, 1].
        y: labels, B.
        threat: the threat model every stage uses.
        stages: the attacks, cheapest first.
        seed: base seed; stage ``i`` derives its own.
        batch_size: points per attack call.
        robust: bool per example, True where it still stands, from an earlier cascade to
            continue (:attr:`CascadeResult.robust`); None starts from the clean predictions,
            and then ``x_adv`` and ``broken_by`` are ignored.
        x_adv: the earlier cascade's adversarials (:attr:`CascadeResult.x_adv`), used with
            ``robust``.
        broken_by: the earlier cascade's breaking stage per example
            (:attr:`CascadeResult.broken_by`), used with ``robust``; None records no stage.
    """
    model = as_logits_model(model)
    check_batch(x, y)
    threat.check_images(x)
    with attack_mode(model):
        if robust is None:
            robust = predict(model, x, batch_size) == y
            broken_by = [None if r else "clean" for r in robust.tolist()]
            x_adv = x.clone()
        robust, x_adv = robust.clone(), x_adv.clone()
        broken_by = list(broken_by) if broken_by is not None else [None] * len(x)
        report = []
        for index, stage in enumerate(stages):
            standing = torch.nonzero(robust).flatten()
            before, started = len(standing), time.perf_counter()
            attack = build_attack(
                stage.attack,
                model,
                threat,
                targeted=stage.targeted,
                seed=seed * 1_000_003 + index,
                **stage.options,
            )
            for start in range(0, len(standing), batch_size):
                chunk = standing[start : start + batch_size]
                xb, yb = x[chunk], y[chunk]
                found = attack(xb, yb)
                with torch.no_grad():
                    fooled = model(found).argmax(1) != yb
                x_adv[chunk] = found
                robust[chunk[fooled]] = False
                for i in chunk[fooled].tolist():
                    broken_by[i] = stage.label
            broke = before - int(robust.sum())
            log.info("%s: attacked %d, broke %d", stage.label, before, broke)
            seconds = round(time.perf_counter() - started, 3)
            report.append(
                {"stage": stage.label, "attacked": before, "broken": broke, "seconds": seconds}
            )
    return CascadeResult(x_adv, robust, broken_by, report)
