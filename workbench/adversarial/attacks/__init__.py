"""Attacks, one per file, registered by name: :data:`ATTACKS` feeds the CLI, the app and tests."""

from __future__ import annotations

from typing import Any

from torch import nn

from workbench.adversarial.attacks import (  # noqa: F401  (importing registers them)
    apgd,
    cw,
    deepfool,
    fab,
    fgsm,
    mifgsm,
    pgd,
    square,
    ssim,
)
from workbench.adversarial.attacks.base import ATTACKS, Attack, register_attack
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError

__all__ = ["ATTACKS", "Attack", "build_attack", "register_attack"]


def build_attack(name: str, model: nn.Module, threat: ThreatModel, **options: Any) -> Attack:
    """Returns the registered attack ``name`` on ``model`` under ``threat``.

    Args:
        name: a key of :data:`ATTACKS`.
        model: the classifier to attack.
        threat: the threat model.
        **options: ``targeted``, ``seed`` and the attack's own options.

    Raises:
        WorkbenchError: for an unknown name (the known ones listed) or option.
    """
    if name not in ATTACKS:
        raise WorkbenchError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
    return ATTACKS[name](model, threat, **options)
