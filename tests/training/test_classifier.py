"""The Classifier LightningModule in Python: outputs, masked dense losses, optimizers and
schedules, errors, init, transfer learning, per-source metrics, checkpoint round trips."""

from __future__ import annotations

import csv
import math
from itertools import pairwise

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_lightning.loggers import CSVLogger

from workbench.data.datamodule import MixedDataModule
from workbench.errors import WorkbenchError
from workbench.models.optim import OPTIMIZERS, SCHEDULES
from workbench.training.classifier import Classifier

SMALL = {"backbone": "small_cnn", "backbone_options": {"width": 8, "depth": 2}}
SIZE, CLASSES = 16, 10


def _model(**kwargs) -> Classifier:
    options = {
        "num_classes": CLASSES,
        "in_channels": 1,
        "image_size": SIZE,
        "source_names": ["natural"],
        **SMALL,
        **kwargs,
    }
    return Classifier(**options)


def _batch(size: int = 4, channels: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch without dense labels (seg -1, depth 0 everywhere)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(size, channels, SIZE, SIZE, generator=generator),
        "label": torch.randint(0, CLASSES, (size,), generator=generator),
        "source": torch.zeros(size, dtype=torch.long),
        "seg": torch.full((size, SIZE, SIZE), -1, dtype=torch.long),
        "depth": torch.zeros(size, SIZE, SIZE),
    }


def _trainer(max_epochs: int = 2, **kwargs) -> pl.Trainer:
    options = {
        "max_epochs": max_epochs,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
        **kwargs,
    }
    return pl.Trainer(**options)


def _digits(**kwargs) -> MixedDataModule:
    options = {
        "sources": [{"kind": "digits", "name": "natural"}],
        "image_size": SIZE,
        "batch_size": 64,
        "epoch_size": 256,
        **kwargs,
    }
    return MixedDataModule(**options)


@pytest.fixture(scope="module")
def digits() -> MixedDataModule:
    return _digits()


class _LearningRates(pl.Callback):
    """Records the first parameter group's learning rate at each epoch and batch start."""

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.batches: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epochs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(trainer.optimizers[0].param_groups[0]["lr"])


class _StepLosses(pl.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize(
    ("seg_weight", "depth_weight", "channels"),
    [(0.0, 0.0, 1), (1.0, 0.0, 1), (0.0, 0.5, 3), (0.3, 2.0, 3)],
)
def test_forward_outputs_and_shapes(seg_weight, depth_weight, channels):
    torch.manual_seed(0)
    model = _model(in_channels=channels, seg_weight=seg_weight, depth_weight=depth_weight).eval()
    with torch.no_grad():
        out = model(_batch(3, channels)["image"])
    expected = (
        {"logits"} | ({"seg"} if seg_weight else set()) | ({"depth"} if depth_weight else set())
    )
    assert set(out) == expected
    assert out["logits"].shape == (3, CLASSES)
    assert (model.seg_head is None) == (seg_weight == 0)
    assert (model.depth_head is None) == (depth_weight == 0)
    if seg_weight:
        assert out["seg"].shape == (3, CLASSES + 1, SIZE, SIZE)
    if depth_weight:
        assert out["depth"].shape == (3, SIZE, SIZE)
        assert (out["depth"] >= 0).all()
    assert all(v.isfinite().all() for v in out.values())


def test_forward_on_resnet_keeps_dense_outputs_at_input_size():
    model = _model(
        backbone="resnet",
        backbone_options={"width": 8, "depth": 2, "stages": 2},
        seg_weight=1.0,
        depth_weight=1.0,
    ).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 12, 12))
    assert out["seg"].shape == (2, CLASSES + 1, 12, 12)
    assert out["depth"].shape == (2, 12, 12)


# ----------------------------------------------------------------------------- losses


def _dense_model(**kwargs) -> Classifier:
    torch.manual_seed(0)
    return _model(seg_weight=1.0, depth_weight=1.0, **kwargs)


def test_seg_loss_is_zero_without_labels_and_sends_no_gradient_to_the_seg_head():
    model = _dense_model()
    batch = _batch(4)
    losses = model._losses(model(batch["image"]), batch)
    assert losses["seg"].item() == 0.0
    losses["total"].backward()
    grad = model.seg_head.weight.grad
    assert grad is None or torch.count_nonzero(grad) == 0
    assert torch.count_nonzero(model.head.weight.grad) > 0  # the class loss still trains


