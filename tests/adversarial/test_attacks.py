"""Every registered attack: strength, bounds, model state, targets, determinism, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from workbench.adversarial.attacks import ATTACKS, build_attack
from workbench.adversarial.attacks.apgd import period_lengths
from workbench.adversarial.model import LogitsModel
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError

# small budgets keep the suite fast; the defaults are the papers' settings
FAST = {
    "fgsm": {},
    "pgd": {"steps": 5},
    "mifgsm": {"steps": 5},
    "apgd-ce": {"steps": 10},
    "apgd-dlr": {"steps": 10},
    "cw": {"steps": 20, "binary_steps": 2},
    "deepfool": {"steps": 10},
    "fab": {"steps": 10},
    "square": {"queries": 100},
    "ssim-pgd": {"steps": 5, "min_ssim": 0.8, "bisection": 6},
}
EPS = {"linf": 0.2, "l2": 2.0}
CASES = [(name, norm) for name in sorted(ATTACKS) for norm in ATTACKS[name].norms]


def make(name: str, model: nn.Module, norm: str | None = None, **options) -> object:
    norm = norm or ATTACKS[name].norms[0]
    return build_attack(name, model, ThreatModel(norm, EPS[norm]), **{**FAST[name], **options})


def test_every_registered_attack_has_a_fast_setting():
    assert set(ATTACKS) == set(FAST)
    assert {"fgsm", "pgd", "mifgsm", "cw", "deepfool", "apgd-ce", "apgd-dlr", "square"} <= set(
        ATTACKS
    )


@pytest.mark.parametrize("name,norm", CASES)
def test_attack_lowers_accuracy_within_the_bound(name, norm, digits_model, digits_batch, accuracy):
    x, y = digits_batch
    x_adv = make(name, digits_model, norm)(x, y)
    assert x_adv.dtype == torch.float32 and x_adv.device == x.device and not x_adv.requires_grad
    assert x_adv.shape == x.shape
    threat = ThreatModel(norm, EPS[norm])
    assert (threat.distance(x_adv, x) <= EPS[norm] + 1e-5).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert accuracy(digits_model, x, y) == 1.0
    assert accuracy(digits_model, x_adv, y) < 0.6


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_eval_mode_during_and_state_restored_after(name, digits_model, digits_batch):
    x, y = digits_batch
    model = copy.deepcopy(digits_model)
    model.features[1].eval()  # mixed modes must come back exactly
    modes = {n: m.training for n, m in model.named_modules()}
    model.head.bias.requires_grad_(False)
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    pointers = {n: p.data_ptr() for n, p in model.named_parameters()}
    seen = []
    model.register_forward_pre_hook(
        lambda module, args: seen.append(
            [m.training for m in module.modules()] + [p.requires_grad for p in module.parameters()]
        )
    )
    make(name, model)(x[:16], y[:16])
    assert seen and not any(any(flags) for flags in seen)
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
    for key, value in model.state_dict().items():  # BN running stats and counter included
        assert torch.equal(value, state[key]), key
    assert {n: p.data_ptr() for n, p in model.named_parameters()} == pointers
    assert all(p.device.type == "cpu" for p in model.parameters())


class Exploding(nn.Module):
    """Fails on its second forward pass (mid-attack)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return self.model(x)


def test_modes_restored_and_error_raised_when_the_model_fails(digits_model, digits_batch):
    x, y = digits_batch
    model = Exploding(copy.deepcopy(digits_model))
    with pytest.raises(RuntimeError, match="boom"):
        make("pgd", model)(x[:8], y[:8])
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", sorted(n for n in ATTACKS if ATTACKS[n].targeted_ok))
def test_targeted_attacks_reach_the_target_more_often_than_chance(name, digits_model, digits_batch):
    x, y = digits_batch
    target = (y + 1) % 10
    norm = ATTACKS[name].norms[0]
    eps = {"linf": 0.3, "l2": 3.0}[norm]
    options = {**FAST[name], "targeted": True}
    if name == "square":
        options["queries"] = 300
    attack = build_attack(name, digits_model, ThreatModel(norm, eps), **options)
    x_adv = attack(x, y, target)
    with torch.no_grad():
        hit = (digits_model.eval()(x_adv)["logits"].argmax(dim=1) == target).float().mean()
    digits_model.train()
    assert hit > 0.3  # chance is 0.1


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_same_seed_same_examples(name, digits_model, digits_batch):
    x, y = digits_batch
    first = make(name, digits_model, seed=3)(x[:16], y[:16])
    again = make(name, digits_model, seed=3)(x[:16], y[:16])
    assert torch.equal(first, again)


