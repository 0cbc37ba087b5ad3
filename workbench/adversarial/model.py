"""The model seen by an attack: B x K logits from images in [0, 1], with checks at the boundary."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from workbench.errors import WorkbenchError


class LogitsModel(nn.Module):
    """Wraps a classifier so that it maps images in ``[0, 1]`` to B x K logits.

    Input normalisation lives here, not in the attack: ``(x - mean) / std`` is applied before
    the wrapped model, so perturbations and ``eps`` stay in pixel space.

    Args:
        model: a :class:`~workbench.training.classifier.Classifier` (dict output with ``"logits"``)
            or any module returning B x K logits.
        mean, std: per-channel normalisation, or None for none.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        if (mean is None) != (std is None):
            raise WorkbenchError("mean/std: give both or neither")
        if std is not None and min(std) <= 0:
            raise WorkbenchError(f"std: must be positive, got {list(std)}")
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.register_buffer(
            "mean", None if mean is None else torch.tensor(mean, device=device).view(1, -1, 1, 1)
        )
        self.register_buffer(
            "std", None if std is None else torch.tensor(std, device=device).view(1, -1, 1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Returns the logits (B x K) of images ``x`` (B x C x H x W in [0, 1])."""
        if self.mean is not None:
            x = (x - self.mean) / self.std
        out = self.model(x)
        if isinstance(out, dict):
            if "logits" not in out:
                raise WorkbenchError(
                    f"model: returns a dict without 'logits' (keys: {', '.join(map(str, out))})"
                )
            out = out["logits"]
        if not isinstance(out, Tensor) or out.dim() != 2:
            raise WorkbenchError(
                "model: must return B x K logits (or a dict with 'logits'), got "
                f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}"
            )
        return out


def as_logits_model(model: nn.Module) -> LogitsModel:
    """Returns ``model`` wrapped in a :class:`LogitsModel` (a LogitsModel is returned as is)."""
    return model if isinstance(model, LogitsModel) else LogitsModel(model)


def check_batch(x: Tensor, y: Tensor, num_classes: int | None = None) -> None:
    """Checks a batch at the attack boundary.

    Args:
        x: images, float32 B x C x H x W with values in [0, 1].
        y: integer labels, B.
        num_classes: when given, labels must be in ``[0, num_classes)``.

    Raises:
        WorkbenchError: one line naming what is wrong and what to do.
    """
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise WorkbenchError("x/y: images and labels must be torch tensors")
    check_images(x)
    if y.dim() != 1 or len(y) != len(x):
        raise WorkbenchError(
            f"y: need one label per image ({len(x)}), got labels of shape {tuple(y.shape)}"
        )
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise WorkbenchError(f"y: labels must be integers, got {y.dtype}")
    if num_classes is not None and len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise WorkbenchError(
            f"y: labels must be in [0, {num_classes - 1}] for a model with {num_classes} classes, "
            f"got values in [{y.min().item()}, {y.max().item()}]"
        )


def check_images(x: Tensor) -> None:
    """Checks images at the attack boundary: float32 B x C x H x W, finite, in [0, 1].

    Raises:
        WorkbenchError: one line naming what is wrong and what to do.
    """
    if not isinstance(x, Tensor):
        raise WorkbenchError("x: images must be a torch tensor")
    if x.dtype != torch.float32:
        raise WorkbenchError(
            f"x: images must be float32 in [0, 1], got {x.dtype}; convert with x.float() "
            "(divide 8-bit images by 255)"
        )
    if x.dim() != 4:
        raise WorkbenchError(f"x: images must be B x C x H x W, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise WorkbenchError("x: images contain NaN or infinite values")
    if len(x) and (x.min() < 0 or x.max() > 1):
        raise WorkbenchError(
            f"x: images must be in [0, 1], got values in [{x.min().item():.4g}, "
            f"{x.max().item():.4g}]; normalisation belongs in LogitsModel(mean=, std=)"
        )


def check_logits(logits: Tensor) -> None:
    """Raises if the model's outputs look like probabilities rather than logits.

    Raises:
        WorkbenchError: when every row is non-negative and sums to 1 (a softmax output; attacks
            need the raw logits: remove the final softmax).
    """
    if len(logits) == 0 or logits.shape[1] < 2:
        return
    rows = logits.detach().float()
    if (rows >= 0).all() and torch.allclose(
        rows.sum(dim=1), torch.ones(len(rows), device=rows.device), atol=1e-4
    ):
        raise WorkbenchError(
            "model: outputs probabilities (rows are non-negative and sum to 1), not logits; "
            "remove the final softmax"
        )


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Puts ``model`` in eval mode with its parameters frozen, and restores every submodule's
    mode and every parameter's ``requires_grad`` afterwards, also when the body raises."""
    modes = [(module, module.training) for module in model.modules()]
    grads = [(param, param.requires_grad) for param in model.parameters()]
    model.eval()
    for param, _ in grads:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode
        for param, flag in grads:
            param.requires_grad_(flag)
