"""Expectation over transformation (Athalye et al. 2018): attacks that survive random kornia
transforms, and one perturbation that fools a model across paired render conditions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import kornia
import kornia.augmentation as K
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.adversarial.attacks.base import margin_loss
from workbench.adversarial.model import as_logits_model, attack_mode, check_batch, check_logits
from workbench.adversarial.threat import ThreatModel
from workbench.data.reader import Dataset
from workbench.errors import WorkbenchError
from workbench.rng import derived_seed


def default_transform() -> nn.Module:
    """Returns the default EOT distribution: a small random affine warp (rotation up to 15
    degrees, shift up to 10%, scale 0.9-1.1) and random brightness and contrast (+-20%)."""
    return nn.Sequential(
        K.RandomAffine(degrees=15.0, translate=(0.1, 0.1), scale=(0.9, 1.1), p=1.0),
        K.ColorJiggle(brightness=0.2, contrast=0.2, p=1.0),
    )


class EOTModel(nn.Module):
    """A model whose logits are averaged over random transforms of its input.

    Attacking an EOTModel with any attack makes it an EOT attack: the gradient of the averaged
    logits is the average gradient over the transform distribution, so the perturbation found
    tends to survive the transforms. The transform must be differentiable (kornia's are).

    Draws are reproducible: the ``n``-th forward pass after :meth:`reseed` (which every attack
    calls with its own seed at the start of each call) uses the same transforms.

    Args:
        model: the classifier (any module accepted by
            :class:`~workbench.adversarial.model.LogitsModel`).
        transform: a batch transform of images in [0, 1] (default :func:`default_transform`).
        samples: draws averaged per forward pass.
        seed: seed of the draws until the next :meth:`reseed`.
    """

    def __init__(
        self,
        model: nn.Module,
        transform: nn.Module | None = None,
        samples: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not (isinstance(samples, int) and samples >= 1):
            raise WorkbenchError(f"samples: must be a positive integer, got {samples!r}")
        self.model = as_logits_model(model)
        self.transform = transform if transform is not None else default_transform()
        self.samples = samples
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restarts the sequence of random draws from ``seed``."""
        self.seed, self.calls = int(seed), 0

    def forward(self, x: Tensor) -> Tensor:
        """Returns the logits (B x K) averaged over ``samples`` random transforms of ``x``."""
        batch = x.repeat(self.samples, *([1] * (x.dim() - 1)))
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(derived_seed(self.seed, self.calls))
            self.calls += 1
            batch = self.transform(batch).clamp(0.0, 1.0)
        logits = self.model(batch)
        return logits.view(self.samples, len(x), -1).mean(dim=0)


@dataclass
class ConditionAttack:
    """The result of :func:`condition_eot_attack`.

    Attributes:
        delta: the shared perturbation, N x C x H x W (each condition's image is clipped to the
            pixel box after adding it, so its own perturbation can only be smaller).
        adversarial: condition -> adversarial images (N x C x H x W).
        fooled: condition -> which samples the model gets wrong (N bool).
    """

    delta: Tensor
    adversarial: dict[str, Tensor]
    fooled: dict[str, Tensor]


def condition_eot_attack(
    model: nn.Module,
    images: Mapping[str, Tensor],
    y: Tensor,
    threat: ThreatModel,
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    loss: str = "margin",
) -> ConditionAttack:
    """Finds one perturbation per sample that fools the model under every render condition.

    PGD on a perturbation shared by the paired images of each sample (the same scene rendered
    under fog, night, ...): every step ascends the loss averaged over conditions, with one
    forward and backward pass over all conditions at once. Each sample keeps the iterate that
    fools the most conditions, then the one with the highest mean loss.

    Args:
        model: the classifier.
        images: condition -> N x C x H x W float32 images in [0, 1], sample ``i`` the same
            scene in each (see :func:`paired_batch`).
        y: the N labels.
        threat: the threat model of the shared perturbation.
        steps: PGD steps.
        step_size: step length (default ``2.5 * eps / steps``).
        random_start: start from a random perturbation in the ball.
        seed: seeds the random start.
        loss: ``margin`` (default): the C&W margin ``max_{i != y} z_i - z_y`` capped at 0, so a
            condition already fooled stops pulling and the steps go to the others (on a digits
            CNN under four conditions it fooled more conditions than ``ce``); or ``ce``, the
            cross-entropy (the plain expectation over conditions).

    Raises:
        WorkbenchError: no conditions, mismatched shapes, an unknown loss, or a bad batch.
    """
    if not images:
        raise WorkbenchError("images: give at least one condition")
    names = list(images)
    first = images[names[0]]
    for name in names:
        if images[name].shape != first.shape:
            raise WorkbenchError(
                f"images: condition {name!r} has shape {tuple(images[name].shape)}, "
                f"{names[0]!r} has {tuple(first.shape)}; conditions must pair the same samples"
            )
        check_batch(images[name], y)
    if loss not in ("margin", "ce"):
        raise WorkbenchError(f"loss: unknown {loss!r}; allowed: margin, ce")
    if not (isinstance(steps, int) and steps >= 1):
        raise WorkbenchError(f"steps: must be a positive integer, got {steps!r}")
    size = 2.5 * threat.eps / steps if step_size is None else float(step_size)
    if not size > 0:
        raise WorkbenchError(f"step_size: must be positive, got {step_size}")
    threat.check_images(first)
    clean = torch.cat([images[name] for name in names]).detach()
    labels = y.long().repeat(len(names))
    count = len(names)
    logits_model = as_logits_model(model)
    generator = torch.Generator(device=first.device)
    generator.manual_seed(seed)
    if random_start:
        delta = threat.random_start(first, generator) - first
    else:
        delta = torch.zeros_like(first)
    best_delta = delta.clone()
    best_wrong = torch.full((len(first),), -1, dtype=torch.long, device=first.device)
    best_loss = torch.full((len(first),), float("-inf"), device=first.device)

    def evaluate(delta: Tensor, grad: bool) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        with torch.enable_grad() if grad else torch.no_grad():
            delta = delta.detach().requires_grad_(grad)
            adv = (clean + delta.repeat(count, 1, 1, 1)).clamp(threat.lower, threat.upper)
            logits = logits_model(adv)
            if loss == "ce":
                losses = F.cross_entropy(logits, labels, reduction="none")
            else:
                losses = margin_loss(logits, labels).clamp(max=0.0)
            mean = losses.view(count, -1).mean(dim=0)
            direction = torch.autograd.grad(mean.sum(), delta)[0] if grad else None
        wrong = (logits.detach().argmax(dim=1) != labels).view(count, -1).sum(dim=0)
        return mean.detach(), wrong, logits.detach(), direction

    with attack_mode(logits_model):
        for step in range(steps + 1):
            value, wrong, logits, grad = evaluate(delta, grad=step < steps)
            if step == 0:
                check_logits(logits)
                check_batch(first, y, logits.shape[1])
            better = (wrong > best_wrong) | ((wrong == best_wrong) & (value > best_loss))
            best_delta = torch.where(better.view(-1, 1, 1, 1), delta, best_delta)
            best_wrong = torch.where(better, wrong, best_wrong)
            best_loss = torch.where(better, value, best_loss)
            if grad is not None:
                delta = threat.clip_delta(delta + size * _steepest(grad, threat.norm))
        delta = best_delta
        adversarial = {
            name: (images[name] + delta).clamp(threat.lower, threat.upper).float() for name in names
        }
        fooled = {
            name: logits_model(adversarial[name]).argmax(dim=1) != y.to(first.device)
            for name in names
        }
    for name in names:
        threat.assert_within(adversarial[name], images[name])
    return ConditionAttack(delta=delta, adversarial=adversarial, fooled=fooled)


def _steepest(grad: Tensor, norm: str) -> Tensor:
    if norm == "linf":
        return grad.sign()
    return grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))