def test_seg_loss_with_some_labelled_pixels_is_positive_and_trains_the_seg_head():
    model = _dense_model()
    batch = _batch(4)
    batch["seg"][1, 2:6, 3:9] = 4
    batch["seg"][3, :, :2] = 0
    losses = model._losses(model(batch["image"]), batch)
    assert losses["seg"].item() > 0
    losses["seg"].backward()
    assert torch.count_nonzero(model.seg_head.weight.grad) > 0


def test_seg_loss_is_the_mean_over_labelled_pixels_only():
    model = _dense_model()
    batch = _batch(3)
    batch["seg"][0] = torch.randint(0, CLASSES + 1, (SIZE, SIZE))  # sample 0: fully labelled
    batch["seg"][2, 5:9, 5:9] = 7  # sample 2: a patch; sample 1: no label at all
    torch.manual_seed(1)
    out = {
        "logits": torch.randn(3, CLASSES),
        "seg": torch.randn(3, CLASSES + 1, SIZE, SIZE),
        "depth": torch.rand(3, SIZE, SIZE),
    }
    loss = model._losses(out, batch)["seg"]
    labelled = batch["seg"] >= 0
    per_pixel = F.cross_entropy(out["seg"], batch["seg"].clamp(min=0), reduction="none")
    assert loss.item() == pytest.approx(per_pixel[labelled].mean().item(), rel=1e-5)
    assert loss.item() == pytest.approx(
        F.cross_entropy(out["seg"], batch["seg"], ignore_index=-1).item(), rel=1e-5
    )
    changed = dict(out, seg=out["seg"].clone())
    changed["seg"][1] = torch.randn(CLASSES + 1, SIZE, SIZE) * 10  # unlabelled sample
    changed["seg"][2, :, :4] += 50.0  # unlabelled pixels of sample 2
    assert model._losses(changed, batch)["seg"].item() == pytest.approx(loss.item(), rel=1e-6)
    changed["seg"][2, 3, 6, 6] += 5.0  # a labelled pixel
    assert model._losses(changed, batch)["seg"].item() != pytest.approx(loss.item(), rel=1e-6)


def test_depth_loss_only_counts_pixels_with_depth():
    model = _dense_model(depth_loss="l1")
    batch = _batch(2)
    out = model(batch["image"])
    empty = model._losses(out, batch)
    assert empty["depth"].item() == 0.0
    empty["total"].backward()
    grad = model.depth_head.weight.grad
    assert grad is None or torch.count_nonzero(grad) == 0

    batch["depth"][0, 4:10, 4:10] = 3.0
    batch["depth"][1, 0, :] = 0.5
    torch.manual_seed(2)
    pred = torch.rand(2, SIZE, SIZE, requires_grad=True)
    out = {"logits": torch.randn(2, CLASSES), "seg": torch.randn(2, CLASSES + 1, SIZE, SIZE)}
    loss = model._losses({**out, "depth": pred}, batch)["depth"]
    known = batch["depth"] > 0
    expected = (pred - batch["depth"]).abs()[known].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert torch.count_nonzero(pred.grad[~known]) == 0
    assert torch.count_nonzero(pred.grad[known]) == known.sum()

    model.zero_grad()
    trained = model._losses(model(batch["image"]), batch)
    assert trained["depth"].item() > 0
    trained["total"].backward()
    assert torch.count_nonzero(model.depth_head.weight.grad) > 0


def test_classification_loss_uses_every_sample_and_total_weights_the_heads():
    model = _model(seg_weight=0.5, depth_weight=2.0)
    batch = _batch(5)
    batch["seg"][0, :3] = 2
    batch["depth"][4, 5:] = 1.5
    torch.manual_seed(3)
    out = {
        "logits": torch.randn(5, CLASSES),
        "seg": torch.randn(5, CLASSES + 1, SIZE, SIZE),
        "depth": torch.rand(5, SIZE, SIZE),
    }
    losses = model._losses(out, batch)
    assert losses["cls"].item() == pytest.approx(
        F.cross_entropy(out["logits"], batch["label"]).item(), rel=1e-6
    )
    for sample in range(5):  # samples without dense labels count for the class loss too
        changed = dict(out, logits=out["logits"].clone())
        changed["logits"][sample, batch["label"][sample]] += 3.0
        assert model._losses(changed, batch)["cls"] < losses["cls"]
    total = losses["cls"] + 0.5 * losses["seg"] + 2.0 * losses["depth"]
    assert losses["total"].item() == pytest.approx(total.item(), rel=1e-6)
    assert losses["seg"] > 0 and losses["depth"] > 0


