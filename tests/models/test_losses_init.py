"""Init schemes, loading backbone weights from checkpoints, and the losses."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import WorkbenchError
from workbench.models import (
    CLASSIFICATION_LOSSES,
    DEPTH_LOSSES,
    INIT_SCHEMES,
    build_backbone,
    classification_loss,
    depth_loss,
    initialize,
    load_backbone_weights,
)


class _Classifier(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.backbone = build_backbone("resnet", 3, width=8, depth=3)
        self.head = nn.Linear(self.backbone.out_channels, classes)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_init_schemes_set_expected_weight_statistics(scheme):
    torch.manual_seed(0)
    layer = nn.Conv2d(64, 128, 3)
    norm = nn.BatchNorm2d(4)
    nn.init.normal_(norm.weight)
    initialize(nn.Sequential(layer, norm), scheme)
    fan_in, fan_out = 64 * 9, 128 * 9
    gain = math.sqrt(2) if scheme.startswith("he") else 1.0
    fan = fan_in if scheme.startswith("he") else (fan_in + fan_out) / 2
    assert layer.weight.std().item() == pytest.approx(gain / math.sqrt(fan), rel=0.03)
    assert abs(layer.weight.mean().item()) < 0.01 * gain / math.sqrt(fan) * 10
    if scheme.endswith("uniform"):
        bound = gain * math.sqrt(3 / fan)
        assert layer.weight.abs().max().item() <= bound
    assert torch.equal(layer.bias, torch.zeros(128))
    assert torch.equal(norm.weight, torch.ones(4)) and torch.equal(norm.bias, torch.zeros(4))


def test_initialize_keeps_biases_unless_asked_and_rejects_unknown_scheme():
    layer = nn.Linear(8, 4)
    nn.init.constant_(layer.bias, 0.5)
    initialize(layer, "xavier_normal", zero_bias=False)
    assert torch.equal(layer.bias, torch.full((4,), 0.5))
    with pytest.raises(WorkbenchError, match="he_normal, he_uniform"):
        initialize(layer, "orthogonal")


def _save(path, model: nn.Module) -> None:
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)


def test_load_backbone_weights_round_trip(tmp_path):
    path = tmp_path / "trained.ckpt"
    trained = _Classifier(10)
    _save(path, trained)
    fresh = build_backbone("resnet", 3, width=8, depth=3)
    assert load_backbone_weights(fresh, str(path)) == []
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, trained.backbone.state_dict()[key])


def test_load_backbone_weights_skips_head_of_another_shape(tmp_path):
    path = tmp_path / "trained.ckpt"
    trained = _Classifier(10)
    _save(path, trained)
    fresh = _Classifier(5)
    head_before = fresh.head.weight.clone()
    assert load_backbone_weights(fresh, path, prefix="") == ["head.weight", "head.bias"]
    assert torch.equal(fresh.head.weight, head_before)
    assert torch.equal(fresh.backbone.stem[0].weight, trained.backbone.stem[0].weight)


def test_load_backbone_weights_rejects_mismatched_models(tmp_path):
    path = tmp_path / "trained.ckpt"
    _save(path, _Classifier(10))
    with pytest.raises(WorkbenchError, match="trained.ckpt: no state_dict entry under prefix"):
        load_backbone_weights(build_backbone("resnet", 3), path, prefix="encoder.")
    with pytest.raises(WorkbenchError, match="missing blocks.3"):
        load_backbone_weights(build_backbone("resnet", 3, width=8, depth=4), path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "half"])
def test_corrupt_checkpoint_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "broken.ckpt"
    if content == "half":
        _save(path, _Classifier(10))
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(WorkbenchError, match="broken.ckpt: not a readable checkpoint") as error:
        load_backbone_weights(build_backbone("resnet", 3), path)
    assert "\n" not in str(error.value)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(WorkbenchError, match="no such checkpoint file"):
        load_backbone_weights(nn.Linear(2, 2), tmp_path / "absent.ckpt")


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    focal = classification_loss("focal", focal_gamma=0.0)(logits, target)
    torch.testing.assert_close(focal, F.cross_entropy(logits, target))
    focused = classification_loss("focal", focal_gamma=2.0)(logits, target)
    assert 0 < focused < focal


def test_label_smoothing_mixes_in_the_uniform_target():
    torch.manual_seed(0)
    logits, target = torch.randn(16, 5), torch.randint(0, 5, (16,))
    smoothing = 0.2
    loss = classification_loss("cross_entropy", label_smoothing=smoothing)(logits, target)
    log_probs = logits.log_softmax(dim=1)
    nll = -log_probs.gather(1, target[:, None]).mean()
    uniform = -log_probs.mean()
    torch.testing.assert_close(loss, (1 - smoothing) * nll + smoothing * uniform)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: classification_loss("hinge"), "cross_entropy, focal"),
        (lambda: classification_loss("focal", label_smoothing=0.1), "cross_entropy only"),
        (lambda: classification_loss("cross_entropy", label_smoothing=1.0), "label_smoothing"),
        (lambda: classification_loss("focal", focal_gamma=-1.0), "focal_gamma"),
        (lambda: depth_loss("l3"), "l1, l2, huber"),
    ],
)
def test_bad_loss_settings_raise(call, match):
    with pytest.raises(WorkbenchError, match=match):
        call()


@pytest.mark.parametrize("name", DEPTH_LOSSES)
def test_depth_loss_ignores_masked_pixels(name):
    torch.manual_seed(0)
    pred = torch.rand(2, 1, 6, 6, requires_grad=True)
    target = torch.rand(2, 1, 6, 6) * 3
    mask = torch.rand(2, 1, 6, 6) > 0.5
    garbage = torch.where(mask, target, torch.full_like(target, float("nan")))
    loss = depth_loss(name)(pred, garbage, mask)
    reference = {
        "l1": F.l1_loss,
        "l2": F.mse_loss,
        "huber": F.huber_loss,
        "berhu": _berhu_reference,
        "silog": _silog_reference,
    }[name]
    torch.testing.assert_close(loss, reference(pred[mask], target[mask]))
    loss.backward()
    assert pred.grad.isfinite().all() and (pred.grad[~mask] == 0).all()


def _berhu_reference(pred, target):
    # Laina et al. 2016: |e| up to c = max|e| / 5, (e^2 + c^2) / 2c above
    error = (pred - target).abs()
    c = error.max().item() / 5
    return torch.stack([e if e <= c else (e**2 + c**2) / (2 * c) for e in error]).mean()


def _silog_reference(pred, target):
    # Eigen et al. 2014, lambda 0.5, predictions floored at 1 mm
    d = torch.log(pred.clamp(min=1e-3)) - torch.log(target)
    n = len(d)
    return (d**2).sum() / n - 0.5 * d.sum() ** 2 / n**2


@pytest.mark.parametrize("name", DEPTH_LOSSES)
def test_depth_loss_with_empty_mask_is_zero_with_graph(name):
    pred = torch.rand(1, 1, 4, 4, requires_grad=True)
    loss = depth_loss(name)(pred, torch.rand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.bool))
    assert loss.item() == 0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_registries_of_loss_names():
    assert CLASSIFICATION_LOSSES == ("cross_entropy", "focal")
    assert DEPTH_LOSSES == ("l1", "l2", "huber", "berhu", "silog")


def test_losses_pickle_for_spawned_workers():
    generator = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(5, 4, generator=generator), torch.tensor([0, 1, 2, 3, 0])
    pred = torch.rand(2, 3, 3, generator=generator)
    target = torch.rand(2, 3, 3, generator=generator)
    mask = target > 0.3
    cases = [(classification_loss(name), (logits, labels)) for name in CLASSIFICATION_LOSSES]
    cases += [(depth_loss(name), (pred, target, mask)) for name in DEPTH_LOSSES]
    for loss, inputs in cases:
        copy = pickle.loads(pickle.dumps(loss))
        assert type(copy) is type(loss)
        assert torch.equal(copy(*inputs), loss(*inputs))
