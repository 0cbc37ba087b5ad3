"""Weight initialization schemes and loading a trained backbone from a Lightning checkpoint."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.models.norms import BatchRenorm2d

INIT_SCHEMES = ("he_normal", "he_uniform", "xavier_normal", "xavier_uniform")
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, BatchRenorm2d)


def initialize(module: nn.Module, scheme: str = "he_normal", zero_bias: bool = True) -> nn.Module:
    """Initializes the conv and linear weights of ``module`` and resets its norms.

    He schemes use ``fan_in`` and the ReLU gain (He normal: ``std = sqrt(2 / fan_in)``); Xavier
    schemes use gain 1. Norm layers get weight 1 and bias 0.

    Args:
        module: the model; changed in place.
        scheme: one of :data:`INIT_SCHEMES`.
        zero_bias: set conv and linear biases to 0 (otherwise they are left as they are).

    Returns:
        ``module``.

    Raises:
        WorkbenchError: unknown ``scheme``.
    """
    if scheme not in INIT_SCHEMES:
        raise WorkbenchError(
            f"init scheme must be one of {', '.join(INIT_SCHEMES)}; got {scheme!r}"
        )
    for layer in module.modules():
        if isinstance(layer, (nn.modules.conv._ConvNd, nn.Linear)):
            _init_weight(layer.weight, scheme)
            if zero_bias and layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, _NORM_TYPES) and layer.weight is not None:
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


def _init_weight(weight: torch.Tensor, scheme: str) -> None:
    if scheme == "he_normal":
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
    elif scheme == "he_uniform":
        nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="relu")
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight)
    else:
        nn.init.xavier_uniform_(weight)


def load_backbone_weights(
    model: nn.Module, checkpoint_path: str | Path, prefix: str = "backbone."
) -> list[str]:
    """Loads the ``prefix`` entries of a Lightning checkpoint's ``state_dict`` into ``model``.

    Entries whose shape differs from the model's (say, a classifier head for another number of
    classes) are skipped and keep the model's values; every other model entry must be present.

    Args:
        model: the module to fill, e.g. a backbone; changed in place.
        checkpoint_path: a ``.ckpt`` file written by Lightning (or any ``torch.save`` of a dict
            with a ``state_dict``).
        prefix: the checkpoint key prefix of the model's entries (``""`` for all of them).

    Returns:
        The model's key names that were skipped because their shapes differ.

    Raises:
        WorkbenchError: unreadable file, no ``state_dict``, no entry under ``prefix``, or model
            entries missing from (or unknown to) the checkpoint.
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise WorkbenchError(f"{path}: not a readable checkpoint ({_reason(error)})") from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise WorkbenchError(f"{path}: not a readable checkpoint (no state_dict)")
    entries = {
        key[len(prefix) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    own = model.state_dict()
    if not entries.keys() & own.keys():
        raise WorkbenchError(f"{path}: no state_dict entry under prefix {prefix!r} fits the model")
    missing = sorted(own.keys() - entries.keys())
    unexpected = sorted(entries.keys() - own.keys())
    if missing or unexpected:
        raise WorkbenchError(
            f"{path}: checkpoint does not match the model under prefix {prefix!r}: "
            f"missing {_few(missing)}; unexpected {_few(unexpected)}"
        )
    skipped = [key for key, value in entries.items() if value.shape != own[key].shape]
    for key in skipped:
        del entries[key]
    model.load_state_dict(entries, strict=False)
    return skipped


def _few(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _reason(error: Exception) -> str:
    text = str(error)
    unsupported = re.search(r"Unsupported global: [^\n]*", text)
    if unsupported:
        return unsupported.group(0)
    return text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