def paired_batch(
    paired: Mapping[str, Dataset],
    indices: Sequence[int],
    image_size: int | None = None,
    channels: int = 3,
) -> tuple[dict[str, Tensor], Tensor]:
    """Loads samples ``indices`` of paired render conditions as attack-ready tensors.

    Args:
        paired: condition -> dataset, from :func:`workbench.data.reader.open_paired`.
        indices: sample indices (the same scene in every condition).
        image_size: resize to this square size (bilinear, kornia); None keeps the size.
        channels: 3 for RGB, 1 for grayscale.

    Returns:
        condition -> float32 N x C x S x S images in [0, 1], and the N labels.

    Raises:
        WorkbenchError: when the conditions disagree on a sample's label.
    """
    if channels not in (1, 3):
        raise WorkbenchError(f"channels: must be 1 or 3, got {channels}")
    images: dict[str, Tensor] = {}
    labels: list[int] | None = None
    for name, dataset in paired.items():
        samples = [dataset[int(i)] for i in indices]
        rgb = np.stack([s["rgb"] for s in samples])
        batch = torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0
        if image_size is not None and batch.shape[-1] != image_size:
            batch = kornia.geometry.transform.resize(batch, (image_size, image_size))
        if channels == 1:
            batch = kornia.color.rgb_to_grayscale(batch)
        images[name] = batch.clamp(0.0, 1.0).contiguous()
        these = [int(s["meta"]["label"]) for s in samples]
        if labels is not None and these != labels:
            raise WorkbenchError(
                f"paired: condition {name!r} labels differ from the others; not a paired set"
            )
        labels = these
    return images, torch.tensor(labels or [], dtype=torch.long)
