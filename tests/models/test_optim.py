"""The optimizer and schedule factory: the same optimizers as torch's defaults, checked options
with one-line errors, and the forms Lightning's configure_optimizers takes."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from workbench.errors import WorkbenchError, option_error
from workbench.models.optim import (
    OPTIMIZERS,
    SCHEDULES,
    OptimizerOptions,
    ScheduleOptions,
    create_optimizer,
    with_schedule,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "sgd",
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        ),
        ("adam", lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.01)),
        ("adamw", lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.01)),
        ("amsgrad", lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.01, amsgrad=True)),
    ],
)
def test_each_optimizer_is_torchs_own_with_the_same_settings_and_steps(name, expected):
    ours, theirs = _net(), _net()
    made = create_optimizer(ours, name, lr=0.1, weight_decay=0.01, nesterov=name == "sgd")
    reference = expected(theirs.parameters())
    assert type(made) is type(reference)
    assert made.state_dict()["param_groups"] == reference.state_dict()["param_groups"]
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    for net, optimizer in ((ours, made), (theirs, reference)):
        for _ in range(3):
            optimizer.zero_grad()
            net(x).square().mean().backward()
            optimizer.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


def test_parameters_or_groups_are_taken_as_given():
    net = _net()
    groups = [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.5}]
    made = create_optimizer(groups, "adam", lr=0.1, betas=(0.5, 0.999))
    assert [g["lr"] for g in made.param_groups] == [0.1, 0.5]
    assert made.defaults["betas"] == (0.5, 0.999)


def test_schedules_take_the_forms_of_configure_optimizers():
    assert set(SCHEDULES) == {"none", "step", "cosine", "onecycle"}
    assert set(OPTIMIZERS) == {"sgd", "adam", "adamw", "amsgrad"}
    optimizer = create_optimizer(_net(), "sgd", lr=0.1)
    assert with_schedule(optimizer, "none") is optimizer
    cosine = with_schedule(optimizer, "cosine", epochs=5, warmup_epochs=2)
    assert cosine["optimizer"] is optimizer and cosine["lr_scheduler"]["interval"] == "epoch"
    assert isinstance(cosine["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.SequentialLR)
    optimizer = create_optimizer(_net(), "sgd", lr=0.1)
    onecycle = with_schedule(optimizer, "onecycle", total_steps=8)
    assert onecycle["lr_scheduler"]["interval"] == "step"
    assert onecycle["lr_scheduler"]["scheduler"].total_steps == 8
    with pytest.raises(ValueError, match="total_steps"):
        with_schedule(create_optimizer(_net()), "onecycle")


def test_unknown_names_are_one_line_errors_naming_the_parameter():
    with pytest.raises(WorkbenchError, match=r"^optimizer: unknown 'rmsprop'; allowed: sgd, "):
        create_optimizer(_net(), "rmsprop")
    with pytest.raises(WorkbenchError, match=r"^schedule: unknown 'linear'; allowed: none, "):
        with_schedule(create_optimizer(_net()), "linear")


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (OptimizerOptions, {"optimizer": "lion"}, "model.optimizer: unknown 'lion'; allowed: "),
        (OptimizerOptions, {"lr": float("inf")}, "model.lr: must be a positive finite number"),
        (OptimizerOptions, {"optimizer": "sgd", "momentum": 0.0, "nesterov": True},
         "model.nesterov: needs momentum > 0, got 0.0"),
        (ScheduleOptions, {"schedule": "linear"}, "model.schedule: unknown 'linear'"),
        (ScheduleOptions, {"schedule": "onecycle", "warmup_epochs": 1},
         "model.warmup_epochs: onecycle warms up by itself"),
        (ScheduleOptions, {"warmup": 1}, "model.warmup: not an option; allowed: schedule, "),
    ],
)  # fmt: skip
def test_options_name_the_field_under_the_callers_prefix(model, values, message):
    with pytest.raises(ValidationError) as exc:
        model(**values)
    assert str(option_error(exc.value, model.model_fields, "model")).startswith(message)


def test_nesterov_without_momentum_is_fine_for_the_adam_variants():
    assert OptimizerOptions(optimizer="adam", momentum=0.0, nesterov=True).nesterov
