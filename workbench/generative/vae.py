"""The conditional variational autoencoder (Kingma and Welling 2014; Sohn et al. 2015).

An encoder ``q(z | x, y)`` and a decoder ``p(x | z, y)``, both convolutional and both given the
class ``y`` as a learned embedding; the prior ``p(z)`` is a standard normal. Pixels are modelled
as independent Gaussians around the decoder's mean with a fixed ``sigma``, so the ELBO is a bound
in nats on the log density of an image. Training minimises ``reconstruction + beta * KL``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.distributions import Normal

from workbench.checkpoint import mark_kind
from workbench.errors import WorkbenchError
from workbench.generative.grid import class_rows, log_grid, run_dir
from workbench.generative.nets import (
    DownStack,
    UpStack,
    check_images,
    check_labels,
    evaluating,
    generate_images,
    interpolate_images,
    latents,
)
from workbench.models.optim import create_optimizer


class ConditionalVAE(pl.LightningModule):
    """Class-conditional VAE; a :class:`~workbench.data.sources.ConditionalGenerator`.

    Args:
        num_classes, in_channels, image_size, source_names, class_names: filled in from the
            DataModule by the CLI (``image_size`` a power of two >= 8).
        latent_dim: size of ``z``.
        beta: weight of the KL term in the training loss (1 = the ELBO; the logged
            ``elbo`` always uses 1).
        width: channels of the first encoder stage (doubled per stage; the decoder mirrors it).
        sigma: standard deviation of the Gaussian pixel likelihood (images in [0, 1]); smaller
            values weight reconstruction more against the KL term.
        lr: Adam learning rate.
        grid_per_class: samples per class in the grids logged at the end of every epoch
            (``samples/`` and ``interpolations/`` in the run's log folder); 0 = none.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 32,
        source_names: list[str] | None = None,
        class_names: list[str] | None = None,
        latent_dim: int = 16,
        beta: float = 1.0,
        width: int = 32,
        sigma: float = 0.3,
        lr: float = 1e-3,
        grid_per_class: int = 8,
    ):
        super().__init__()
        self.save_hyperparameters()
        if latent_dim < 1:
            raise WorkbenchError(f"model.latent_dim: must be at least 1, got {latent_dim}")
        if not beta >= 0:
            raise WorkbenchError(f"model.beta: must be >= 0, got {beta}")
        if not (sigma > 0 and math.isfinite(sigma)):
            raise WorkbenchError(f"model.sigma: must be a positive number, got {sigma}")
        if not (lr > 0 and math.isfinite(lr)):
            raise WorkbenchError(f"model.lr: must be a positive finite number, got {lr}")
        self.classes = list(class_names or [str(i) for i in range(num_classes)])
        if len(self.classes) != num_classes:
            raise WorkbenchError(
                f"model.class_names: {len(self.classes)} names for {num_classes} classes"
            )
        self.source_names = list(source_names or ["data"])
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.encoder = DownStack(in_channels, image_size, width)
        self.posterior = nn.Linear(self.encoder.out_features + latent_dim, 2 * latent_dim)
        self.decoder = UpStack(2 * latent_dim, in_channels, image_size, width)

    def encode(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the posterior's mean and log-variance (B x latent_dim each)."""
        features = torch.cat([self.encoder(images), self.embed(labels)], dim=1)
        mean, log_var = self.posterior(features).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)

    def decode(self, z: Tensor, labels: Tensor) -> Tensor:
        """Returns the mean image B x C x S x S in [0, 1] for latents ``z`` of ``labels``."""
        return torch.sigmoid(self.decoder(torch.cat([z, self.embed(labels)], dim=1)))

    def _log_likelihood(self, images: Tensor, mean: Tensor) -> Tensor:
        return Normal(mean, self.hparams.sigma).log_prob(images).flatten(1).sum(1)

    def forward(self, images: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """One stochastic pass: per-example ``reconstruction`` (-log p(x|z,y), nats), ``kl``
        (nats) and the ``mean`` image of the reconstruction."""
        mean_z, log_var = self.encode(images, labels)
        z = mean_z + torch.randn_like(mean_z) * (0.5 * log_var).exp()
        mean = self.decode(z, labels)
        kl = 0.5 * (mean_z**2 + log_var.exp() - 1 - log_var).sum(1)
        return {"reconstruction": -self._log_likelihood(images, mean), "kl": kl, "mean": mean}

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        out = self(batch["image"], batch["label"])
        loss = (out["reconstruction"] + self.hparams.beta * out["kl"]).mean()
        if not torch.isfinite(loss):
            raise WorkbenchError(
                f"VAE loss is {loss.item()} at step {self.global_step}; stopped. Lower model.lr"
            )
        self.log_dict(
            {
                f"{stage}/loss": loss,
                f"{stage}/reconstruction": out["reconstruction"].mean(),
                f"{stage}/kl": out["kl"].mean(),
                f"{stage}/elbo": -(out["reconstruction"] + out["kl"]).mean(),
            },
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["label"]),
            sync_dist=True,
        )
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def generate(self, labels: Sequence[int], seed: int) -> np.ndarray:
        """Returns decoder means for prior samples of ``labels``: float32 N x H x W x C in
        [0, 1], the same for the same seed.

        Raises:
            WorkbenchError: a label outside the trained classes.
        """
        return generate_images(
            self, self.decode, labels, seed, self.hparams.latent_dim, self.classes
        )

    def interpolate(self, label: int, steps: int, seed: int) -> np.ndarray:
        """Returns ``steps`` images of class ``label`` decoded along the straight line between
        two prior samples drawn from ``seed``: float32 steps x H x W x C in [0, 1]."""
        return interpolate_images(
            self, self.decode, label, steps, seed, self.hparams.latent_dim, self.classes
        )

    def elbo(
        self,
        images: Tensor,
        labels: Tensor,
        samples: int = 1,
        importance_weighted: bool = False,
        seed: int = 0,
    ) -> Tensor:
        """Returns a lower bound on ``log p(x | y)`` per example, in nats (B), in eval mode.

        Args:
            images: B x C x S x S in [0, 1], the size the model was trained on.
            labels: B class indices.
            samples: posterior samples per example ``K``.
            importance_weighted: the importance-weighted bound of Burda et al. 2016
                (``log mean_k p(x, z_k) / q(z_k | x)``, tighter as ``K`` grows) instead of the
                ELBO averaged over the ``K`` samples.
            seed: seed of the posterior samples (the result is deterministic in it).

        Raises:
            WorkbenchError: images of another size or labels of unknown classes.
        """
        hp = self.hparams
        check_images(images, hp.in_channels, hp.image_size, "VAE")
        labels = check_labels(labels, self.classes).to(images.device)
        noise = latents(samples * len(images), hp.latent_dim, seed).to(images.device)
        noise = noise.view(samples, len(images), hp.latent_dim)
        with evaluating(self):
            mean_z, log_var = self.encode(images, labels)
            std = (0.5 * log_var).exp()
            bounds = []
            for eps in noise:
                z = mean_z + eps * std
                log_px = self._log_likelihood(images, self.decode(z, labels))
                if importance_weighted:
                    log_pz = Normal(0.0, 1.0).log_prob(z).sum(1)
                    log_qz = Normal(mean_z, std).log_prob(z).sum(1)
                    bounds.append(log_px + log_pz - log_qz)
                else:
                    kl = 0.5 * (mean_z**2 + log_var.exp() - 1 - log_var).sum(1)
                    bounds.append(log_px - kl)
            stacked = torch.stack(bounds)
            if importance_weighted:
                return torch.logsumexp(stacked, 0) - math.log(samples)
            return stacked.mean(0)

    def on_train_epoch_end(self) -> None:
        per_class = self.hparams.grid_per_class
        if per_class <= 0 or run_dir(self) is None:
            return
        log_grid(self, "samples", class_rows(self, per_class, seed=0), self.classes)
        rows = np.stack([self.interpolate(c, per_class, seed=0) for c in range(len(self.classes))])
        log_grid(self, "interpolations", rows, self.classes)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mark_kind(checkpoint, "vae")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return create_optimizer(self, "adam", lr=self.hparams.lr)
