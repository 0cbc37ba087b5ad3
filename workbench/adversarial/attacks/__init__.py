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

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from workbench.adversarial.threat import ThreatModel
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
        >>> attack = build_attack("pgd", model, ThreatModel("linf", 8 / 255), steps=5)
        >>> x_adv = attack(x, y)
        >>> x_adv.shape, bool((x_adv - x).abs().max() <= 8 / 255 + 1e-6)
        (torch.Size([4, 3, 8, 8]), True)
        >>> build_attack("pgdd", model, ThreatModel("linf", 0.1))
        Traceback (most recent call last):
        ...
        workbench.errors.WorkbenchError: unknown attack 'pgdd'; known: apgd-ce, ...
    """
    return ATTACKS.get(name)(model, threat, **options)
