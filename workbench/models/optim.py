"""One optimizer and learning-rate schedule factory for every LightningModule of the workbench.

In the spirit of timm's ``create_optimizer_v2``: an optimizer by name from a module or its
parameters (:func:`create_optimizer`), and a schedule by name around it, returned in the form
``LightningModule.configure_optimizers`` expects (:func:`with_schedule`). :class:`OptimizerOptions`
and :class:`ScheduleOptions` check the same options when a model is built, so a bad name or value
is reported before training starts; their errors name the option, and the caller adds its
prefix (``model.``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from torch import nn
from torch.optim import Optimizer

from workbench.errors import WorkbenchError

OPTIMIZERS = ("sgd", "adam", "adamw", "amsgrad")
SCHEDULES = ("none", "step", "cosine", "onecycle")


def _unknown(value: object, allowed: tuple[str, ...]) -> str:
    return f"unknown {value!r}; allowed: {', '.join(allowed)}"


class OptimizerOptions(BaseModel):
    """The options of :func:`create_optimizer`, checked.

    Attributes:
        optimizer: sgd, adam, adamw or amsgrad (Adam with the AMSGrad variant).
        lr: learning rate, positive and finite.
        weight_decay: L2 penalty (decoupled for adamw).
        momentum: SGD momentum.
        nesterov: Nesterov momentum (SGD; needs ``momentum > 0``).
        betas: the Adam variants' moment decay rates.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        if value not in OPTIMIZERS:
            raise ValueError(_unknown(value, OPTIMIZERS))
        return value

    @field_validator("lr")
    @classmethod
    def _positive_finite(cls, value: float) -> float:
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"must be a positive finite number, got {value}")
        return value

    @field_validator("nesterov")
    @classmethod
    def _with_momentum(cls, value: bool, info: ValidationInfo) -> bool:
        momentum = info.data.get("momentum", 0.0)
        if value and info.data.get("optimizer") == "sgd" and not momentum > 0:
            raise ValueError(f"needs momentum > 0, got {momentum}")
        return value


class ScheduleOptions(BaseModel):
    """The options of :func:`with_schedule`, checked.

    Attributes:
        schedule: none, step, cosine or onecycle.
        warmup_epochs: epochs of linear warm-up from a tenth of the rate (not with onecycle,
            which warms up by itself).
        step_size: epochs between the decays of ``step``.
        gamma: the decay factor of ``step``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str = "none"
    warmup_epochs: int = 0
    step_size: int = 10
    gamma: float = 0.1

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        if value not in SCHEDULES:
            raise ValueError(_unknown(value, SCHEDULES))
        return value

    @field_validator("warmup_epochs")
    @classmethod
    def _not_with_onecycle(cls, value: int, info: ValidationInfo) -> int:
        if value and info.data.get("schedule") == "onecycle":
            raise ValueError("onecycle warms up by itself; set it to 0")
        return value


def create_optimizer(
    model_or_params: nn.Module | Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    name: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
) -> Optimizer:
    """Returns the optimizer ``name`` over a module's parameters or given parameters.

    Args:
        model_or_params: a module (all its parameters, one group) or parameters or groups.
        name: sgd, adam, adamw or amsgrad.
        lr: learning rate.
        weight_decay: L2 penalty (decoupled for adamw).
        momentum: SGD only.
        nesterov: SGD only; Nesterov momentum.
        betas: the Adam variants only.

    Raises:
        WorkbenchError: an unknown name.

    Examples:
        >>> opt = create_optimizer(nn.Linear(2, 1), "sgd", lr=0.1, nesterov=True)
        >>> type(opt).__name__, opt.defaults["momentum"]
        ('SGD', 0.9)
    """
    if name not in OPTIMIZERS:
        raise WorkbenchError(f"optimizer: {_unknown(name, OPTIMIZERS)}")
    params = model_or_params
    if isinstance(params, nn.Module):
        params = params.parameters()
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    return torch.optim.Adam(
        params, lr=lr, betas=betas, weight_decay=weight_decay, amsgrad=name == "amsgrad"
    )


def with_schedule(
    optimizer: Optimizer,
    name: str = "none",
    *,
    epochs: int = 1,
    total_steps: int | None = None,
    warmup_epochs: int = 0,
    step_size: int = 10,
    gamma: float = 0.1,
) -> Optimizer | dict[str, Any]:
    """Returns what ``configure_optimizers`` returns for ``optimizer`` under the schedule
    ``name``: the optimizer alone, or a mapping with its scheduler and interval.

    Args:
        optimizer: the optimizer; ``onecycle`` peaks at the learning rate of each group.
        name: none, step (``gamma`` every ``step_size`` epochs), cosine (annealed to zero over
            the epochs after the warm-up) or onecycle (per step, over ``total_steps``).
        epochs: the training epochs (at least 1).
        total_steps: optimizer steps of the whole run; needed by onecycle only.
        warmup_epochs: epochs of linear warm-up from a tenth of the rate before the schedule.
        step_size: the step schedule's period in epochs.
        gamma: the step schedule's factor.

    Raises:
        WorkbenchError: an unknown name.
        ValueError: onecycle without ``total_steps``.
    """
    if name not in SCHEDULES:
        raise WorkbenchError(f"schedule: {_unknown(name, SCHEDULES)}")
    lr_scheduler = torch.optim.lr_scheduler
    if name == "none" and not warmup_epochs:
        return optimizer
    if name == "onecycle":
        if total_steps is None:
            raise ValueError("with_schedule: onecycle needs total_steps")
        peaks = [group["lr"] for group in optimizer.param_groups]
        scheduler = lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
    if name == "step":
        main = lr_scheduler.StepLR(optimizer, step_size, gamma)
    elif name == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, max(1, epochs - warmup_epochs))
    else:
        main = lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    if warmup_epochs:
        warmup = lr_scheduler.LinearLR(optimizer, 0.1, 1.0, warmup_epochs)
        main = lr_scheduler.SequentialLR(optimizer, [warmup, main], [warmup_epochs])
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": main, "interval": "epoch"}}