@pytest.mark.parametrize("name", ["pgd", "square"])
def test_random_attacks_depend_on_the_seed(name, digits_model, digits_batch):
    x, y = digits_batch
    assert not torch.equal(
        make(name, digits_model, seed=0)(x[:16], y[:16]),
        make(name, digits_model, seed=1)(x[:16], y[:16]),
    )


class Recorder(nn.Module):
    """Records the batch size and predictions of every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x):
        logits = self.model(x)["logits"]
        self.calls.append((len(x), logits.argmax(dim=1).detach()))
        return logits


def test_pgd_one_pass_per_step_and_restarts_only_unfooled(digits_model, digits_batch, accuracy):
    x, y = digits_batch
    model = Recorder(digits_model)
    attack = build_attack("pgd", model, ThreatModel("linf", 0.08), steps=4, restarts=3)
    x_adv = attack(x, y)
    sizes = [size for size, _ in model.calls]
    assert sizes[:5] == [len(x)] * 5  # 4 steps + the final iterate
    fooled = torch.stack([pred != y for _, pred in model.calls[:5]]).any(dim=0)
    still_right = len(x) - int(fooled.sum())
    assert 0 < still_right < len(x)
    assert sizes[5] == still_right
    assert len(sizes) in (10, 14)  # runs 1 and 2: 4 steps + the final iterate; run 3: 4 steps
    assert accuracy(digits_model, x_adv, y) <= still_right / len(x)


class FoolOnce(nn.Module):
    """Predicts a wrong class for every image on its ``fool_at``-th call only; records every
    call's input and the cross-entropy of the true labels."""

    def __init__(self, model: nn.Module, y: torch.Tensor, fool_at: int) -> None:
        super().__init__()
        self.model, self.y, self.fool_at = model, y, fool_at
        self.inputs, self.losses, self.wrong = [], [], []

    def forward(self, x):
        logits = self.model(x)["logits"]
        if len(self.inputs) == self.fool_at:
            logits = logits.roll(1, dims=1)
        self.inputs.append(x.detach().clone())
        self.losses.append(nn.functional.cross_entropy(logits, self.y, reduction="none").detach())
        self.wrong.append(logits.argmax(dim=1).detach() != self.y)
        return logits


@pytest.mark.parametrize("fool_at", [2, -1])
@pytest.mark.parametrize("name", ["pgd", "mifgsm", "apgd-ce", "ssim-pgd"])
def test_best_iterate_misclassified_first_then_highest_loss(
    name, fool_at, digits_model, digits_batch
):
    x, y = digits_batch
    model = FoolOnce(digits_model, y, fool_at)
    steps = {"ssim-pgd": 5, "apgd-ce": 6}.get(name, 5)
    attack = build_attack(name, model, ThreatModel("linf", 0.03), steps=steps)
    x_adv = attack(x, y)
    wrong = torch.stack(model.wrong)  # calls x B
    if fool_at == 2:
        only_planted = wrong[2] & (wrong.sum(dim=0) == 1)
        assert only_planted.sum() > len(x) // 2
        assert torch.equal(x_adv[only_planted], model.inputs[2][only_planted])
    else:
        assert (~wrong.any(dim=0)).sum() > len(x) // 2
    losses = torch.stack(model.losses)
    rank = losses + wrong * (losses.max() - losses.min() + 1)  # misclassified first, then loss
    chosen = torch.stack(model.inputs)[rank.argmax(dim=0), torch.arange(len(x))]
    if name != "apgd-ce":
        # the PGD family returns the last, unranked iterate to examples no iterate fooled
        # (tests/adversarial/test_pgd_forwards.py); the ranking holds for the others
        keep = wrong.any(dim=0)
        x_adv, chosen = x_adv[keep], chosen[keep]
    assert torch.equal(x_adv, chosen)


def test_apgd_checkpoints_follow_the_paper():
    lengths = period_lengths(100)
    assert lengths[:3] == [22, 19, 16] and min(lengths) == 6 and sum(lengths) <= 100


def test_apgd_dlr_targets_the_likeliest_classes_without_given_targets(
    digits_model, digits_batch, accuracy
):
    x, y = digits_batch
    attack = build_attack("apgd-dlr", digits_model, ThreatModel("linf", 0.1), targeted=True,
                          steps=10, target_classes=3)  # fmt: skip
    untargeted = build_attack("apgd-dlr", digits_model, ThreatModel("linf", 0.1), steps=10)
    assert accuracy(digits_model, attack(x, y), y) <= accuracy(digits_model, untargeted(x, y), y)


