"""Loading any workbench LightningModule from a checkpoint, safely and with one-line errors.

Every workbench LightningModule writes its kind into its checkpoints
(``checkpoint["workbench_kind"]``, see :func:`mark_kind`); commands name the kinds they accept,
so a GAN checkpoint handed to ``workbench robustness`` is refused with a message rather than a
``state_dict`` traceback. Files load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from workbench.errors import WorkbenchError
from workbench.registry import Registry

# kind -> LightningModule class path (imported only when a checkpoint of that kind is loaded, so
# this module stays below every module it names)
KINDS: Registry[str] = Registry("checkpoint kind")
KINDS.add("classifier", "workbench.training.classifier.Classifier")
KINDS.add("dense", "workbench.training.dense.DenseModule")
KINDS.add("vae", "workbench.generative.vae.ConditionalVAE")
KINDS.add("gan", "workbench.generative.gan.ConditionalGAN")
KINDS.add("refiner", "workbench.generative.refiner.Refiner")
KINDS.add("diffusion", "workbench.generative.diffusion.ConditionalDiffusion")


def mark_kind(checkpoint: dict[str, Any], kind: str) -> None:
    """Records ``kind`` (a key of :data:`KINDS`) in a checkpoint; call it from a module's
    ``on_save_checkpoint``."""
    KINDS.get(kind)  # an unknown kind is refused
    checkpoint["workbench_kind"] = kind


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Returns a checkpoint's contents, loaded on the CPU with ``weights_only=True``.

    Raises:
        WorkbenchError: missing, truncated or unreadable file (a text file, say), one without a
            ``state_dict``, or hyperparameters that are not a mapping of names to values.
    """
    path = Path(path)
    if path.is_dir():
        raise WorkbenchError(f"{path}: is a folder; point to a .ckpt file")
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except zipfile.BadZipFile as error:
        raise WorkbenchError(f"{path}: truncated checkpoint ({error})") from error
    except Exception as error:  # torch.load raises many unrelated types for non-checkpoints
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise WorkbenchError(
            f"{path}: not a readable checkpoint (truncated or not a torch file: "
            f"{type(error).__name__}{': ' + reason if reason else ''}); "
            "point to a complete .ckpt file"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise WorkbenchError(f"{path}: not a Lightning checkpoint (no state_dict)")
    hparams = checkpoint.get("hyper_parameters")
    if hparams is not None and not (
        isinstance(hparams, Mapping) and all(isinstance(k, str) for k in hparams)
    ):
        raise WorkbenchError(
            f"{path}: malformed checkpoint (hyper_parameters is a {type(hparams).__name__}, "
            "not a mapping of names to values); point to a checkpoint written by workbench"
        )
    return checkpoint


def checkpoint_kind(checkpoint: dict[str, Any]) -> str | None:
    """Returns the kind of module that wrote ``checkpoint``, or None when it cannot tell."""
    if checkpoint.get("workbench_kind") in KINDS:
        return checkpoint["workbench_kind"]
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    for kind, path in KINDS.items():
        if class_path == path:
            return kind
    return None


def load_module(
    path: str | Path, kinds: Iterable[str], map_location: str | torch.device = "cpu"
) -> pl.LightningModule:
    """Builds the module a checkpoint was written by, with its weights, in eval mode.

    Args:
        path: a ``.ckpt`` file written by a workbench LightningModule.
        kinds: the kinds the caller accepts (keys of :data:`KINDS`).
        map_location: device of the returned module.

    Raises:
        WorkbenchError: unreadable file, a module of another kind, or weights that do not fit.
    """
    kinds = list(kinds)
    checkpoint = read_checkpoint(path)
    kind = checkpoint_kind(checkpoint)
    if kind not in kinds:
        wanted = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
        found = f"a {kind} checkpoint" if kind else "a checkpoint of an unknown model"
        raise WorkbenchError(f"{path}: {found}; this needs a {wanted} checkpoint")
    module_name, _, class_name = KINDS.get(kind).rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    hparams = {
        k: v for k, v in (checkpoint.get("hyper_parameters") or {}).items() if not k.startswith("_")
    }
    try:
        model = cls(**hparams)
    except (WorkbenchError, TypeError, ValueError, KeyError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise WorkbenchError(
            f"{path}: its hyperparameters do not build a {kind} model "
            f"({first or type(error).__name__})"
        ) from error
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, RuntimeError) as error:
        first = str(error).strip().splitlines()[0][:200]
        raise WorkbenchError(f"{path}: weights do not fit the {kind} model ({first})") from error
    return model.to(map_location).eval()