def test_focal_and_label_smoothing_change_the_class_loss():
    torch.manual_seed(4)
    logits, labels = torch.randn(16, CLASSES) * 3, torch.randint(0, CLASSES, (16,))
    plain = _model()
    out, batch = {"logits": logits}, {"label": labels}
    ce = plain._losses(out, batch)["cls"]
    focal = _model(loss="focal", focal_gamma=2.0)._losses(out, batch)["cls"]
    smooth = _model(label_smoothing=0.2)._losses(out, batch)["cls"]
    assert ce.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    assert 0 < focal.item() < ce.item()  # (1 - p)^gamma < 1 shrinks every term
    expected = F.cross_entropy(logits, labels, label_smoothing=0.2)
    assert smooth.item() == pytest.approx(expected.item(), rel=1e-6)
    assert abs(smooth.item() - ce.item()) > 1e-3


@pytest.mark.parametrize("settings", [{"loss": "focal"}, {"label_smoothing": 0.1}])
def test_focal_and_label_smoothing_train(digits, settings):
    torch.manual_seed(0)
    model = _model(lr=0.01, schedule="none", **settings)
    trainer = _trainer(1, limit_val_batches=0)
    trainer.fit(model, digits)
    assert math.isfinite(trainer.callback_metrics["train/cls_loss"].item())
    assert trainer.global_step == 4


# ----------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize(
    ("name", "settings", "kind", "group"),
    [
        ("sgd", {"momentum": 0.8, "nesterov": True}, torch.optim.SGD,
         {"momentum": 0.8, "nesterov": True}),
        ("sgd", {"momentum": 0.5}, torch.optim.SGD, {"momentum": 0.5, "nesterov": False}),
        ("adam", {}, torch.optim.Adam, {"amsgrad": False}),
        ("adamw", {}, torch.optim.AdamW, {"amsgrad": False}),
        ("amsgrad", {}, torch.optim.Adam, {"amsgrad": True}),
    ],
)  # fmt: skip
def test_every_optimizer_trains_two_epochs(digits, name, settings, kind, group):
    torch.manual_seed(0)
    model = _model(optimizer=name, lr=0.02, weight_decay=1e-3, schedule="none", **settings)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rates = _LearningRates()
    trainer = _trainer(2, limit_val_batches=0, callbacks=[rates])
    trainer.fit(model, digits)
    (optimizer,) = trainer.optimizers
    assert type(optimizer) is kind
    params = optimizer.param_groups[0]
    assert params["weight_decay"] == 1e-3
    for key, value in group.items():
        assert params[key] == value, key
    assert not trainer.lr_scheduler_configs
    assert rates.epochs == [0.02, 0.02]
    assert trainer.global_step == 8
    assert math.isfinite(trainer.callback_metrics["train/total_loss"].item())
    after = model.state_dict()
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert not torch.equal(
        before["backbone.features.0.weight"], after["backbone.features.0.weight"]
    )


LR = 0.1


