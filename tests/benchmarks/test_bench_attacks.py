"""benchmarks/bench_attacks.py: the references run at exactly our budget, and the README table
states the budgets and decides the targets on them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import load_benchmark
from workbench.adversarial.threat import ThreatModel
from workbench.experiments import stats

bench = load_benchmark("bench_attacks")
BUDGET = {"steps": 3, "restarts": 2, "targets": 4, "queries": 6}


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()


@pytest.fixture()
def batch(model):
    """Six images labelled with the model's own predictions (all classified correctly)."""
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, model(x).argmax(dim=1)


def test_torchattacks_runs_at_our_budget(model):
    pytest.importorskip("torchattacks")
    apgd, apgdt, fab, square = bench.torchattacks_cascade(model, 0.1, BUDGET, 10).attacks
    assert [a.steps for a in (apgd, apgdt, fab)] == [3, 3, 3]
    assert [a.n_restarts for a in (apgd, apgdt, fab)] == [2, 2, 2]
    assert apgd.loss == "ce" and fab.multi_targeted
    assert apgdt.n_target_classes == fab.n_target_classes == 4
    assert square.n_queries == 6


def test_art_runs_at_our_budget_in_autoattack_order(model, batch, monkeypatch):
    pytest.importorskip("art")
    from art.attacks.evasion import AutoProjectedGradientDescent, SquareAttack

    x, y = batch
    calls = []

    def recording(original):
        def generate(self, x, y=None, **kwargs):
            calls.append((type(self).__name__, self.max_iter, self.targeted, y.copy()))
            return original(self, x, y, **kwargs)

        return generate

    for cls in (AutoProjectedGradientDescent, SquareAttack):
        monkeypatch.setattr(cls, "generate", recording(cls.generate))
    eps = 1e-4  # nothing breaks, so every stage runs on every example
    x_adv = bench.art_cascade(model, x, y, eps, BUDGET, 10, len(x))()
    ThreatModel("linf", eps).assert_within(x_adv, x)
    kinds = [(name, steps, targeted) for name, steps, targeted, _ in calls]
    apgd = "AutoProjectedGradientDescent"
    assert kinds == [(apgd, 3, False)] + [(apgd, 3, True)] * 4 + [("SquareAttack", 6, False)]
    with torch.no_grad():
        ranked = model(x).argsort(dim=1, descending=True)
    for i, (_, _, _, targets) in enumerate(calls[1:5]):
        pairs = zip(ranked, y, strict=True)
        wrong = [[c for c in row.tolist() if c != label][i] for row, label in pairs]
        assert targets.tolist() == wrong  # the i-th most likely wrong class, as AutoAttack


def _result(ours: float, reference: float) -> dict:
    row = {
        "eps": 0.1,
        "accuracy": {"ours": ours, "torchattacks": reference, "art": reference},
        "seconds": {"ours": [1.0, 1.2], "torchattacks": [2.0, 2.2], "art": [3.0, 3.1]},
        "time_ratios": [0.5, 0.55],
        "time": stats.decide([0.5, 0.55], 1.0, "<="),
        "within": {
            ref: stats.decide([ours - reference], bench.HALF_POINT, "<=")
            for ref in bench.REFERENCES
        },
    }
    pgd = {
        "steps": 10,
        "seconds_per_step": {"ours": 0.01, "torchattacks": 0.011},
        "time_ratios": [0.9, 0.95, 0.92],
        "time": stats.decide([0.9, 0.95, 0.92], 1.0, "<="),
        "accuracy": [{"eps": 0.1, "ours": 0.3, "torchattacks": 0.31, "ours_no_higher": True}],
    }
    budget = {"steps": 10, "restarts": 1, "targets": 9, "queries": 5000}
    return {
        "n": 256,
        "batch": 256,
        "clean_acc": 0.9,
        "threads": 1,
        "budget": [budget],
        "composition": bench.COMPOSITION,
        "load_average": {"start": [1.0, 1.0, 1.0], "end": [1.0, 1.0, 1.0]},
        "runs": [{"budget": budget, "pgd": pgd, "cascade": [row]}],
    }


def test_markdown_states_the_budget_and_decides_the_targets():
    text = bench.markdown(_result(0.204, 0.2))
    assert "not a like-for-like" not in text
    assert "10 steps, 1 restart(s), 9 target classes, Square 5000 queries" in text
    assert "| 10 | 0.1 | 30.0 | 31.0 | 20.4 | 20.0 | 20.0 |" in text
    assert text.count("target <= +0.5: met") == 2
    assert "cascade time ours / torchattacks 0.53x" in text
    higher = bench.markdown(_result(0.21, 0.2))  # one point weaker than the references
    assert higher.count("target <= +0.5: **missed**") == 2
