"""The refiner: rendered images made to look natural without moving their content, after SimGAN
(Shrivastava et al. 2017, "Learning from Simulated and Unsupervised Images through Adversarial
Training").

A fully convolutional network ``R`` (ResNet blocks at full resolution, no striding) maps a
rendered image ``x`` to ``R(x)`` of the same size. Its loss is a local adversarial term (a patch
discriminator ``D`` scores every image patch as natural or refined) plus ``self_reg`` times the
mean L1 distance ``|R(x) - x|``: the self-regularisation that keeps the digit, the masks and the
depth of the rendered sample where they were, so its labels stay valid. ``D`` sees half of its
refined images from a history buffer of earlier refiner outputs, so that ``R`` cannot win by
revisiting artefacts ``D`` has forgotten. ``R`` predicts a residual in logit space with a zero
last layer: untrained, it is the identity (up to a 1e-3 clamp at 0 and 1).

Training data: a :class:`~workbench.data.datamodule.MixedDataModule` with a rendered and a
natural source at the same size and channels; each batch is split by ``batch["source"]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.checkpoint import mark_kind
from workbench.errors import WorkbenchError
from workbench.generative.grid import log_grid, run_dir
from workbench.generative.nets import (
    PatchDiscriminator,
    ResidualBlock,
    check_images,
    evaluating,
    to_numpy,
)
from workbench.models.optim import create_optimizer

EPS = 1e-3


class RefinerNet(nn.Module):
    """A fully convolutional image-to-image network whose output starts as its input."""

    def __init__(self, channels: int, width: int, blocks: int):
        super().__init__()
        last = nn.Conv2d(width, channels, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            *(ResidualBlock(width) for _ in range(blocks)),
            last,
        )

    def forward(self, images: Tensor) -> Tensor:
        """Returns refined images in [0, 1] of the input's shape."""
        return torch.sigmoid(torch.logit(images.clamp(EPS, 1 - EPS)) + self.body(images))