@pytest.mark.parametrize(
    ("settings", "epochs", "expected"),
    [
        ({"schedule": "none"}, 2, [LR, LR]),
        ({"schedule": "step", "step_size": 1, "gamma": 0.5}, 2, [LR, 0.5 * LR]),
        ({"schedule": "step", "step_size": 2, "gamma": 0.1}, 3, [LR, LR, 0.1 * LR]),
        ({"schedule": "cosine"}, 2, [LR, 0.5 * LR]),
        ({"schedule": "cosine"}, 3, [LR, 0.75 * LR, 0.25 * LR]),
        ({"schedule": "cosine", "warmup_epochs": 2}, 2, [0.1 * LR, 0.55 * LR]),
        ({"schedule": "cosine", "warmup_epochs": 2}, 4, [0.1 * LR, 0.55 * LR, LR, 0.5 * LR]),
        ({"schedule": "none", "warmup_epochs": 2}, 3, [0.1 * LR, 0.55 * LR, LR]),
        ({"schedule": "step", "warmup_epochs": 1, "step_size": 1, "gamma": 0.5}, 3,
         [0.1 * LR, LR, 0.5 * LR]),
    ],
)  # fmt: skip
def test_epoch_schedules_follow_the_expected_learning_rates(digits, settings, epochs, expected):
    torch.manual_seed(0)
    model = _model(optimizer="sgd", lr=LR, **settings)
    rates = _LearningRates()
    trainer = _trainer(epochs, limit_val_batches=0, callbacks=[rates])
    trainer.fit(model, digits)
    assert rates.epochs == pytest.approx(expected, rel=1e-6)
    per_epoch = len(rates.batches) // epochs
    for epoch in range(epochs):  # epoch schedules hold the rate through the epoch
        chunk = rates.batches[epoch * per_epoch : (epoch + 1) * per_epoch]
        assert chunk == pytest.approx([expected[epoch]] * per_epoch, rel=1e-6)
    if settings["schedule"] != "none" or settings.get("warmup_epochs"):
        assert trainer.lr_scheduler_configs[0].interval == "epoch"


def test_onecycle_is_stepped_per_batch(digits):
    torch.manual_seed(0)
    model = _model(optimizer="sgd", lr=LR, schedule="onecycle")
    rates = _LearningRates()
    trainer = _trainer(2, limit_val_batches=0, callbacks=[rates])
    trainer.fit(model, digits)
    assert trainer.lr_scheduler_configs[0].interval == "step"
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == 8
    lrs = rates.batches
    assert len(lrs) == 8 and len(set(lrs)) == 8  # a new rate at every batch
    assert lrs[0] == pytest.approx(LR / 25)  # OneCycleLR's default div_factor
    peak = int(np.argmax(lrs))
    assert 0 < peak < 7
    assert all(a < b for a, b in pairwise(lrs[: peak + 1]))
    assert all(a > b for a, b in pairwise(lrs[peak:]))
    assert max(lrs) <= LR * (1 + 1e-9) and lrs[-1] < lrs[0]
    assert rates.epochs == [lrs[0], lrs[4]]


def test_every_schedule_name_is_covered():
    assert set(SCHEDULES) == {"none", "step", "cosine", "onecycle"}
    assert set(OPTIMIZERS) == {"sgd", "adam", "adamw", "amsgrad"}


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({"optimizer": "rmsprop"}, ["model.optimizer", "'rmsprop'", "sgd, adam, adamw, amsgrad"]),
        ({"schedule": "linear"}, ["model.schedule", "'linear'", "none, step, cosine, onecycle"]),
        ({"backbone": "vgg", "backbone_options": {}}, ["'vgg'", "resnet", "small_cnn"]),
        ({"loss": "hinge"}, ["'hinge'", "cross_entropy, focal"]),
        ({"depth_weight": 1.0, "depth_loss": "l3"}, ["'l3'", "l1, l2, huber"]),
        ({"init": "orthogonal"}, ["'orthogonal'", "he_normal, he_uniform, xavier_normal"]),
    ],
)
def test_unknown_names_list_the_allowed_ones(settings, fragments):
    with pytest.raises(WorkbenchError) as error:
        _model(**settings)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan"), float("inf"), float("-inf")])
def test_bad_learning_rates_are_rejected(lr):
    with pytest.raises(WorkbenchError, match=r"model\.lr"):
        _model(lr=lr)


def test_nesterov_without_momentum_is_a_workbench_error_at_construction():
    # torch.optim.SGD raises a ValueError ("Nesterov momentum requires a momentum and zero
    # dampening") only when the Trainer configures the optimizer; a config error should be
    # reported up front, as for the other model settings.
    with pytest.raises(WorkbenchError, match=r"model\.(nesterov|momentum)"):
        _model(optimizer="sgd", momentum=0.0, nesterov=True)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backbone": "vgg"},
         "model.backbone: unknown backbone 'vgg'; known: fpn, resnet, small_cnn, unet"),
        ({"backbone_options": {"width": 8, "stages": 2}},
         "model.backbone_options.stages: not an option of backbone 'small_cnn'; allowed: width, "),
        ({"backbone_options": {"width": 0}},
         "model.backbone_options: width must be a positive integer; got 0"),
        ({"warmup_epochs": 1, "schedule": "onecycle"},
         "model.warmup_epochs: onecycle warms up by itself; set it to 0"),
        ({"adversarial": {"eps": 0.1, "mix": 0.5, "method": "trades"}},
         "model.adversarial.mix: only applies to method pgd (got method trades)"),
    ],
)  # fmt: skip
def test_option_errors_name_the_config_key(settings, message):
    with pytest.raises(WorkbenchError) as error:
        _model(**settings)
    assert str(error.value).startswith(message)


