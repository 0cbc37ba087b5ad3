"""SSIM and norm statistics of perturbations, and the SSIM-bounded attack."""

from __future__ import annotations

import pytest
import torch

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.perceptual import perturbation_stats, ssim, ssim_window
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError


def test_stats_of_a_known_perturbation():
    x = torch.full((2, 3, 8, 8), 0.5)
    x_adv = x.clone()
    x_adv[0, 0, 1, 1] += 0.3  # two pixels changed, one of them in two channels
    x_adv[0, 1, 1, 1] -= 0.4
    x_adv[0, 2, 5, 6] += 0.1
    stats = perturbation_stats(x, x_adv)
    assert stats["l0"].tolist() == [2.0, 0.0]
    assert stats["l2"][0] == pytest.approx((0.09 + 0.16 + 0.01) ** 0.5, abs=1e-6)
    assert stats["linf"].tolist() == pytest.approx([0.4, 0.0], abs=1e-6)
    assert stats["ssim"][1] == pytest.approx(1.0, abs=1e-6)
    assert stats["ssim"][0] < 1.0
    assert all(v.shape == (2,) for v in stats.values())


def test_ssim_falls_as_the_noise_grows():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 16, 16, generator=generator)
    noise = torch.randn(x.shape, generator=generator)
    values = [ssim(x, (x + s * noise).clamp(0, 1)).mean().item() for s in (0.01, 0.05, 0.2)]
    assert values[0] > values[1] > values[2]
    assert ssim_window(x) == 11 and ssim_window(x[..., :8, :8]) == 7
    with pytest.raises(WorkbenchError, match="window"):
        ssim(x, x, window=4)
    with pytest.raises(WorkbenchError, match="differs"):
        perturbation_stats(x, x[:2])


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 3.0)])
def test_ssim_attack_keeps_every_example_above_the_bound(
    norm, eps, digits_model, digits_batch, accuracy
):
    x, y = digits_batch
    threat = ThreatModel(norm, eps)
    plain = build_attack("pgd", digits_model, threat, steps=5)(x, y)
    assert (perturbation_stats(x, plain)["ssim"] < 0.9).any()  # the norm alone allows more
    results = {}
    for bound in (0.8, 0.9):
        attack = build_attack("ssim-pgd", digits_model, threat, steps=5, min_ssim=bound)
        x_adv = attack(x, y)
        stats = perturbation_stats(x, x_adv)
        assert all(torch.equal(stats[k], attack.last_stats[k]) for k in stats)
        assert (stats["ssim"] >= bound - 1e-4).all()
        assert (threat.distance(x_adv, x) <= eps + 1e-5).all()
        results[bound] = accuracy(digits_model, x_adv, y)
    assert results[0.8] < 0.7  # still an attack
    assert results[0.8] <= results[0.9]  # a looser bound fools at least as many


def test_ssim_attack_options_are_checked(digits_model):
    threat = ThreatModel("linf", 0.1)
    with pytest.raises(WorkbenchError, match=r"min_ssim: must be in \(0, 1\)"):
        build_attack("ssim-pgd", digits_model, threat, min_ssim=1.2)
    with pytest.raises(WorkbenchError, match="bisection"):
        build_attack("ssim-pgd", digits_model, threat, bisection=0)
