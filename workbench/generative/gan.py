"""The conditional GAN: a DCGAN-style generator and critic (Radford et al. 2016) conditioned on
the class, trained with the hinge loss or WGAN-GP and manual optimisation.

The generator sees ``[z, embed(y)]``; the critic is a projection discriminator (Miyato and
Koyama 2018): ``f(x, y) = w . h(x) + embed(y) . h(x)``, with spectral normalisation (Miyato
et al. 2018) when ``spectral_norm`` is on. An exponential moving average of the generator's
weights (Karras et al. 2018; Yazici et al. 2019) is what :meth:`ConditionalGAN.generate` uses.

Three standard remedies against mode collapse and critic overfitting, each switchable so their
effects can be measured one at a time (``workbench experiment gan``): differentiable
augmentation of everything the critic sees (:class:`~workbench.generative.diff_augment.DiffAugment`,
Zhao et al. 2020), the R1 gradient penalty on real images (Mescheder et al. 2018), and a
minibatch standard deviation feature in the critic (Karras et al. 2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from workbench.checkpoint import mark_kind
from workbench.errors import WorkbenchError
from workbench.generative.diff_augment import DiffAugment
from workbench.generative.grid import class_rows, log_grid, run_dir
from workbench.generative.nets import (
    DownStack,
    UpStack,
    generate_images,
    interpolate_images,
    moving_average,
    num_stages,
)
from workbench.models.optim import create_optimizer

OBJECTIVES = ("hinge", "wgan-gp")


class Generator(nn.Module):
    """``(z, y)`` to an image in [0, 1]: the label embedding joins ``z`` before an up stack."""

    def __init__(
        self, num_classes: int, latent_dim: int, channels: int, image_size: int, width: int
    ):
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.body = UpStack(2 * latent_dim, channels, image_size, width)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return (torch.tanh(self.body(torch.cat([z, self.embed(labels)], dim=1))) + 1) / 2


class MinibatchStd(nn.Module):
    """Appends one channel holding the mean standard deviation of the features over groups of
    ``group`` images (Karras et al. 2018): a collapsed batch has a low one, which the critic
    can see."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, features: Tensor) -> Tensor:
        """B x C x H x W to B x (C + 1) x H x W."""
        b, _, h, w = features.shape
        group = min(self.group, b)
        if b % group:
            group = 1 if b < 2 else next(g for g in range(group, 0, -1) if b % g == 0)
        grouped = features.reshape(group, -1, *features.shape[1:])
        std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
        std = std.reshape(-1, 1, 1, 1).repeat(group, 1, h, w)
        return torch.cat([features, std], dim=1)