# ----------------------------------------------------------------------------- init


def _convs_and_linears(model: Classifier) -> dict[str, torch.Tensor]:
    return {
        name: module.weight.detach()
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))
    }


def test_he_normal_and_xavier_uniform_give_their_own_weight_statistics():
    torch.manual_seed(0)
    he = _model(init="he_normal", seg_weight=1.0)
    torch.manual_seed(0)
    xavier = _model(init="xavier_uniform", seg_weight=1.0)
    he_weights, xavier_weights = _convs_and_linears(he), _convs_and_linears(xavier)
    assert set(he_weights) == {
        "backbone.features.0",
        "backbone.features.4",
        "head",
        "seg_head",
    }
    for name, weight in he_weights.items():
        fan_in = weight[0].numel()
        fan_out = weight.shape[0] * weight[0, 0].numel()
        he_std = math.sqrt(2 / fan_in)
        xavier_std = math.sqrt(2 / (fan_in + fan_out))
        tolerance = 3 / math.sqrt(weight.numel())  # a few standard errors of the sample std
        assert weight.std().item() == pytest.approx(he_std, rel=tolerance), name
        other = xavier_weights[name]
        assert other.std().item() == pytest.approx(xavier_std, rel=tolerance), name
        assert other.abs().max().item() <= xavier_std * math.sqrt(3) + 1e-6, name
        assert not torch.equal(weight, other), name
    for model in (he, xavier):
        assert torch.count_nonzero(model.head.bias) == 0
        assert torch.count_nonzero(model.seg_head.bias) == 0
        norm = model.backbone.features[1]
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))


# ----------------------------------------------------------------------------- transfer


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, digits):
    """A 10-class model trained for one epoch, its checkpoint and its state dict."""
    torch.manual_seed(0)
    model = _model(lr=0.01, schedule="none")
    trainer = _trainer(1, limit_val_batches=0)
    trainer.fit(model, digits)
    path = tmp_path_factory.mktemp("pretrained") / "pretrained.ckpt"
    trainer.save_checkpoint(path)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def _backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}


def test_transfer_to_three_classes_loads_the_backbone_and_starts_a_new_head(pretrained):
    path, saved = pretrained
    torch.manual_seed(5)
    model = _model(num_classes=3, init_checkpoint=str(path))
    loaded = model.backbone.state_dict()
    expected = _backbone_state(saved)
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    assert model.head.weight.shape == (3, model.backbone.out_channels)
    assert model.hparams.num_classes == 3
    torch.manual_seed(5)
    fresh = _model(num_classes=3)  # the same head init, no checkpoint
    assert torch.equal(model.head.weight, fresh.head.weight)
    assert torch.count_nonzero(model.head.bias) == 0
    assert not torch.equal(fresh.backbone.features[0].weight, model.backbone.features[0].weight)
    with torch.no_grad():
        assert model.eval()(_batch(2)["image"])["logits"].shape == (2, 3)


def test_transfer_with_the_same_classes_still_starts_a_new_head(pretrained):
    path, saved = pretrained
    torch.manual_seed(6)
    model = _model(init_checkpoint=str(path))
    for key, value in _backbone_state(saved).items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    assert model.head.weight.shape == saved["head.weight"].shape
    assert not torch.equal(model.head.weight, saved["head.weight"])
    assert torch.count_nonzero(saved["head.bias"]) > 0  # trained
    assert torch.count_nonzero(model.head.bias) == 0  # fresh


def test_transfer_from_grey_to_rgb_keeps_new_weights_for_the_stem(pretrained):
    # Only the first conv's shape differs; Classifier.__init__ then reports the skipped tensors
    # with self.print, which needs an attached Trainer and raises a RuntimeError before fit.
    path, saved = pretrained
    model = _model(in_channels=3, init_checkpoint=str(path))
    assert model.backbone.features[0].weight.shape == (8, 3, 3, 3)
    for key, value in _backbone_state(saved).items():
        if not key.startswith("features.0."):
            assert torch.equal(model.backbone.state_dict()[key], value), key