def test_cw_reports_unbounded_norms_and_projects_to_eps(digits_model, digits_batch):
    x, y = digits_batch
    small = build_attack("cw", digits_model, ThreatModel("l2", 0.3), steps=20, binary_steps=2)
    x_small = small(x, y)
    assert (small.last_l2[torch.isfinite(small.last_l2)] > 0.3).any()
    assert (ThreatModel("l2", 0.3).distance(x_small, x) <= 0.3 + 1e-5).all()
    large = build_attack("cw", digits_model, ThreatModel("l2", 8.0), steps=20, binary_steps=2)
    x_large = large(x, y)
    found = torch.isfinite(large.last_l2)
    dist = ThreatModel("l2", 8.0).distance(x_large, x)
    assert torch.allclose(dist[found], large.last_l2[found], atol=1e-4)


class NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("gradient asked for")


def test_square_uses_no_gradients_and_counts_queries(digits_model, digits_batch):
    x, y = digits_batch
    model = nn.Sequential(LogitsModel(digits_model))
    model.forward = lambda images: LogitsModel(digits_model)(NoBackward.apply(images))
    with pytest.raises(RuntimeError, match="gradient asked for"):
        make("pgd", model)(x[:4], y[:4])
    attack = make("square", model, queries=50)
    x_adv = attack(x, y)
    assert attack.last_queries.max() <= 50
    fooled = digits_model.eval()(x_adv)["logits"].argmax(dim=1) != y
    digits_model.train()
    # an example stops querying once fooled (on the last query at the latest); the rest use all
    assert (attack.last_queries[~fooled] == 50).all()
    assert fooled.any() and (attack.last_queries[fooled] < 50).float().mean() > 0.5


def test_deepfool_stops_at_the_boundary(digits_model, digits_batch, accuracy):
    x, y = digits_batch
    attack = build_attack("deepfool", digits_model, ThreatModel("l2", 8.0))
    x_adv = attack(x, y)
    assert accuracy(digits_model, x_adv, y) < 0.05
    pgd = build_attack("pgd", digits_model, ThreatModel("l2", 8.0), steps=5)
    # minimal perturbations: far smaller than a PGD example's at the same budget
    assert (
        attack.last_distance.median() < 0.5 * ThreatModel("l2", 8.0).distance(pgd(x, y), x).median()
    )


# --- bad input at the library boundary ---------------------------------------------------------


@pytest.fixture
def pgd(digits_model):
    return build_attack("pgd", digits_model, ThreatModel("linf", 0.1), steps=2)


def test_float64_and_uint8_images_are_refused(pgd, digits_batch):
    x, y = digits_batch
    with pytest.raises(WorkbenchError, match="float32"):
        pgd(x.double(), y)
    with pytest.raises(WorkbenchError, match="float32"):
        pgd((x * 255).to(torch.uint8), y)


def test_images_outside_the_unit_range_are_refused(pgd, digits_batch):
    x, y = digits_batch
    with pytest.raises(WorkbenchError, match=r"x: images must be in \[0, 1\]"):
        pgd(x * 16, y)
    with pytest.raises(WorkbenchError, match="B x C x H x W"):
        pgd(x[:, 0], y)


def test_labels_that_do_not_match_the_batch_are_refused(pgd, digits_batch):
    x, y = digits_batch
    with pytest.raises(WorkbenchError, match="one label per image"):
        pgd(x, y[:-1])
    with pytest.raises(WorkbenchError, match=r"labels must be in \[0, 9\]"):
        pgd(x, y + 10)
    with pytest.raises(WorkbenchError, match="integers"):
        pgd(x, y.float())


def test_a_model_that_outputs_probabilities_is_named(digits_model, digits_batch):
    x, y = digits_batch
    softmax = nn.Sequential(LogitsModel(digits_model), nn.Softmax(dim=1))
    with pytest.raises(WorkbenchError, match="probabilities.*not logits"):
        build_attack("fgsm", softmax, ThreatModel("linf", 0.1))(x, y)


def test_unknown_attack_lists_the_known_ones(digits_model):
    with pytest.raises(WorkbenchError) as error:
        build_attack("pgdd", digits_model, ThreatModel("linf", 0.1))
    message = str(error.value)
    assert "unknown attack 'pgdd'" in message and "\n" not in message
    assert all(name in message for name in ATTACKS)


