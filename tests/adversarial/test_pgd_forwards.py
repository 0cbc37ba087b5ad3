"""PGD costs one forward pass per step (no extra pass for the last iterate) and fools exactly the
examples that the previous behaviour, which ranked every iterate with its own forward pass,
fooled: checked against a reference loop written out here."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.threat import ThreatModel

EPS = 0.03  # small enough that many digits survive every restart


class Counter(nn.Module):
    """Counts the forward calls of the wrapped classifier (and the batch size of each)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(x))
        return self.model(x)["logits"]


@pytest.fixture()
def model(digits_model):
    """An eval-mode copy of the shared model (the reference loop runs it as the attack does)."""
    return copy.deepcopy(digits_model).eval()


def reference_pgd(model, x, y, eps, steps, restarts, seed):
    """The previous PGD, written out: every iterate, the last one included, is ranked by a
    forward pass of its own (misclassified first, then the highest cross-entropy); restarts
    attack the examples still standing. Returns the best iterates, the last iterates of the
    examples' last run, and the number of forward passes."""
    threat = ThreatModel("linf", eps)
    generator = torch.Generator().manual_seed(seed)
    size = 2.5 * eps / steps
    best_x, last_x = x.clone(), x.clone()
    best_loss = torch.full((len(x),), float("-inf"))
    best_wrong = torch.zeros(len(x), dtype=torch.bool)
    forwards = 0
    index = torch.arange(len(x))
    for _ in range(restarts):
        if len(index) == 0:
            break
        xs, ys = x[index], y[index]
        x_adv = threat.project(threat.random_start(xs, generator), xs)
        for step in range(steps + 1):
            with torch.enable_grad():
                point = x_adv.detach().requires_grad_(True)
                logits = model(point)["logits"]
                forwards += 1
                loss = F.cross_entropy(logits, ys, reduction="none")
                (grad,) = torch.autograd.grad(loss.sum(), point)
            wrong = logits.argmax(1) != ys
            old_wrong, old_loss = best_wrong[index], best_loss[index]
            better = (wrong & ~old_wrong) | ((wrong == old_wrong) & (loss.detach() > old_loss))
            best_x[index[better]] = x_adv[better]
            best_loss[index[better]] = loss.detach()[better]
            best_wrong[index] = old_wrong | wrong
            if step < steps:
                x_adv = threat.project(x_adv + size * grad.sign(), xs)
        last_x[index] = x_adv
        index = index[~best_wrong[index]]
    return best_x, last_x, forwards


def fooled(model, x_adv, y):
    with torch.no_grad():
        return model(x_adv)["logits"].argmax(1) != y


@pytest.mark.parametrize("name", ["pgd", "mifgsm", "ssim-pgd"])
@pytest.mark.parametrize("steps", [1, 5])
def test_one_forward_per_step(name, steps, model, digits_batch):
    x, y = digits_batch
    counter = Counter(model)
    options = {"min_ssim": 0.8} if name == "ssim-pgd" else {}
    x_adv = build_attack(name, counter, ThreatModel("linf", EPS), steps=steps, **options)(x, y)
    assert counter.sizes == [len(x)] * steps
    ThreatModel("linf", EPS).assert_within(x_adv, x)


def test_restarts_add_one_forward_per_restart(model, digits_batch):
    """Every run but the last evaluates its last iterate: the restart attacks only the examples
    still standing, and that needs the last iterate's outcome."""
    x, y = digits_batch
    counter = Counter(model)
    steps, restarts = 4, 3
    attack = build_attack("pgd", counter, ThreatModel("linf", EPS), steps=steps, restarts=restarts)
    x_adv = attack(x, y)
    assert len(counter.sizes) == steps * restarts + (restarts - 1)
    runs = [counter.sizes[i * (steps + 1)] for i in range(restarts)]
    assert runs[0] == len(x) > runs[1] >= runs[2] > 0  # restarts attack the standing ones only
    ThreatModel("linf", EPS).assert_within(x_adv, x)


@pytest.mark.parametrize(("eps", "steps", "restarts"), [(EPS, 5, 1), (EPS, 4, 3), (0.08, 10, 2)])
def test_fools_exactly_what_ranking_every_iterate_fooled(eps, steps, restarts, model, digits_batch):
    x, y = digits_batch
    threat = ThreatModel("linf", eps)
    counter = Counter(model)
    attack = build_attack("pgd", counter, threat, steps=steps, restarts=restarts, seed=3)
    x_adv = attack(x, y)
    threat.assert_within(x_adv, x)
    best, last, forwards = reference_pgd(model, x, y, eps, steps, restarts, seed=3)
    ours, theirs = fooled(model, x_adv, y), fooled(model, best, y)
    assert 0 < int(theirs.sum()) < len(x)  # the comparison can tell strengths apart
    assert torch.equal(ours, theirs)  # same robust accuracy, example by example
    assert float((~ours).float().mean()) <= float((~theirs).float().mean())
    # the examples nothing fooled come back as the last iterate of their last run
    assert torch.equal(x_adv[~ours], last[~ours])
    # survivors remain, so every run happened: the previous behaviour's last forward is saved
    assert forwards == (steps + 1) * restarts
    assert len(counter.sizes) == forwards - 1