def test_checkpoint_round_trip_with_weights_only(tmp_path, digits):
    torch.manual_seed(0)
    model = _model(
        class_names=[f"digit{d}" for d in range(10)],
        backbone_options={"width": 8, "depth": 2, "norm": "group", "groups": 2},
        optimizer="sgd",
        lr=0.05,
        nesterov=True,
        schedule="step",
        step_size=1,
        gamma=0.5,
        label_smoothing=0.1,
        seg_weight=0.5,
        depth_weight=0.25,
        depth_loss="huber",
        init="xavier_normal",
    )
    trainer = _trainer(1, limit_val_batches=0)
    trainer.fit(model, digits)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert stored["hyper_parameters"]["class_names"][3] == "digit3"
    loaded = Classifier.load_from_checkpoint(path, weights_only=True, map_location="cpu")
    assert dict(loaded.hparams) == dict(model.hparams)
    assert loaded.class_names == model.class_names and loaded.source_names == ["natural"]
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    image = _batch(3)["image"]
    with torch.no_grad():
        expected, got = model.eval()(image), loaded.eval()(image)
    assert expected.keys() == got.keys() == {"logits", "seg", "depth"}
    for key in expected:
        assert torch.allclose(expected[key], got[key]), key


def test_fine_tuned_checkpoint_loads_without_the_pretraining_checkpoint(
    tmp_path, pretrained, digits
):
    # init_checkpoint is saved in the hyperparameters, so load_from_checkpoint re-reads the
    # pretraining file although the state dict replaces those weights anyway.
    path, _ = pretrained
    copy = tmp_path / "pretrained_copy.ckpt"
    copy.write_bytes(path.read_bytes())
    torch.manual_seed(0)
    model = _model(init_checkpoint=str(copy))
    trainer = _trainer(1, limit_train_batches=1, limit_val_batches=0)
    fine_tuned = tmp_path / "fine_tuned.ckpt"
    trainer.fit(model, digits)
    trainer.save_checkpoint(fine_tuned)
    copy.unlink()
    loaded = Classifier.load_from_checkpoint(fine_tuned, weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ----------------------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> MixedDataModule:
    """Natural digits and an ImageFolder tree of random 8x8 PNGs, the latter not in test."""
    root = tmp_path_factory.mktemp("folder") / "scans"
    rng = np.random.default_rng(0)
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(root / str(label) / f"{i}.png")
    sources = [
        {"kind": "digits", "name": "natural"},
        {
            "kind": "imagefolder",
            "path": str(root),
            "name": "scans",
            "weights": {"train": 1, "val": 1, "test": 0},
        },
    ]
    return _digits(sources=sources)


def _mixed_model(datamodule: MixedDataModule) -> Classifier:
    torch.manual_seed(0)
    datamodule.setup()
    return _model(source_names=datamodule.source_names, class_names=datamodule.classes)


def test_validate_logs_per_source_accuracy_and_calibration(mixed):
    model = _mixed_model(mixed)
    trainer = _trainer()
    trainer.validate(model, mixed)
    metrics = trainer.callback_metrics
    for metric in ("acc", "ece"):
        for name in ("all", "natural", "scans"):
            value = metrics[f"val/{metric}/{name}"].item()
            assert 0 <= value <= 1, (metric, name)
    # the logged accuracies match a hand count over the validation set
    correct = {0: 0, 1: 0}
    total = {0: 0, 1: 0}
    model.eval()
    with torch.no_grad():
        for batch in mixed.val_dataloader():
            hits = model(batch["image"])["logits"].argmax(1) == batch["label"]
            for sid in (0, 1):
                members = batch["source"] == sid
                correct[sid] += int(hits[members].sum())
                total[sid] += int(members.sum())
    assert total == {0: 179, 1: 10}
    assert metrics["val/acc/natural"].item() == pytest.approx(correct[0] / total[0], abs=1e-6)
    assert metrics["val/acc/scans"].item() == pytest.approx(correct[1] / total[1], abs=1e-6)
    expected_all = (correct[0] + correct[1]) / (total[0] + total[1])
    assert metrics["val/acc/all"].item() == pytest.approx(expected_all, abs=1e-6)


def test_validation_over_a_few_batches_logs_only_the_sources_it_saw(mixed):
    # --trainer.limit_val_batches 2: the scans (last in the validation order) are never seen;
    # their metrics were once computed on nothing ("No samples to concatenate").
    model = _mixed_model(mixed)
    seen = {
        int(s) for b, _ in zip(mixed.val_dataloader(), range(2), strict=False) for s in b["source"]
    }
    assert seen == {0}
    trainer = _trainer(limit_val_batches=2)
    trainer.validate(model, mixed)
    metrics = trainer.callback_metrics
    assert 0 <= metrics["val/acc/natural"].item() <= 1 and "val/acc/all" in metrics
    assert not any(key.endswith("/scans") for key in metrics)


def test_test_writes_the_confusion_matrix_and_leaves_out_absent_sources(tmp_path, mixed):
    model = _mixed_model(mixed)
    logger = CSVLogger(tmp_path, name="run")
    trainer = _trainer(logger=logger)
    trainer.test(model, mixed)
    metrics = trainer.callback_metrics
    assert "test/acc/natural" in metrics and "test/acc/all" in metrics
    assert not any(key.endswith("/scans") for key in metrics if key.startswith("test/"))
    path = tmp_path / "run" / "version_0" / "confusion_test.csv"
    assert path.is_file()
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["true\\pred", *[str(d) for d in range(10)]]
    assert [row[0] for row in rows[1:]] == [str(d) for d in range(10)]
    matrix = np.array([[int(v) for v in row[1:]] for row in rows[1:]])
    assert matrix.sum() == len(mixed.datasets["test"]) == 359
    labels = mixed.datasets["test"].labels()
    assert matrix.sum(axis=1).tolist() == np.bincount(labels, minlength=10).tolist()
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test/acc/all"].item())


def test_source_names_with_dots_are_allowed():
    # An ImageFolder source is named after its folder by default ("scans_v1.2"); the metric
    # ModuleDict keys contain the name and torch rejects keys with a dot (KeyError).
    model = _model(source_names=["natural", "scans_v1.2"]).eval()
    batch = _batch(4)
    batch["source"][2:] = 1
    with torch.no_grad():
        model._eval_step(batch, "val")
        hits = model(batch["image"])["logits"].argmax(1) == batch["label"]
    accuracy = model.metrics["val_1"]["acc"].compute().item()
    assert accuracy == pytest.approx(hits[2:].float().mean().item())


# ----------------------------------------------------------------------------- misc


def test_gradient_checkpointing_gives_the_same_losses(digits):
    options = {"width": 8, "depth": 2, "stages": 2}
    losses = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = _model(
            backbone="resnet",
            backbone_options={**options, "checkpointing": checkpointing},
            optimizer="sgd",
            lr=0.05,
            schedule="none",
        )
        assert model.backbone.checkpointing is checkpointing
        recorder = _StepLosses()
        trainer = _trainer(1, limit_train_batches=3, limit_val_batches=0, callbacks=[recorder])
        trainer.fit(model, digits)
        losses.append(recorder.losses)
    plain, checkpointed = losses
    assert len(plain) == 3 and all(math.isfinite(v) for v in checkpointed)
    assert checkpointed[0] == pytest.approx(plain[0], rel=1e-6)
    assert checkpointed == pytest.approx(plain, rel=1e-4)  # same gradients, same updates


def test_predict_step_returns_probabilities_and_passes_labels_through(digits):
    torch.manual_seed(0)
    model = _model().eval()
    batch = _batch(6)
    batch["source"] = torch.tensor([0, 0, 1, 1, 0, 1])
    with torch.no_grad():
        out = model.predict_step(batch, 0)
    assert set(out) == {"probs", "pred", "label", "source"}
    assert out["probs"].shape == (6, CLASSES)
    assert (out["probs"] >= 0).all()
    assert torch.allclose(out["probs"].sum(1), torch.ones(6), atol=1e-6)
    assert torch.equal(out["pred"], out["probs"].argmax(1))
    assert torch.equal(out["label"], batch["label"]) and torch.equal(out["source"], batch["source"])

    predictions = _trainer().predict(model, digits)
    probs = torch.cat([p["probs"] for p in predictions])
    assert probs.shape == (359, CLASSES)
    assert torch.allclose(probs.sum(1), torch.ones(359), atol=1e-5)