@pytest.mark.parametrize(
    "norm,eps", [("linf", 0.0), ("linf", 1.5), ("l2", -1.0), ("linf", float("nan"))]
)
def test_eps_out_of_range_is_refused(norm, eps):
    with pytest.raises(WorkbenchError, match="eps"):
        ThreatModel(norm, eps)


def test_l2_eps_larger_than_the_image_is_refused(digits_model, digits_batch):
    x, y = digits_batch
    with pytest.raises(
        WorkbenchError, match=r"eps: for l2 on images of 64 values must be in \(0, 8\]"
    ):
        build_attack("pgd", digits_model, ThreatModel("l2", 9.0))(x, y)


def test_options_norms_and_targets_are_checked(digits_model, digits_batch):
    x, y = digits_batch
    with pytest.raises(WorkbenchError, match="unknown option 'stepz'; known: .*steps"):
        build_attack("pgd", digits_model, ThreatModel("linf", 0.1), stepz=3)
    with pytest.raises(WorkbenchError, match="restarts: more than one run needs random_start"):
        build_attack("pgd", digits_model, ThreatModel("linf", 0.1), restarts=2, random_start=False)
    with pytest.raises(WorkbenchError, match="steps: must be a positive integer"):
        build_attack("apgd-ce", digits_model, ThreatModel("linf", 0.1), steps=0)
    with pytest.raises(WorkbenchError, match="supports l2"):
        build_attack("cw", digits_model, ThreatModel("linf", 0.1))
    with pytest.raises(WorkbenchError, match="untargeted only"):
        build_attack("deepfool", digits_model, ThreatModel("l2", 1.0), targeted=True)
    targeted = build_attack("pgd", digits_model, ThreatModel("linf", 0.1), targeted=True)
    with pytest.raises(WorkbenchError, match="needs target"):
        targeted(x, y)
    with pytest.raises(WorkbenchError, match="equals the true label"):
        targeted(x, y, y)
    with pytest.raises(WorkbenchError, match="pass targeted=True"):
        build_attack("pgd", digits_model, ThreatModel("linf", 0.1))(x, y, (y + 1) % 10)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_empty_batch_comes_back_empty(name, digits_model, digits_batch):
    x, y = digits_batch
    assert make(name, digits_model)(x[:0], y[:0]).shape == (0, 1, 8, 8)


@pytest.mark.parametrize("classes, targeted", [(3, True), (2, True), (2, False)])
def test_dlr_falls_back_to_cross_entropy_with_too_few_classes(classes, targeted):
    """The DLR loss needs 4 classes targeted, 3 untargeted: below, APGD-DLR is APGD on the
    (targeted) cross-entropy, step for step, so every model with 2 classes can be attacked."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % classes
    target = (y + 1) % classes if targeted else None
    threat = ThreatModel("linf", 0.1)
    dlr = build_attack("apgd-dlr", model, threat, steps=5, targeted=targeted, seed=3)(x, y, target)
    ce = build_attack("apgd-ce", model, threat, steps=5, targeted=targeted, seed=3)(x, y, target)
    assert torch.equal(dlr, ce) and not torch.equal(dlr, x)


def test_dlr_keeps_its_loss_with_enough_classes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 4
    threat = ThreatModel("linf", 0.1)
    dlr = build_attack("apgd-dlr", model, threat, steps=5, targeted=True, seed=3)(x, y, (y + 1) % 4)
    ce = build_attack("apgd-ce", model, threat, steps=5, targeted=True, seed=3)(x, y, (y + 1) % 4)
    assert not torch.equal(dlr, ce)


def test_apgd_eot_averages_the_gradients_of_several_passes():
    """A deterministic model: averaging identical gradients changes nothing, and every step
    costs ``eot_iter`` forward passes (the last step one)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(len(args[0])))
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8)
    threat = ThreatModel("linf", 0.1)
    once = build_attack("apgd-ce", model, threat, steps=5, seed=1)(x, y)
    assert len(calls) == 5 + 1
    calls.clear()
    thrice = build_attack("apgd-ce", model, threat, steps=5, seed=1, eot_iter=3)(x, y)
    assert len(calls) == 3 * 5 + 1
    assert torch.equal(once, thrice)
    with pytest.raises(WorkbenchError, match="eot_iter: must be a positive integer, got 0"):
        build_attack("apgd-dlr", model, threat, eot_iter=0)
