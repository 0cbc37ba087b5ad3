"""Class-conditional denoising diffusion (Ho et al. 2020) on ``diffusers`` building blocks.

The network is a ``diffusers`` ``UNet2DModel`` configured from scratch (nothing is downloaded)
with a class embedding of ``num_classes + 1`` entries: the last one is the *null* label, seen in
training when a label is dropped (probability ``label_dropout``), so one network predicts both
the conditional and the unconditional noise and sampling uses classifier-free guidance (Ho and
Salimans 2022): ``eps = eps_null + w * (eps_y - eps_null)`` (``w = 0`` unconditional, ``w = 1``
plain conditional, larger ``w`` sharper classes). Training uses the DDPM forward process of a
``DDPMScheduler``; sampling runs a ``DDIMScheduler`` (Song et al. 2021) over ``steps`` of the
training steps. An exponential moving average of the weights is what sampling uses.

:meth:`ConditionalDiffusion.refine` is SDEdit (Meng et al. 2022): an image is noised to the step
``strength * T`` and denoised back, so its layout (and with it the labels of a rendered image)
stays while its texture and style become those of the training images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import Tensor

from workbench.checkpoint import mark_kind
from workbench.errors import WorkbenchError
from workbench.generative.grid import class_rows, log_grid, run_dir
from workbench.generative.nets import (
    check_images,
    check_labels,
    evaluating,
    moving_average,
    to_numpy,
)
from workbench.models.optim import create_optimizer

STRIP_POINTS = 6  # columns of the denoising strip: x_t at this many points of the sampling path


def check_sampling(steps: int, guidance_scale: float, train_steps: int) -> None:
    """Checks DDIM steps and a guidance scale against a model trained on ``train_steps``.

    Raises:
        WorkbenchError: steps outside ``1 .. train_steps`` or a negative guidance scale.
    """
    if not 1 <= steps <= train_steps:
        raise WorkbenchError(
            f"--steps: DDIM steps must lie in [1, {train_steps}] (the model's training steps), "
            f"got {steps}"
        )
    if not (guidance_scale >= 0 and math.isfinite(guidance_scale)):
        raise WorkbenchError(
            f"--guidance: the guidance scale must be 0 or more (0 = unconditional, 1 = plain "
            f"conditional), got {guidance_scale}"
        )


def check_strength(strength: float) -> None:
    """Raises WorkbenchError unless ``0 < strength <= 1``."""
    if not (0 < strength <= 1):
        raise WorkbenchError(
            f"--strength: must lie in (0, 1] (the share of the noise schedule an image is "
            f"noised to), got {strength}"
        )


class ConditionalDiffusion(pl.LightningModule):
    """Class-conditional DDPM with classifier-free guidance; a
    :class:`~workbench.data.sources.ConditionalGenerator` and an SDEdit refiner.

    Args:
        num_classes, in_channels, image_size, source_names, class_names: filled in from the
            DataModule by the CLI (``image_size`` divisible by ``2 ** (len(widths) - 1)``).
        widths: channels of the U-Net's resolution levels (each but the last halves the side).
        layers_per_block: residual blocks per level.
        attention: self-attention at the lowest resolution.
        train_steps: diffusion steps ``T`` of the forward process.
        beta_schedule: ``diffusers`` noise schedule (``squaredcos_cap_v2`` = cosine, ``linear``).
        conditional: learn the class condition (False: an unconditional model, labels unused).
        label_dropout: probability a training label is replaced by the null label.
        lr, weight_decay: AdamW settings.
        ema_decay: decay of the weights' moving average (warms up as in the GAN).
        sample_steps: DDIM steps used by :meth:`generate` (and the per-epoch grids).
        guidance_scale: classifier-free guidance weight used by :meth:`generate`.
        grid_per_class: samples per class in the grid logged every epoch; 0 = no grids.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 16,
        source_names: list[str] | None = None,
        class_names: list[str] | None = None,
        widths: list[int] | None = None,
        layers_per_block: int = 1,
        attention: bool = True,
        train_steps: int = 1000,
        beta_schedule: str = "squaredcos_cap_v2",
        conditional: bool = True,
        label_dropout: float = 0.1,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        ema_decay: float = 0.999,
        sample_steps: int = 25,
        guidance_scale: float = 2.0,
        grid_per_class: int = 8,
    ):
        super().__init__()
        widths = list(widths or [32, 64, 64])
        self.save_hyperparameters()
        self.hparams.widths = widths
        if not widths or min(widths) < 8 or any(w % 8 for w in widths):
            raise WorkbenchError(f"model.widths: multiples of 8 (at least one), got {widths}")
        if image_size % 2 ** (len(widths) - 1):
            raise WorkbenchError(
                f"model.image_size: {image_size} is not divisible by 2^{len(widths) - 1} "
                f"(one halving per level of widths {widths}); change data.image_size or widths"
            )
        if not 0 <= label_dropout < 1:
            raise WorkbenchError(f"model.label_dropout: must be in [0, 1), got {label_dropout}")
        if not 0 <= ema_decay < 1:
            raise WorkbenchError(f"model.ema_decay: must be in [0, 1), got {ema_decay}")
        if not (lr > 0 and math.isfinite(lr)):
            raise WorkbenchError(f"model.lr: must be a positive finite number, got {lr}")
        if train_steps < 2:
            raise WorkbenchError(f"model.train_steps: must be at least 2, got {train_steps}")
        check_sampling(sample_steps, guidance_scale, train_steps)
        self.classes = list(class_names or [str(i) for i in range(num_classes)])
        if len(self.classes) != num_classes:
            raise WorkbenchError(
                f"model.class_names: {len(self.classes)} names for {num_classes} classes"
            )
        self.source_names = list(source_names or ["data"])
        levels = len(widths)
        low = "AttnDownBlock2D" if attention else "DownBlock2D"
        self.unet = UNet2DModel(
            sample_size=image_size,
            in_channels=in_channels,
            out_channels=in_channels,
            block_out_channels=tuple(widths),
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * (levels - 1) + (low,),
            up_block_types=(low.replace("Down", "Up"),) + ("UpBlock2D",) * (levels - 1),
            num_class_embeds=num_classes + 1 if conditional else None,
            norm_num_groups=8,
        )
        try:
            self.noise_schedule = DDPMScheduler(
                num_train_timesteps=train_steps, beta_schedule=beta_schedule
            )
        except NotImplementedError as error:
            raise WorkbenchError(
                f"model.beta_schedule: {beta_schedule!r} is not a diffusers schedule; use "
                "squaredcos_cap_v2 or linear"
            ) from error
        self.unet_ema = moving_average(self.unet, ema_decay)

    @property
    def null_label(self) -> int:
        """The class index that means "no label" (classifier-free guidance)."""
        return self.hparams.num_classes

    def _class_labels(self, labels: Tensor) -> Tensor | None:
        return labels if self.hparams.conditional else None

    # --- training ------------------------------------------------------------------------------

    def _loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        images = batch["image"] * 2 - 1
        labels = batch["label"].clone()
        noise = torch.randn(images.shape, generator=generator, device=images.device)
        t = torch.randint(
            0, self.hparams.train_steps, (len(images),), generator=generator, device=images.device
        )
        if self.training and self.hparams.label_dropout > 0:
            drop = torch.rand(len(labels), device=labels.device) < self.hparams.label_dropout
            labels[drop] = self.null_label
        noisy = self.noise_schedule.add_noise(images, noise, t)
        predicted = self.unet(noisy, t, class_labels=self._class_labels(labels)).sample
        return F.mse_loss(predicted, noise)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        if not torch.isfinite(loss):
            raise WorkbenchError(
                f"diffusion loss is {loss.item()} at step {self.global_step}; stopped. "
                "Lower model.lr"
            )
        batch_size = len(batch["image"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.unet_ema.update_parameters(self.unet)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # the same noise and steps every epoch, so validation losses are comparable
        seed = torch.Generator(device=batch["image"].device).manual_seed(batch_idx)
        loss = self._loss(batch, generator=seed)
        self.log("val/loss", loss, on_epoch=True, batch_size=len(batch["image"]), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return create_optimizer(self.unet, "adamw", lr=hp.lr, weight_decay=hp.weight_decay)

    # --- sampling ------------------------------------------------------------------------------

    def _scheduler(self, steps: int) -> DDIMScheduler:
        scheduler = DDIMScheduler.from_config(self.noise_schedule.config)
        scheduler.set_timesteps(steps)
        return scheduler

    def _epsilon(self, x: Tensor, t: Tensor, labels: Tensor | None, guidance: float) -> Tensor:
        net = self.unet_ema.module
        steps = t.expand(len(x))
        if labels is None or not self.hparams.conditional:
            null = torch.full((len(x),), self.null_label, device=x.device)
            return net(x, steps, class_labels=self._class_labels(null)).sample
        if guidance == 1:
            return net(x, steps, class_labels=labels).sample
        null = torch.full_like(labels, self.null_label)
        both = net(
            torch.cat([x, x]), torch.cat([steps, steps]), class_labels=torch.cat([labels, null])
        ).sample
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

    def _denoise(
        self,
        x: Tensor,
        labels: Tensor | None,
        steps: int,
        guidance: float,
        strength: float | None = None,
        generator: torch.Generator | None = None,
        keep: int = 0,
    ) -> tuple[Tensor, list[Tensor]]:
        """Runs DDIM to an image in [-1, 1]: from the pure noise ``x`` over all ``steps`` when
        ``strength`` is None, else (SDEdit) from the image ``x`` noised to the first of the last
        ``strength`` share of the steps. Returns the image and ``keep`` intermediate ``x_t``
        spread along the path."""
        scheduler = self._scheduler(steps)
        timesteps = scheduler.timesteps
        if strength is not None:
            timesteps = timesteps[len(timesteps) - max(1, round(strength * len(timesteps))) :]
            noise = torch.randn(x.shape, generator=generator).to(x.device)
            x = scheduler.add_noise(x, noise, timesteps[:1].to(x.device))
        keep = min(keep, len(timesteps))
        marks = set(np.linspace(0, len(timesteps) - 1, keep).round().astype(int)) if keep else set()
        path = []
        for i, t in enumerate(timesteps):
            if i in marks:
                path.append(x.clone())
            epsilon = self._epsilon(x, t.to(x.device), labels, guidance)
            x = scheduler.step(epsilon, t, x, eta=0.0).prev_sample
        return x, path

    def _options(self, steps: int | None, guidance: float | None) -> tuple[int, float]:
        hp = self.hparams
        steps = hp.sample_steps if steps is None else int(steps)
        guidance = hp.guidance_scale if guidance is None else float(guidance)
        check_sampling(steps, guidance, hp.train_steps)
        return steps, guidance

    def use_sampling(self, steps: int | None = None, guidance: float | None = None) -> None:
        """Sets the DDIM steps and guidance scale :meth:`generate` uses (None keeps one).

        Raises:
            WorkbenchError: steps outside ``1 .. train_steps`` or a negative guidance scale.
        """
        self.hparams.sample_steps, self.hparams.guidance_scale = self._options(steps, guidance)

    def sampling(self) -> dict[str, Any]:
        """The sampling settings :meth:`generate` uses (for provenance)."""
        return {"steps": self.hparams.sample_steps, "guidance": self.hparams.guidance_scale}

    def generate(
        self,
        labels: Sequence[int],
        seed: int,
        steps: int | None = None,
        guidance: float | None = None,
        chunk: int = 256,
    ) -> np.ndarray:
        """Returns samples of the averaged model for ``labels``: float32 N x H x W x C in
        [0, 1], the same for the same seed.

        Args:
            labels: class of each sample.
            seed: seed of the initial noise.
            steps: DDIM steps (default: ``sample_steps``).
            guidance: guidance scale (default: ``guidance_scale``).
            chunk: samples denoised together.

        Raises:
            WorkbenchError: an unknown label, bad steps or guidance.
        """
        steps, guidance = self._options(steps, guidance)
        labels = check_labels(labels, self.classes)
        hp = self.hparams
        shape = (len(labels), hp.in_channels, hp.image_size, hp.image_size)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        with evaluating(self):
            parts = [
                self._denoise(x.to(self.device), y.to(self.device), steps, guidance)[0]
                for x, y in zip(noise.split(chunk), labels.split(chunk), strict=True)
            ]
        return to_numpy((torch.cat(parts) + 1) / 2)

    def refine(
        self,
        images: Tensor,
        strength: float,
        seed: int,
        labels: Tensor | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> Tensor:
        """SDEdit: noises B x C x H x W images in [0, 1] to ``strength`` of the schedule and
        denoises them with the averaged model; returns images in [0, 1] of the same shape.

        Args:
            images: the images to refine (the model's channels and side).
            strength: in (0, 1]; the share of the ``steps`` DDIM steps that are run.
            seed: seed of the added noise.
            labels: condition each image on its class (None: unconditional).
            steps: DDIM steps of the full schedule (default: ``sample_steps``).
            guidance: guidance scale with labels (default: ``guidance_scale``).

        Raises:
            WorkbenchError: images of another shape, a bad strength, steps or guidance, or
                labels outside the trained classes.
        """
        hp = self.hparams
        check_strength(strength)
        steps, guidance = self._options(steps, guidance)
        check_images(images, hp.in_channels, hp.image_size, "diffusion model")
        if labels is not None:
            labels = check_labels(labels, self.classes).to(self.device)
        generator = torch.Generator().manual_seed(seed)
        with evaluating(self):
            out, _ = self._denoise(
                images.to(self.device) * 2 - 1, labels, steps, guidance, strength, generator
            )
        return ((out + 1) / 2).clamp(0, 1)

    def denoising_strip(self, seed: int = 0) -> np.ndarray:
        """Returns the sampling path of one sample per class: K x (P + 1) x H x W x C, x_t at
        P = min(``STRIP_POINTS``, sampling steps) points from pure noise to the last step, then
        the sample."""
        hp = self.hparams
        labels = torch.arange(hp.num_classes, device=self.device)
        shape = (hp.num_classes, hp.in_channels, hp.image_size, hp.image_size)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(self.device)
        with evaluating(self):
            final, path = self._denoise(
                noise, labels, hp.sample_steps, hp.guidance_scale, keep=STRIP_POINTS
            )
        frames = torch.stack([*path, final], dim=1)  # K x P x C x H x W
        return ((frames.clamp(-1, 1) + 1) / 2).permute(0, 1, 3, 4, 2).cpu().numpy()

    def on_train_epoch_end(self) -> None:
        per_class = self.hparams.grid_per_class
        if per_class <= 0 or run_dir(self) is None:
            return
        log_grid(self, "samples", class_rows(self, per_class, seed=0), self.classes)
        log_grid(self, "denoising", self.denoising_strip(seed=0), self.classes)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mark_kind(checkpoint, "diffusion")


class SDEditRefiner:
    """A diffusion model used as a dataset refiner (SDEdit) with fixed options: what
    :func:`~workbench.generative.refine_dataset.refine_dataset` takes, like the SimGAN refiner.

    Args:
        model: a trained :class:`ConditionalDiffusion`.
        strength: share of the noise schedule each image is noised to, in (0, 1].
        conditioned: condition on each sample's own label (needs a conditional model).
        steps: DDIM steps of the full schedule (default: the model's ``sample_steps``).
        guidance: guidance scale when conditioned (default: the model's ``guidance_scale``).

    Raises:
        WorkbenchError: a bad strength, steps or guidance, or ``conditioned`` with an
            unconditional model.
    """

    def __init__(
        self,
        model: ConditionalDiffusion,
        strength: float,
        conditioned: bool = False,
        steps: int | None = None,
        guidance: float | None = None,
    ):
        check_strength(strength)
        self.steps, self.guidance = model._options(steps, guidance)
        if conditioned and not model.hparams.conditional:
            raise WorkbenchError(
                "--conditioned: this diffusion model was trained without labels; drop "
                "--conditioned or use a class-conditional model"
            )
        self.model, self.strength, self.conditioned = model, strength, conditioned
        self.hparams = model.hparams

    def eval(self) -> SDEditRefiner:
        self.model.eval()
        return self

    def settings(self) -> dict[str, Any]:
        """The options that decide the output (for provenance and resume checks)."""
        return {
            "strength": self.strength,
            "conditioned": self.conditioned,
            "steps": self.steps,
            "guidance": self.guidance if self.conditioned else None,
        }

    def refine(self, images: Tensor, labels: Tensor | None = None, seed: int = 0) -> Tensor:
        """Refines B x C x S x S images in [0, 1]; ``labels`` are used when ``conditioned``."""
        return self.model.refine(
            images, self.strength, seed, labels if self.conditioned else None, self.steps,
            self.guidance,
        )  # fmt: skip
