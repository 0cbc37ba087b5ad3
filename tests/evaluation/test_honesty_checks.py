"""Honesty checks pass on honest numbers and catch the faults they exist for: each fault is
planted in a model (a randomised input transform, probabilities for logits, masked gradients,
an answer that depends on the batch or on float precision) and caught by its named check; the
clean model passes them all."""

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.adversarial.model import as_logits_model
from workbench.checkpoint import load_module
from workbench.errors import WorkbenchError
from workbench.evaluation import checks
from workbench.evaluation.data import load_eval_data
from workbench.evaluation.runner import Runner, make_settings


def linf(a, b):
    return (a - b).flatten(1).abs().amax(1)


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


def test_whitebox_beats_blackbox_needs_a_real_square_budget_to_pass():
    white = torch.tensor([True, True, False, False])
    black = torch.tensor([True, False, False, True])
    for queries in (100, 5000, None):  # black-box successes fail whatever the budget
        check = checks.whitebox_beats_blackbox(white, black, 0.1, queries, tolerance=0.0)
        assert check.status == "FAIL" and check.value == 0.25 and "1 of 4" in check.detail
    assert checks.whitebox_beats_blackbox(white, white, 0.1, 1000, tolerance=0.0).passed
    # no black-box success with 100 queries shows nothing: a SKIP with the reason, not a PASS
    for queries in (100, 999, None):
        weak = checks.whitebox_beats_blackbox(white, white, 0.1, queries, tolerance=0.0)
        assert weak.status == "SKIP" and weak.value == 0.0
        assert "too few to show it: a PASS needs >= 1000" in weak.detail
    assert "SKIP whitebox_beats_blackbox (value 0;" in weak.line()