class Refiner(pl.LightningModule):
    """SimGAN-style refiner of rendered images; see the module docstring.

    Args:
        num_classes, in_channels, image_size, source_names, class_names: filled in from the
            DataModule by the CLI.
        rendered_source, natural_source: names of the DataModule sources it maps from and to.
        width, blocks: channels and ResNet blocks of the refiner.
        self_reg: weight of the mean L1 self-regularisation ``|R(x) - x|`` against the
            adversarial loss (higher keeps refined images closer to the rendered ones).
        history_size: refined images kept for the discriminator (0 = no history buffer).
        disc_width, disc_depth: the patch discriminator's first width and number of stride-2
            convolutions (its patches are about ``2 ** (disc_depth + 1)`` pixels).
        spectral_norm: spectral normalisation of the discriminator.
        lr_r, lr_d: Adam learning rates of the refiner and the discriminator.
        grid_count: rendered images shown (with their refinements and natural images) in the
            grid logged at the end of every epoch (``refined/`` in the run's log folder).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 32,
        source_names: list[str] | None = None,
        class_names: list[str] | None = None,
        rendered_source: str = "rendered",
        natural_source: str = "natural",
        width: int = 32,
        blocks: int = 4,
        self_reg: float = 1.0,
        history_size: int = 512,
        disc_width: int = 32,
        disc_depth: int = 2,
        spectral_norm: bool = True,
        lr_r: float = 1e-3,
        lr_d: float = 1e-3,
        grid_count: int = 8,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.source_names = list(source_names or [rendered_source, natural_source])
        for field, name in (
            ("rendered_source", rendered_source),
            ("natural_source", natural_source),
        ):
            if name not in self.source_names:
                raise WorkbenchError(
                    f"model.{field}: {name!r} is not a data source (sources: "
                    f"{', '.join(self.source_names)}); name one of them"
                )
        if rendered_source == natural_source:
            raise WorkbenchError("model.natural_source: must differ from model.rendered_source")
        if not self_reg >= 0:
            raise WorkbenchError(f"model.self_reg: must be >= 0, got {self_reg}")
        if history_size < 0:
            raise WorkbenchError(f"model.history_size: must be >= 0, got {history_size}")
        if image_size < 2**disc_depth:
            raise WorkbenchError(
                f"model.disc_depth: {disc_depth} halvings do not fit {image_size}-pixel images"
            )
        for name, lr in (("lr_r", lr_r), ("lr_d", lr_d)):
            if not (lr > 0 and math.isfinite(lr)):
                raise WorkbenchError(f"model.{name}: must be a positive finite number, got {lr}")
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.rendered_id = self.source_names.index(rendered_source)
        self.natural_id = self.source_names.index(natural_source)
        self.refiner = RefinerNet(in_channels, width, blocks)
        self.discriminator = PatchDiscriminator(in_channels, disc_width, disc_depth, spectral_norm)
        shape = (history_size, in_channels, image_size, image_size)
        self.register_buffer("history", torch.zeros(shape))
        self.register_buffer("history_count", torch.zeros((), dtype=torch.long))
        self._examples: tuple[Tensor, Tensor] | None = None

    def refine(self, images: Tensor) -> Tensor:
        """Refines rendered images (B x C x S x S in [0, 1]) in eval mode; returns the same shape
        on the input's device.

        Raises:
            WorkbenchError: images of another channel count or size than the training data.
        """
        hp = self.hparams
        check_images(images, hp.in_channels, hp.image_size, "refiner")
        with evaluating(self):
            return self.refiner(images.to(self.device)).to(images.device)

    def _split(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        images, sources = batch["image"], batch["source"]
        return images[sources == self.rendered_id], images[sources == self.natural_id]

    def _with_history(self, refined: Tensor) -> Tensor:
        """Returns the discriminator's fake batch (half new, half from the buffer once it holds
        enough) and stores ``refined`` in the buffer (ring while filling, then random slots)."""
        size, count = self.hparams.history_size, int(self.history_count)
        if size == 0:
            return refined
        half = len(refined) // 2
        fake = refined
        if half and min(count, size) >= half:
            old = self.history[torch.randint(min(count, size), (half,), device=refined.device)]
            fake = torch.cat([refined[: len(refined) - half], old])
        if count < size:
            slots = torch.arange(count, count + len(refined), device=refined.device) % size
        else:
            slots = torch.randint(size, (len(refined),), device=refined.device)
        self.history[slots] = refined
        self.history_count += len(refined)
        return fake

    @staticmethod
    def _bce(logits: Tensor, real: bool) -> Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        rendered, natural = self._split(batch)
        if not len(rendered) or not len(natural):
            return  # a batch that drew from one source only teaches nothing here
        opt_r, opt_d = self.optimizers()
        refined = self.refiner(rendered)
        adversarial = self._bce(self.discriminator(refined), real=True)
        l1 = (refined - rendered).abs().mean()
        r_loss = adversarial + self.hparams.self_reg * l1
        if not torch.isfinite(r_loss):
            raise WorkbenchError(
                f"refiner loss is {r_loss.item()} at step {self.global_step}; stopped. "
                "Lower model.lr_r"
            )
        opt_r.zero_grad()
        self.manual_backward(r_loss)
        opt_r.step()

        d_real = self.discriminator(natural)
        d_fake = self.discriminator(self._with_history(refined.detach()))
        d_loss = self._bce(d_real, real=True) + self._bce(d_fake, real=False)
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()
        self.log_dict(
            {
                "train/r_adversarial": adversarial,
                "train/self_reg_l1": l1,
                "train/d_loss": d_loss,
                "train/d_acc_natural": (d_real > 0).float().mean(),
                "train/d_acc_refined": (d_fake < 0).float().mean(),
            },
            on_step=False,
            on_epoch=True,
            batch_size=len(batch["image"]),
            sync_dist=True,
        )
        if batch_idx == 0:  # the epoch's grid shows its first batch
            count = self.hparams.grid_count
            self._examples = (rendered[:count].detach(), natural[:count].detach())

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        rendered, natural = self._split(batch)
        logs = {}
        if len(rendered):
            refined = self.refiner(rendered)
            logs["val/self_reg_l1"] = (refined - rendered).abs().mean()
            logs["val/d_acc_refined"] = (self.discriminator(refined) < 0).float().mean()
        if len(natural):
            logs["val/d_acc_natural"] = (self.discriminator(natural) > 0).float().mean()
        self.log_dict(logs, on_epoch=True, batch_size=len(batch["image"]), sync_dist=True)

    def on_train_epoch_end(self) -> None:
        if self._examples is None or run_dir(self) is None:
            return
        rendered, natural = self._examples
        count = min(len(rendered), len(natural))
        if count == 0:
            return
        refined = self.refine(rendered[:count])
        rows = [to_numpy(rendered[:count]), to_numpy(refined), to_numpy(natural[:count])]
        names = [self.hparams.rendered_source, "refined", self.hparams.natural_source]
        log_grid(self, "refined", np.stack(rows), names)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        mark_kind(checkpoint, "refiner")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        return [
            create_optimizer(self.refiner, "adam", lr=hp.lr_r, betas=(0.5, 0.999)),
            create_optimizer(self.discriminator, "adam", lr=hp.lr_d, betas=(0.5, 0.999)),
        ]
