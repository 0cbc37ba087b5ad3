"""Backbones from the registry, norms, stochastic depth and gradient checkpointing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import WorkbenchError
from workbench.models import (
    BACKBONES,
    NORMS,
    BatchRenorm2d,
    build_backbone,
    initialize,
    make_norm,
    saved_activation_bytes,
)


def _copy(model: nn.Module, **options) -> nn.Module:
    """Builds a resnet like ``model`` with other options and the same weights."""
    twin = build_backbone("resnet", 3, **options)
    twin.load_state_dict(model.state_dict())
    return twin


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", BACKBONES.names())
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 64, 64)])
def test_output_shape_matches_stride_and_channels(name, norm, shape):
    channels, height, width = shape
    model = build_backbone(name, channels, width=8, norm=norm).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    expected = (2, model.out_channels, -(-height // model.stride), -(-width // model.stride))
    assert out.shape == expected
    assert out.isfinite().all()


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", BACKBONES.names())
def test_training_steps_decrease_loss(name, norm):
    torch.manual_seed(0)
    backbone = build_backbone(name, 3, width=8, norm=norm)
    head = nn.Linear(backbone.out_channels, 4)
    model = nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
    initialize(model, "he_normal")  # as every workbench module does
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_drop_path_is_identity_at_eval_and_stochastic_in_training():
    torch.manual_seed(0)
    model = build_backbone("resnet", 3, width=8, norm="group", drop_path=0.5)
    plain = _copy(model, width=8, norm="group")
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), plain.eval()(x))
        model.train()
        first, second = model(x), model(x)
    assert not torch.allclose(first, second)
    rates = [block.drop_path.rate for block in model.blocks]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.5)


@pytest.mark.parametrize("norm", ["batch", "batch_renorm"])
def test_checkpointing_keeps_outputs_gradients_and_running_stats(norm):
    torch.manual_seed(0)
    model = build_backbone("resnet", 3, depth=6, width=8, norm=norm, drop_path=0.3)
    checkpointed = _copy(model, depth=6, width=8, norm=norm, drop_path=0.3, checkpointing=True)
    x = torch.randn(4, 3, 16, 16)
    outputs, grads = [], []
    for net in (model, checkpointed):
        torch.manual_seed(1)
        out = net(x)
        out.square().mean().backward()
        outputs.append(out.detach())
        grads.append([p.grad for p in net.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1])
    for plain_grad, checkpointed_grad in zip(*grads, strict=True):
        torch.testing.assert_close(plain_grad, checkpointed_grad)
    for plain_buffer, checkpointed_buffer in zip(
        model.buffers(), checkpointed.buffers(), strict=True
    ):
        torch.testing.assert_close(plain_buffer, checkpointed_buffer)


def test_checkpointing_saves_activation_memory():
    model = build_backbone("resnet", 3, depth=6, width=8)
    checkpointed = _copy(model, depth=6, width=8, checkpointing=True)
    x = torch.randn(2, 3, 32, 32)
    plain_bytes = saved_activation_bytes(model, x)
    checkpointed_bytes = saved_activation_bytes(checkpointed, x)
    assert 0 < checkpointed_bytes < 0.5 * plain_bytes


def test_resnet_depth_as_list_or_total():
    assert [len(build_backbone("resnet", 1, depth=d).blocks) for d in (3, 7, [1, 2, 3])] == [
        3,
        7,
        6,
    ]
    with pytest.raises(WorkbenchError, match="depth"):
        build_backbone("resnet", 1, depth=[1, 2])


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("vgg", {}, "known: fpn, resnet, small_cnn, unet"),
        ("resnet", {"norm": "layer"}, "norm must be one of batch, group, batch_renorm, none"),
        ("small_cnn", {"dropout": 1.5}, "dropout"),
        ("resnet", {"drop_path": -0.1}, "drop_path"),
        ("resnet", {"norm": "group", "groups": 3}, "groups=3"),
        ("small_cnn", {"drop_path": 0.1}, "drop_path: not an option of backbone 'small_cnn'"),
        ("small_cnn", {"width": 0}, "width"),
    ],
)
def test_bad_names_and_options_raise_one_line_errors(name, options, match):
    with pytest.raises(WorkbenchError, match=match) as error:
        build_backbone(name, 3, **options)
    assert "\n" not in str(error.value)


def test_batch_renorm_uses_running_stats_at_eval():
    norm = BatchRenorm2d(3)
    norm.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
    norm.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    x = torch.randn(2, 3, 5, 5)
    expected = (x - norm.running_mean[:, None, None]) / (
        norm.running_var[:, None, None] + norm.eps
    ).sqrt()
    torch.testing.assert_close(norm.eval()(x), expected)


def test_batch_renorm_trains_like_batch_norm_until_running_stats_diverge():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4) * 2 + 1
    renorm, batch = BatchRenorm2d(3), nn.BatchNorm2d(3)
    with torch.no_grad():
        for layer in (renorm, batch):
            layer.running_mean.copy_(x.mean((0, 2, 3)))
            layer.running_var.copy_(x.var((0, 2, 3), unbiased=False))
        torch.testing.assert_close(renorm(x), batch(x))
        torch.testing.assert_close(renorm.running_var, batch.running_var)
        renorm.running_mean.fill_(-3.0)
        batch.running_mean.fill_(-3.0)
        assert not torch.allclose(renorm(x), batch(x), atol=1e-2)


def test_batch_renorm_gradients_flow():
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    norm = BatchRenorm2d(2)
    norm(x).pow(3).sum().backward()
    assert x.grad.isfinite().all() and norm.weight.grad.abs().sum() > 0


def test_make_norm_group_defaults():
    assert make_norm("group", 64).num_groups == 8
    assert make_norm("group", 6).num_groups == 6
    assert make_norm("group", 12).num_groups == 6
    assert isinstance(make_norm("none", 4), nn.Identity)
