"""Honesty checks pass on honest numbers and catch the broken cases they exist for."""

import torch
from torch import nn

from workbench.evaluation import checks


def test_sweep_monotone_catches_a_rise():
    eps = [0.1, 0.05, 0.2]  # unsorted on purpose
    good = checks.sweep_monotone(eps, {"pgd": [0.5, 0.7, 0.2]}, n=100)
    assert good.passed and good.value == 0
    bad = checks.sweep_monotone(eps, {"pgd": [0.5, 0.7, 0.6]}, n=100)
    assert bad.passed is False and abs(bad.value - 0.1) < 1e-9 and "pgd at eps 0.2" in bad.detail
    # one example of slack for random starts
    assert checks.sweep_monotone(eps, {"pgd": [0.5, 0.7, 0.51]}, n=100).passed
    assert checks.sweep_monotone([0.1], {"pgd": [0.5]}, n=100).passed is None


def test_chance_and_budget_checks():
    assert checks.chance_at_large_eps(0.1, 0.5, num_classes=10, n=100).passed
    failed = checks.chance_at_large_eps(0.4, 0.5, num_classes=10, n=100)
    assert failed.passed is False and "gradient masking" in failed.detail
    assert checks.budget_stable(0.30, 0.29, "pgd", 0.1, n=100).passed
    assert checks.budget_stable(0.30, 0.20, "pgd", 0.1, n=100).passed is False


def test_whitebox_beats_blackbox_counts_per_example():
    white = torch.tensor([True, True, False, False])
    black = torch.tensor([True, False, False, True])
    check = checks.whitebox_beats_blackbox(white, black, 0.1, tolerance=0.0)
    assert check.passed is False and check.value == 0.25 and "1 of 4" in check.detail
    assert checks.whitebox_beats_blackbox(white, white, 0.1, tolerance=0.0).passed


class Quantised(nn.Module):
    """Rounds its input to 4 grey levels first: gradients through it are zero (masking)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model((x * 3).round() / 3)


def test_gradient_check_flags_zero_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    assert checks.gradients_finite(model, x, y).passed
    masked = checks.gradients_finite(Quantised(model), x, y)
    assert masked.passed is False and masked.value == 0.0 and "masking" in masked.detail


def test_reverified_catches_wrong_outcomes_and_escapes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(6, 1, 4, 4) * 0.8 + 0.1
    x_adv = (x + 0.05 * torch.randn_like(x).sign()).clamp(0, 1)
    y = model(x).argmax(1)
    truth = model(x_adv).argmax(1) == y

    def linf(a, b):
        return (a - b).flatten(1).abs().amax(1)

    assert checks.reverified(model, x, x_adv, y, truth, linf, 0.05).passed
    lied = checks.reverified(model, x, x_adv, y, ~truth, linf, 0.05)
    assert lied.passed is False and "6 fresh predictions disagree" in lied.detail
    escaped = checks.reverified(model, x, x_adv, y, truth, linf, 0.01)
    assert escaped.passed is False and "outside the eps ball" in escaped.detail