class Critic(nn.Module):
    """``(x, y)`` to a score per image: a down stack without normalisation layers and a
    projection of the label embedding onto its features; with ``minibatch_std`` a minibatch
    standard deviation channel and a 3x3 convolution follow the stack."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int,
        spectral_norm: bool,
        minibatch_std: bool = False,
    ):
        super().__init__()
        self.body = DownStack(channels, image_size, width, norm=False, spectral_norm=spectral_norm)
        self.head: nn.Module = nn.Identity()
        if minibatch_std:
            maps = self.body.out_features // 16
            conv = nn.Conv2d(maps + 1, maps, 3, padding=1)
            self.head = nn.Sequential(
                MinibatchStd(), _spectral_norm(conv) if spectral_norm else conv, nn.LeakyReLU(0.2)
            )
        self.score = nn.Linear(self.body.out_features, 1)
        self.embed = nn.Embedding(num_classes, self.body.out_features)
        if spectral_norm:
            self.score = _spectral_norm(self.score)
            self.embed = _spectral_norm(self.embed)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """Returns B scores for images in [0, 1]."""
        features = self.head(self.body.body(images * 2 - 1)).flatten(1)
        return self.score(features)[:, 0] + (self.embed(labels) * features).sum(1)


class ConditionalGAN(pl.LightningModule):
    """Class-conditional GAN; a :class:`~workbench.data.sources.ConditionalGenerator`.

    Args:
        num_classes, in_channels, image_size, source_names, class_names: filled in from the
            DataModule by the CLI (``image_size`` a power of two >= 8).
        latent_dim: size of ``z``.
        width: channels of the critic's first stage and the generator's last (doubled per
            stage towards 4 x 4).
        objective: ``hinge`` or ``wgan-gp`` (Wasserstein loss with a gradient penalty of weight
            ``gp_weight`` on random interpolates, Gulrajani et al. 2017).
        spectral_norm: spectral normalisation of the critic.
        n_critic: critic steps per generator step.
        lr_g, lr_d: Adam learning rates of the generator and the critic; ``beta1`` and
            ``beta2`` their Adam betas.
        ema_decay: decay of the generator's moving average; it warms up as
            ``min(ema_decay, (1 + n) / (10 + n))`` after ``n`` updates.
        diffaugment: the critic sees real and generated images through DiffAugment.
        r1_weight: weight ``gamma`` of the R1 penalty ``gamma / 2 * E ||grad_x D(x)||^2`` on
            real images; 0 = off.
        minibatch_std: a minibatch standard deviation channel in the critic.
        grid_per_class: samples per class in the grid logged at the end of every epoch
            (``samples/`` in the run's log folder); 0 = none.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 32,
        source_names: list[str] | None = None,
        class_names: list[str] | None = None,
        latent_dim: int = 32,
        width: int = 32,
        objective: str = "hinge",
        spectral_norm: bool = True,
        gp_weight: float = 10.0,
        n_critic: int = 1,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        ema_decay: float = 0.999,
        diffaugment: bool = False,
        r1_weight: float = 0.0,
        minibatch_std: bool = False,
        grid_per_class: int = 8,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        if objective not in OBJECTIVES:
            raise WorkbenchError(
                f"model.objective: unknown {objective!r}; allowed: {', '.join(OBJECTIVES)}"
            )
        if n_critic < 1:
            raise WorkbenchError(f"model.n_critic: must be at least 1, got {n_critic}")
        if not 0 <= ema_decay < 1:
            raise WorkbenchError(f"model.ema_decay: must be in [0, 1), got {ema_decay}")
        for name, lr in (("lr_g", lr_g), ("lr_d", lr_d)):
            if not (lr > 0 and math.isfinite(lr)):
                raise WorkbenchError(f"model.{name}: must be a positive finite number, got {lr}")
        if not (r1_weight >= 0 and math.isfinite(r1_weight)):
            raise WorkbenchError(f"model.r1_weight: must be 0 (off) or positive, got {r1_weight}")
        if latent_dim < 1:
            raise WorkbenchError(f"model.latent_dim: must be at least 1, got {latent_dim}")
        num_stages(image_size)
        self.classes = list(class_names or [str(i) for i in range(num_classes)])
        if len(self.classes) != num_classes:
            raise WorkbenchError(
                f"model.class_names: {len(self.classes)} names for {num_classes} classes"
            )
        self.source_names = list(source_names or ["data"])
        self.generator = Generator(num_classes, latent_dim, in_channels, image_size, width)
        self.critic = Critic(
            num_classes, in_channels, image_size, width, spectral_norm, minibatch_std
        )
        self.augment: nn.Module = DiffAugment() if diffaugment else nn.Identity()
        self.generator_ema = moving_average(self.generator, ema_decay)

    def _gradient_penalty(self, real: Tensor, fake: Tensor, labels: Tensor) -> Tensor:
        t = torch.rand(len(real), 1, 1, 1, device=real.device)
        mixed = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(mixed, labels).sum(), mixed, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def _r1_penalty(self, real: Tensor, labels: Tensor) -> Tensor:
        real = real.detach().requires_grad_(True)
        scores = self.critic(self.augment(real), labels)
        (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
        return grad.flatten(1).pow(2).sum(dim=1).mean()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        real, labels = batch["image"], batch["label"]
        z = torch.randn(len(real), hp.latent_dim, device=real.device)
        fake = self.generator(z, labels)

        d_real = self.critic(self.augment(real), labels)
        d_fake = self.critic(self.augment(fake.detach()), labels)
        logs = {"train/d_real": d_real.mean(), "train/d_fake": d_fake.mean()}
        if hp.objective == "hinge":
            d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        else:
            logs["train/gp"] = self._gradient_penalty(real, fake.detach(), labels)
            d_loss = d_fake.mean() - d_real.mean() + hp.gp_weight * logs["train/gp"]
        if hp.r1_weight > 0:
            logs["train/r1"] = self._r1_penalty(real, labels)
            d_loss = d_loss + hp.r1_weight / 2 * logs["train/r1"]
        if not torch.isfinite(d_loss):
            raise WorkbenchError(
                f"GAN critic loss is {d_loss.item()} at step {self.global_step}; stopped. "
                "Lower model.lr_d"
            )
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        logs["train/d_loss"] = d_loss

        if (batch_idx + 1) % hp.n_critic == 0:
            g_loss = -self.critic(self.augment(fake), labels).mean()
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
            self.generator_ema.update_parameters(self.generator)
            logs["train/g_loss"] = g_loss
        self.log_dict(logs, on_step=False, on_epoch=True, batch_size=len(real), sync_dist=True)

    def generate(self, labels: Sequence[int], seed: int) -> np.ndarray:
        """Returns samples of the averaged (EMA) generator for ``labels``: float32
        N x H x W x C in [0, 1], the same for the same seed.

        Raises:
            WorkbenchError: a label outside the trained classes.
        """
        return generate_images(
            self, self.generator_ema, labels, seed, self.hparams.latent_dim, self.classes
        )

    def interpolate(self, label: int, steps: int, seed: int) -> np.ndarray:
        """Returns ``steps`` images of class ``label`` from the averaged generator along the
        straight line between two latents drawn from ``seed``: float32 steps x H x W x C."""
        return interpolate_images(
            self, self.generator_ema, label, steps, seed, self.hparams.latent_dim, self.classes
        )

    def on_train_epoch_end(self) -> None:
        per_class = self.hparams.grid_per_class
        if per_class <= 0 or run_dir(self) is None:
            return
        log_grid(self, "samples", class_rows(self, per_class, seed=0), self.classes)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mark_kind(checkpoint, "gan")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        betas = (hp.beta1, hp.beta2)
        return [
            create_optimizer(self.generator, "adam", lr=hp.lr_g, betas=betas),
            create_optimizer(self.critic, "adam", lr=hp.lr_d, betas=betas),
        ]
