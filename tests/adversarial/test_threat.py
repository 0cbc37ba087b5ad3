"""The threat model, the logits wrapper and the boundary checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from workbench.adversarial.model import (
    LogitsModel,
    as_logits_model,
    attack_mode,
    check_batch,
    check_logits,
)
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.7)])
def test_project_lands_in_ball_and_box_and_is_idempotent(norm, eps, images):
    threat = ThreatModel(norm, eps)
    far = images + torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    projected = threat.project(far, images)
    assert (threat.distance(projected, images) <= eps + 1e-6).all()
    assert projected.min() >= 0 and projected.max() <= 1
    assert torch.allclose(threat.project(projected, images), projected, atol=1e-7)
    threat.assert_within(projected, images)
    near = threat.project(images + 1e-3, images)  # inside already: only the box clips
    assert torch.allclose(near, (images + 1e-3).clamp(0, 1))


def test_distance_in_each_norm(images):
    moved = images.clone()
    moved[0, 0, 0, 0] += 0.3
    moved[0, 1, 2, 2] -= 0.4
    assert ThreatModel("linf", 0.5).distance(moved, images)[0] == pytest.approx(0.4, abs=1e-6)
    assert ThreatModel("l2", 0.5).distance(moved, images)[0] == pytest.approx(0.5, abs=1e-6)
    assert ThreatModel("l2", 0.5).distance(moved, images)[1:].abs().max() == 0


def test_assert_within_names_what_is_outside(images):
    threat = ThreatModel("linf", 0.1)
    base = images * 0.5
    base[1, 0, 0, 0] = 0.02
    far = base.clone()
    far[0] += 0.2
    with pytest.raises(WorkbenchError, match="eps: 1 of 6 examples are outside the linf ball"):
        threat.assert_within(far, base)
    below = base.clone()
    below[1, 0, 0, 0] = -0.03
    with pytest.raises(WorkbenchError, match=r"lower/upper: .* outside \[0.0, 1.0\]"):
        threat.assert_within(below, base)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_fills_the_ball(norm, images):
    threat = ThreatModel(norm, 0.1 if norm == "linf" else 1.0)
    start = threat.random_start(images, torch.Generator().manual_seed(0))
    threat.assert_within(start, images)
    again = threat.random_start(images, torch.Generator().manual_seed(0))
    assert torch.equal(start, again)
    assert (threat.distance(start, images) > 0.5 * threat.eps).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"norm": "l1", "eps": 0.1}, "norm: unknown 'l1'; allowed: linf, l2"),
        ({"norm": "linf", "eps": 0.0}, r"eps: for linf must be in \(0, 1\]"),
        ({"norm": "linf", "eps": 2.0}, r"eps: for linf must be in \(0, 1\]"),
        ({"norm": "l2", "eps": -0.5}, "eps: for l2"),
        ({"norm": "l2", "eps": math.inf}, "eps: for l2"),
        ({"norm": "linf", "eps": 0.1, "lower": 0.5, "upper": 0.2}, "lower/upper"),
    ],
)
def test_threat_model_validation(kwargs, match):
    with pytest.raises(WorkbenchError, match=match):
        ThreatModel(**kwargs)


def test_l2_eps_checked_against_the_image_size(images):
    ThreatModel("l2", math.sqrt(3 * 64)).check_images(images)
    with pytest.raises(WorkbenchError, match=r"eps: for l2 on images of 192 values"):
        ThreatModel("l2", 14.0).check_images(images)


def test_logits_model_normalises_inside_and_reads_dicts(images):
    net = nn.Conv2d(3, 4, 8)
    wrapped = LogitsModel(
        nn.Sequential(net, nn.Flatten()), mean=[0.5, 0.4, 0.3], std=[0.2, 0.2, 0.1]
    )
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.2, 0.1]).view(1, 3, 1, 1)
    assert torch.allclose(wrapped(images), net((images - mean) / std).flatten(1), atol=1e-5)

    class Dict(nn.Module):
        def forward(self, x):
            return {"logits": x.flatten(1)[:, :5], "seg": x}

    assert LogitsModel(Dict())(images).shape == (6, 5)
    assert as_logits_model(wrapped) is wrapped
    with pytest.raises(WorkbenchError, match="mean/std: give both"):
        LogitsModel(net, mean=[0.5, 0.5, 0.5])
    with pytest.raises(WorkbenchError, match="B x K logits"):
        LogitsModel(net)(images)


def test_check_batch_messages(images):
    labels = torch.arange(6)
    check_batch(images, labels, num_classes=10)
    with pytest.raises(WorkbenchError, match="float32"):
        check_batch(images.half(), labels)
    with pytest.raises(WorkbenchError, match="NaN"):
        check_batch(images * float("nan"), labels)
    with pytest.raises(WorkbenchError, match=r"\[0, 1\]"):
        check_batch(images - 0.5, labels)
    with pytest.raises(WorkbenchError, match="one label per image"):
        check_batch(images, labels[:, None])
    with pytest.raises(WorkbenchError, match=r"labels must be in \[0, 4\]"):
        check_batch(images, labels, num_classes=5)


def test_check_logits_tells_probabilities_from_logits():
    logits = torch.randn(4, 10)
    check_logits(logits)
    check_logits(logits.log_softmax(dim=1))
    with pytest.raises(WorkbenchError, match="outputs probabilities"):
        check_logits(logits.softmax(dim=1))


def test_attack_mode_restores_modes_and_grads_even_on_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout())
    model[1].eval()
    model[0].bias.requires_grad_(False)
    with pytest.raises(ValueError), attack_mode(model):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
        raise ValueError
    assert [m.training for m in model.modules()] == [True, True, False, True]
    assert [p.requires_grad for p in model.parameters()] == [True, False, True, True]
