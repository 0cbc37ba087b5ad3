"""The classifier's per-sample loss options: online hard example mining and self-paced weights."""

from __future__ import annotations

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.models.losses import sample_weights
from workbench.training.classifier import Classifier


def model(**options) -> Classifier:
    return Classifier(image_size=8, backbone="small_cnn", backbone_options={"width": 8}, **options)


def batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(n, 10, generator=generator)).requires_grad_()
    return logits, torch.randint(0, 10, (n,), generator=generator)


@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1}, {"loss": "focal", "focal_gamma": 2.0}]
)
def test_per_sample_losses_average_to_the_loss_and_defaults_are_unchanged(options):
    net = model(**options)
    logits, target = batch()
    expected = net.cls_loss(logits, target)
    torch.testing.assert_close(net.per_sample_loss(logits, target).mean(), expected)
    assert torch.equal(net.classification_term(logits, target, training=True), expected)
    images = torch.rand(4, 1, 8, 8)
    data = {"image": images, "label": target[:4]}
    with pytest.warns(UserWarning, match="self.log"):  # no trainer attached
        step = net.training_step(data, 0)
    assert torch.equal(step, net.cls_loss(net(images)["logits"], target[:4]))


def test_hard_mining_keeps_only_the_top_k_losses():
    net = model(hard_mining=0.25)
    logits, target = batch()
    losses = net.per_sample_loss(logits, target).detach()
    top = set(losses.topk(4).indices.tolist())
    with pytest.warns(UserWarning, match="self.log"):
        loss = net.classification_term(logits, target, training=True)
    torch.testing.assert_close(loss, losses.topk(4).values.mean())
    loss.backward()
    dropped = [i for i in range(16) if i not in top]
    assert (logits.grad[dropped] == 0).all() and (logits.grad[list(top)].abs().sum(1) > 0).all()
    # evaluation keeps the plain mean
    assert torch.equal(net.classification_term(logits, target), net.cls_loss(logits, target))


def test_self_paced_weights_drop_high_loss_samples_early_and_admit_them_later():
    logits, target = batch()
    losses = model().per_sample_loss(logits, target).detach()
    threshold = float(losses.median())
    net = model(self_paced=threshold, self_paced_growth=2.0)
    easy = losses < threshold
    assert easy.sum() == 7
    with pytest.warns(UserWarning, match="self.log"):  # epoch 0 without a trainer
        loss = net.classification_term(logits, target, training=True)
    torch.testing.assert_close(loss, losses[easy].sum() / 16)
    loss.backward()
    assert (logits.grad[~easy] == 0).all() and (logits.grad[easy].abs().sum(1) > 0).all()
    weighting = {"self_paced": threshold, "self_paced_growth": 2.0}
    epochs = [sample_weights(losses, epoch, **weighting) for epoch in range(8)]
    kept = [int((w > 0).sum()) for w in epochs]
    assert kept == sorted(kept) and kept[0] == easy.sum() and kept[-1] == 16  # lambda doubles
    assert torch.equal(epochs[-1], torch.full((16,), 1 / 16))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"hard_mining": 0.0}, "model.hard_mining: must be in (0, 1]"),
        ({"self_paced": -1.0}, "model.self_paced: must be positive"),
        ({"self_paced": 1.0, "self_paced_growth": 0.5}, "model.self_paced_growth: must be >= 1"),
        ({"self_paced": 1.0, "hard_mining": 0.5}, "set only one"),
    ],
)
def test_bad_loss_options_are_named(options, message):
    with pytest.raises(WorkbenchError) as error:
        model(**options)
    assert message in str(error.value)
