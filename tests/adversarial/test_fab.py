"""FAB: the exact box-constrained projection, FAB-T within eps, the threat model kept, and
agreement with torchattacks' FAB (a port of the reference) at the same budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog, minimize
from torch import nn

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.attacks.fab import project_to_hyperplane
from workbench.adversarial.model import LogitsModel
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError
from workbench.evaluation.cascade import predict


def planes(rows: int, size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random points in [0, 1], normals (some zero entries) and offsets, some out of reach."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.rand(rows, size, generator=generator)
    w = torch.randn(rows, size, generator=generator)
    w[:, :2] = 0.0
    reach = 3 * torch.rand(rows, generator=generator)
    b = (w * torch.rand(rows, size, generator=generator)).sum(1) * reach
    return t, w, b


def smallest_step(t: np.ndarray, w: np.ndarray, b: float, norm: str, lower: float, upper: float):
    """The smallest step onto the hyperplane inside the box, by a generic solver."""
    n = len(t)
    bounds = list(zip(lower - t, upper - t, strict=True))
    if norm == "linf":  # variables d, s: minimise s with -s <= d_i <= s
        cost = np.r_[np.zeros(n), 1.0]
        rows = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
        found = linprog(cost, A_ub=rows, b_ub=np.zeros(2 * n), A_eq=np.r_[w, 0.0][None],
                        b_eq=[b - w @ t], bounds=[*bounds, (0, None)])  # fmt: skip
        return found.x[:n]
    plane = {"type": "eq", "fun": lambda d: w @ (t + d) - b, "jac": lambda d: w}
    found = minimize(lambda d: d @ d, np.zeros(n), jac=lambda d: 2 * d, bounds=bounds,
                     constraints=[plane], method="SLSQP", options={"ftol": 1e-12})  # fmt: skip
    return found.x


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("box", [(0.0, 1.0), (0.1, 0.8)])
def test_projection_is_the_smallest_step_onto_the_plane_inside_the_box(norm, box):
    lower, upper = box
    t, w, b = planes(12, 6, seed=1)
    t = t.clamp(lower, upper)
    inside = (t + 0.4 * (torch.rand(t.shape) - 0.5)).clamp(lower, upper)
    b = (w * inside).sum(1)  # the plane holds a point of the box near t
    d = project_to_hyperplane(t, w, b, norm, lower, upper).double()
    moved = t.double() + d
    assert ((moved >= lower - 1e-6) & (moved <= upper + 1e-6)).all()
    assert torch.allclose((w.double() * moved).sum(1), b.double(), atol=1e-5)
    for i in range(len(t)):
        best = smallest_step(*(v[i].double().numpy() for v in (t, w)), float(b[i]), norm,
                             lower, upper)  # fmt: skip
        ours = d[i].numpy()
        order = np.inf if norm == "linf" else 2
        assert np.linalg.norm(ours, order) <= np.linalg.norm(best, order) + 1e-5


def test_projection_out_of_reach_goes_to_the_closest_corner():
    t = torch.tensor([[0.2, 0.7, 0.5]])
    w = torch.tensor([[1.0, -2.0, 0.0]])
    d = project_to_hyperplane(t, w, torch.tensor([10.0]), "linf")
    assert torch.allclose(d, torch.tensor([[0.8, -0.7, 0.0]]))  # as far as the box allows
    d = project_to_hyperplane(t, w, torch.tensor([10.0]), "l2")
    assert torch.allclose(d, torch.tensor([[0.8, -0.7, 0.0]]))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_matches_the_reference(norm):
    fab = pytest.importorskip("torchattacks.attacks.fab")
    reference = fab.projection_linf if norm == "linf" else fab.projection_l2
    for size in (5, 64, 300):
        t, w, b = planes(50, size, seed=size)
        ours = project_to_hyperplane(t, w, b, norm)
        theirs = reference(t.clone(), w.clone(), b.clone())
        assert torch.allclose(ours, theirs, atol=1e-5)


def test_fab_t_finds_adversarials_within_eps(digits_model, digits_batch, accuracy):
    x, y = digits_batch
    threat = ThreatModel("linf", 0.15)
    attack = build_attack("fab", digits_model, threat, targeted=True, steps=20, target_classes=9)
    x_adv = attack(x, y)
    fooled = predict(digits_model, x_adv, 64) != y
    assert fooled.float().mean() >= 0.8
    assert (threat.distance(x_adv, x) <= 0.15 + 1e-6).all()
    assert torch.equal(x_adv[~fooled], x[~fooled])  # a miss comes back as the clean image
    untargeted = build_attack("fab", digits_model, threat, steps=20)(x, y)
    assert accuracy(digits_model, x_adv, y) <= accuracy(digits_model, untargeted, y)


@pytest.mark.parametrize("norm, eps", [("linf", 0.01), ("linf", 0.08), ("l2", 0.3), ("l2", 1.5)])
def test_fab_never_leaves_the_threat_model(digits_model, digits_batch, norm, eps):
    x, y = digits_batch
    threat = ThreatModel(norm, eps)
    for targeted in (False, True):
        attack = build_attack("fab", digits_model, threat, targeted=targeted, steps=10,
                              restarts=2, target_classes=3)  # fmt: skip
        x_adv = attack(x[:32], y[:32])
        assert (threat.distance(x_adv, x[:32]) <= eps + 1e-6).all()
        assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_fab_with_given_targets_reaches_them(digits_model, digits_batch):
    x, y = digits_batch
    target = (y + 1) % 10
    attack = build_attack("fab", digits_model, ThreatModel("l2", 2.0), targeted=True, steps=20)
    x_adv = attack(x, y, target)
    pred = predict(digits_model, x_adv, 64)
    changed = (x_adv != x).flatten(1).any(1)
    assert changed.float().mean() > 0.3  # reaching one given class is harder than any other
    assert (pred[changed] == target[changed]).all()


@pytest.mark.parametrize("classes", [2, 3])
def test_fab_attacks_models_with_few_classes(classes):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))
    x = torch.rand(32, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    threat = ThreatModel("linf", 0.3)
    for targeted in (False, True):
        x_adv = build_attack("fab", model, threat, targeted=targeted, steps=10)(x, y)
        with torch.no_grad():
            assert (model(x_adv).argmax(1) != y).float().mean() > 0.9


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("alpha_max", 1.5, "alpha_max: must be in [0, 1], got 1.5"),
        ("eta", 0.0, "eta: must be positive, got 0.0"),
        ("beta", 0.0, "beta: must be in (0, 1], got 0.0"),
        ("target_classes", 0, "target_classes: must be a positive integer, got 0"),
        ("steps", 0, "steps: must be a positive integer, got 0"),
    ],
)
def test_bad_options_are_one_line(digits_model, option, value, message):
    with pytest.raises(WorkbenchError) as error:
        build_attack("fab", digits_model, ThreatModel("linf", 0.1), **{option: value})
    assert str(error.value) == message


@pytest.mark.parametrize("norm, eps, targeted", [("linf", 0.1, True), ("l2", 1.0, False)])
def test_fab_agrees_with_torchattacks(digits_model, digits_batch, accuracy, norm, eps, targeted):
    """Same model, examples and budget (20 steps, 1 run, 9 target classes): the reference runs
    deterministically from the clean point, so robust accuracy agrees to an example."""
    torchattacks = pytest.importorskip("torchattacks")
    x, y = digits_batch
    ours = build_attack("fab", digits_model, ThreatModel(norm, eps), targeted=targeted, steps=20)
    logits = LogitsModel(digits_model)
    theirs = torchattacks.FAB(logits, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, steps=20,
                              n_restarts=1, multi_targeted=targeted, n_classes=10)  # fmt: skip
    ours_acc = accuracy(digits_model, ours(x, y), y)
    theirs_acc = accuracy(digits_model, theirs(x, y), y)
    assert ours_acc < 0.8
    assert abs(ours_acc - theirs_acc) <= 1 / len(x) + 1e-9
