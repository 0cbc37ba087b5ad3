"""Expectation over transformation: random kornia transforms and paired render conditions."""

from __future__ import annotations

import kornia
import kornia.augmentation as K
import numpy as np
import pytest
import torch
from torch import nn

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.eot import EOTModel, condition_eot_attack, paired_batch
from workbench.adversarial.model import LogitsModel
from workbench.adversarial.threat import ThreatModel
from workbench.data.sources import DigitsSource
from workbench.errors import WorkbenchError


def small_moves() -> nn.Module:
    """Viewpoint and lighting changes an 8x8 digit survives (clean error ~8% under them)."""
    return nn.Sequential(
        K.RandomAffine(degrees=8.0, translate=(0.06, 0.06), p=1.0),
        K.ColorJiggle(brightness=0.1, contrast=0.2, p=1.0),
    )


@pytest.fixture(scope="module")
def test_digits() -> tuple[torch.Tensor, torch.Tensor]:
    source = DigitsSource("test")
    images = torch.from_numpy(np.ascontiguousarray(source._images.transpose(0, 3, 1, 2)))
    return images[:200], torch.from_numpy(source.labels())[:200]


def fooled_under_draws(model, x, y, seed: int, draws: int = 16) -> float:
    """Returns the fraction of (image, random transform) pairs the model gets wrong."""
    judge = EOTModel(model, transform=small_moves(), samples=draws, seed=seed)
    logits = LogitsModel(model).eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        moved = judge.transform(x.repeat(draws, 1, 1, 1)).clamp(0, 1)
        pred = logits(moved).argmax(dim=1).view(draws, -1)
    return (pred != y).float().mean().item()


def test_eot_examples_survive_transforms_better_than_plain_pgd(digits_model, test_digits):
    x, y = test_digits
    threat = ThreatModel("linf", 0.1)
    plain = build_attack("pgd", digits_model, threat, steps=20)(x, y)
    eot_model = EOTModel(digits_model, transform=small_moves(), samples=16)
    eot = build_attack("pgd", eot_model, threat, steps=20)(x, y)
    threat.assert_within(eot, x)
    for seed in (5, 99):  # draws the attack never saw
        assert fooled_under_draws(digits_model, eot, y, seed) > (
            fooled_under_draws(digits_model, plain, y, seed) + 0.02
        )


def test_eot_model_averages_reproducible_draws(digits_model, test_digits):
    x = test_digits[0][:8]
    eot = EOTModel(digits_model, samples=4, seed=1).eval()
    with torch.no_grad():
        first, second = eot(x), eot(x)
        eot.reseed(1)
        again = eot(x)
    assert first.shape == (8, 10)
    assert torch.equal(first, again) and not torch.equal(first, second)
    same = EOTModel(digits_model, transform=nn.Identity(), samples=3).eval()
    with torch.no_grad():
        assert torch.allclose(same(x), LogitsModel(digits_model).eval()(x), atol=1e-5)
    digits_model.train()
    with pytest.raises(WorkbenchError, match="samples"):
        EOTModel(digits_model, samples=0)


def test_eot_attack_is_deterministic_given_the_seed(digits_model, test_digits):
    x, y = test_digits[0][:16], test_digits[1][:16]
    eot = EOTModel(digits_model, samples=2)
    attack = build_attack("pgd", eot, ThreatModel("linf", 0.1), steps=3, seed=4)
    assert torch.equal(attack(x, y), attack(x, y))


def conditions_of(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same digits under four conditions (stand-ins for paired renders): as they are,
    half a pixel to the right (viewpoint), blurred (focus) and darker (lighting)."""
    shift = torch.tensor([[0.5, 0.0]]).repeat(len(x), 1)
    return {
        "day": x,
        "right": kornia.geometry.transform.translate(x, shift),
        "blur": kornia.filters.gaussian_blur2d(x, (3, 3), (0.6, 0.6)),
        "dusk": 0.8 * x,
    }


def test_one_perturbation_fools_across_conditions(digits_model, test_digits):
    x, y = test_digits
    conditions = conditions_of(x)
    threat = ThreatModel("linf", 0.06)
    result = condition_eot_attack(digits_model, conditions, y, threat, steps=10)
    assert set(result.adversarial) == set(conditions) and result.delta.shape == x.shape
    for name, images in conditions.items():
        threat.assert_within(result.adversarial[name], images)
        assert torch.allclose(
            result.adversarial[name], (images + result.delta).clamp(0, 1), atol=1e-6
        )
    fooled = torch.stack(list(result.fooled.values()))
    # PGD on the day images alone, its perturbation carried to the other lightings
    delta = build_attack("pgd", digits_model, threat, steps=10)(x, y) - x
    model = LogitsModel(digits_model).eval()
    with torch.no_grad():
        carried = torch.stack(
            [model((v + delta).clamp(0, 1)).argmax(dim=1) != y for v in conditions.values()]
        )
    digits_model.train()
    assert fooled.float().mean() > carried.float().mean() + 0.03
    assert fooled.all(dim=0).float().mean() >= carried.all(dim=0).float().mean()
    assert all(m.training for m in digits_model.modules())


def test_condition_attack_checks_its_input(digits_model, test_digits):
    x, y = test_digits[0][:8], test_digits[1][:8]
    threat = ThreatModel("linf", 0.1)
    with pytest.raises(WorkbenchError, match="at least one condition"):
        condition_eot_attack(digits_model, {}, y, threat)
    with pytest.raises(WorkbenchError, match="condition 'b' has shape"):
        condition_eot_attack(digits_model, {"a": x, "b": x[:4]}, y, threat)
    with pytest.raises(WorkbenchError, match="float32"):
        condition_eot_attack(digits_model, {"a": x.double()}, y, threat)


class FakeDataset:
    """Stands in for a rendered dataset: ``ds[i]`` -> rgb uint8 H x W x 3 and the sample JSON."""

    def __init__(self, rgb: np.ndarray, labels: list[int]) -> None:
        self.rgb, self.labels = rgb, labels

    def __getitem__(self, index: int) -> dict:
        return {"rgb": self.rgb[index], "meta": {"label": self.labels[index]}}


def test_paired_batch_loads_conditions_as_attack_ready_tensors():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    paired = {
        "clear": FakeDataset(rgb, [0, 1, 2, 3, 4]),
        "fog": FakeDataset(255 - rgb, [0, 1, 2, 3, 4]),
    }
    images, labels = paired_batch(paired, [4, 1], image_size=8, channels=1)
    assert labels.tolist() == [4, 1]
    assert images["fog"].shape == (2, 1, 8, 8) and images["fog"].dtype == torch.float32
    assert 0 <= images["clear"].min() and images["clear"].max() <= 1
    full, _ = paired_batch(paired, [0])
    assert torch.allclose(full["clear"][0], torch.from_numpy(rgb[0]).permute(2, 0, 1) / 255.0)
    paired["fog"] = FakeDataset(rgb, [9, 9, 9, 9, 9])
    with pytest.raises(WorkbenchError, match="labels differ"):
        paired_batch(paired, [0])