class Logits(nn.Module):
    """Base of the planted faults: wraps a classifier and returns its logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = as_logits_model(model)


class Quantised(Logits):
    """Rounds its input to 5 grey levels first: input gradients are zero (masking)."""

    def forward(self, x):
        return self.model((x * 4).round() / 4)


class RandomShift(Logits):
    """Adds fresh uniform noise to its input at every call (a randomised defence)."""

    def forward(self, x):
        return self.model(x + 0.1 * (2 * torch.rand_like(x) - 1))


class Probabilities(Logits):
    """Returns softmax probabilities instead of logits."""

    def forward(self, x):
        return self.model(x).softmax(dim=1)


class BatchCentred(Logits):
    """Centres each image on the batch mean: the answer depends on the batch it comes in."""

    def forward(self, x):
        return self.model(x - x.mean(dim=0, keepdim=True) + 0.5)


class Cancelling(Logits):
    """Adds and removes 2**24: in float32 the logits are rounded to multiples of 2 (ties,
    flipped predictions), in float64 they are exact."""

    def forward(self, x):
        big = 2.0**24
        return (self.model(x) + big) - big


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():  # logits w (x - 0.5): a few units, every class predicted
        model[1].weight.normal_()
        model[1].bias.copy_(-0.5 * model[1].weight.sum(1))
    x = torch.rand(24, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    return model, x, model(x).argmax(1).detach()


def test_gradient_check_flags_zero_gradients(linear):
    model, x, y = linear
    assert checks.gradients_finite(model, x, y).passed
    masked = checks.gradients_finite(Quantised(model), x, y)
    assert masked.passed is False and masked.value == 0.0 and "masking" in masked.detail
    assert "zero at examples 0, 1, 2" in masked.detail and "and 14 more" in masked.detail


def test_gradient_check_is_not_fooled_by_a_saturated_softmax(linear):
    model, x, _ = linear
    confident = copy.deepcopy(model)
    confident[1].weight.data.mul_(1e4)
    x = x.clone().requires_grad_(True)
    logits = confident(x)
    y = logits.argmax(1).detach()
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)
    assert (ce_grad.flatten(1).abs().sum(1) == 0).all()  # the softmax saturates in float32
    assert checks.gradients_finite(confident, x.detach(), y).passed  # the margin's does not


def test_randomised_check_catches_a_random_input_transform(linear):
    model, x, _ = linear
    clean = checks.randomised(model, x)
    assert clean.passed and clean.value == 0.0
    random = checks.randomised(RandomShift(model), x)
    assert random.status == "FAIL" and random.value > checks.RANDOM_TOL
    assert "use --cascade rand" in random.detail
    # with EOT (--cascade rand) a randomised model is evaluated as it needs
    eot = checks.randomised(RandomShift(model), x, eot=True)
    assert eot.passed and "evaluated with EOT" in eot.detail


def test_softmax_check_catches_probabilities(linear):
    model, x, _ = linear
    assert checks.softmax_output(model, x).passed
    assert checks.softmax_output(nn.Sequential(model, nn.LogSoftmax(1)), x).passed
    probabilities = checks.softmax_output(Probabilities(model), x)
    assert probabilities.status == "FAIL" and probabilities.value == 1.0
    assert "returns probabilities, not logits" in probabilities.detail


def test_model_checks_leave_the_model_as_it_was(linear):
    model, x, y = linear
    noisy = nn.Sequential(nn.Dropout(0.5), model).train()
    found = checks.model_checks(noisy, x, y)
    assert [c.name for c in found] == ["randomised", "softmax_output", "gradients_finite"]
    assert all(c.passed for c in found)  # dropout is off in eval mode, as for the attacks
    assert noisy.training and all(p.requires_grad for p in noisy.parameters())


def test_reverified_catches_wrong_outcomes_and_escapes(linear):
    model, x, y = linear
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).sign()
    x_adv = (x + 0.3 * noise).clamp(0, 1)
    truth = model(x_adv).argmax(1) == y
    good = checks.reverified(model, x, x_adv, y, truth, linf, 0.3)
    assert good.passed and "fresh float64 copy" in good.detail
    robust, fooled = int(truth.nonzero()[0]), int((~truth).nonzero()[0])
    lied = truth.clone()
    lied[robust], lied[fooled] = False, True
    caught = checks.reverified(model, x, x_adv, y, lied, linf, 0.3)
    assert caught.status == "FAIL" and caught.value == 2
    assert f"examples {fooled} are reported robust but a fresh float64 copy" in caught.detail
    assert f"examples {robust} are reported fooled but a fresh float64 copy" in caught.detail
    escaped = checks.reverified(model, x, x_adv, y, truth, linf, 0.1)
    assert escaped.passed is False and "outside the eps ball" in escaped.detail


@pytest.mark.parametrize("fault", [BatchCentred, Cancelling])
def test_reverified_recomputes_in_another_batch_and_precision(linear, fault):
    model, x, y = linear
    planted = fault(model)
    with torch.no_grad():  # what an evaluation with one batch of 24 in float32 reports
        reported = planted(x).argmax(1) == y
    check = checks.reverified(planted, x, x, y, reported, linf, 0.05, batch_size=24)
    assert check.status == "FAIL" and check.value >= 1
    assert "a fresh float64 copy of the model" in check.detail
    assert all(p.dtype == torch.float32 for p in planted.parameters())  # a copy was converted


# --- the same faults caught inside a whole evaluation --------------------------------------


@pytest.fixture(scope="module")
def digits(tiny_ckpt):
    model = load_module(tiny_ckpt, ["classifier"])
    data = load_eval_data("digits", 8, 1, n=16)
    settings = make_settings(budget="quick", n=16, eps=[0.1, 0.2], attacks=["fgsm"], corruptions=[])
    return model, data.x, data.y, settings


def statuses(model, x, y, settings) -> dict[str, checks.Check]:
    report = Runner(model, x, y, settings, progress=False).run().report
    return {c["name"]: c for c in report["checks"]}


def test_a_clean_model_passes_every_check(digits):
    model, x, y, settings = digits
    found = statuses(model, x, y, replace(settings, queries=checks.MIN_SQUARE_QUERIES))
    assert {name: c["status"] for name, c in found.items()} == {
        "randomised": "PASS",
        "softmax_output": "PASS",
        "gradients_finite": "PASS",
        "sweep_monotone": "PASS",
        "chance_at_large_eps": "PASS",
        "budget_stable": "PASS",
        "whitebox_beats_blackbox": "PASS",
        "reverified": "PASS",
    }
    # with the quick budget's 100 Square queries the black-box check cannot pass
    assert statuses(model, x, y, settings)["whitebox_beats_blackbox"]["status"] == "SKIP"


@pytest.mark.parametrize(
    "fault, failed, queries",
    [
        (RandomShift, {"randomised"}, 100),
        (Quantised, {"gradients_finite", "whitebox_beats_blackbox"}, checks.MIN_SQUARE_QUERIES),
        (BatchCentred, {"reverified"}, 100),
        (Cancelling, {"reverified"}, 100),
    ],
)
def test_an_evaluation_catches_each_planted_fault(digits, fault, failed, queries):
    model, x, y, settings = digits
    found = statuses(fault(model), x, y, replace(settings, queries=queries))
    assert {name for name in failed if found[name]["status"] == "FAIL"} == failed, found
    if "reverified" in failed:
        assert "a fresh float64 copy of the model" in found["reverified"]["detail"]
    if "whitebox_beats_blackbox" in failed:
        assert f"Square had {queries} queries" in found["whitebox_beats_blackbox"]["detail"]


def test_an_evaluation_refuses_probabilities(digits):
    model, x, y, settings = digits
    planted = Probabilities(model)
    assert checks.softmax_output(planted, x).status == "FAIL"
    with pytest.raises(WorkbenchError, match="outputs probabilities"):
        Runner(planted, x, y, settings, progress=False).run()
