"""``workbench pseudo-label``: an ensemble of classifiers labels unlabelled items.

Every member sees each item at its own input (harmonised as in training); the members' softmax
probabilities are averaged, the class with the highest mean is the item's pseudo-label and that
mean its confidence. An item is kept when its confidence reaches ``min_confidence`` and the
members agree on the label (``all``: every member's own prediction is that label; ``majority``:
more than half of them). Kept items are written as a dataset in the standard contract (kind
``pseudo``, no dense labels) with their confidence and agreement in their JSON, and are read
back by the ``pseudo`` source kind. When the input carries labels (the natural digits, a
rendered dataset, an ImageFolder tree) they are never used to choose, only to score: the
manifest then records the pseudo-labels' accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from workbench import __version__
from workbench.checkpoint import load_module
from workbench.data.format import FORMAT_NAME, FORMAT_VERSION, MODALITIES
from workbench.data.sources import Source, source_labels
from workbench.data.transforms import harmonise
from workbench.data.writer import (
    clear_partials,
    dataset_lock,
    finish_manifest,
    finished_shards,
    open_dataset_dir,
    write_shard,
)
from workbench.errors import WorkbenchError
from workbench.generative.sampling import SampleRecord, file_sha256, to_rgb8

_IDENTITY = ("kind", "ensemble", "agree", "min_confidence", "data")


def load_ensemble(checkpoints: list[str]) -> list[torch.nn.Module]:
    """Loads classifier checkpoints (``weights_only``) that share classes and input.

    Raises:
        WorkbenchError: fewer than one checkpoint, or members with other classes, image size or
            channels than the first (both named).
    """
    if not checkpoints:
        raise WorkbenchError("--ckpt: give at least one classifier checkpoint")
    members = [load_module(path, ["classifier"]).eval() for path in checkpoints]
    first = members[0]
    for path, member in zip(checkpoints[1:], members[1:], strict=True):
        for what, value in (("classes", "class_names"), ("input size", "image_size"),
                            ("channels", "in_channels")):  # fmt: skip
            mine, theirs = _field(member, value), _field(first, value)
            if mine != theirs:
                raise WorkbenchError(
                    f"--ckpt: {path} has other {what} ({mine}) than {checkpoints[0]} ({theirs}); "
                    "an ensemble's members must share classes and input"
                )
    return members


def _field(module: torch.nn.Module, name: str) -> Any:
    return list(module.class_names) if name == "class_names" else int(module.hparams[name])


def ensemble_probs(
    members: list[torch.nn.Module], source: Source, batch_size: int = 256, progress: bool = True
) -> np.ndarray:
    """Every member's softmax probabilities on every item: members x items x classes."""
    size, channels = _field(members[0], "image_size"), _field(members[0], "in_channels")
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, len(source), batch_size), desc="pseudo-label",
                          unit="batch", disable=not progress):  # fmt: skip
            stop = min(start + batch_size, len(source))
            images = torch.stack(
                [harmonise(source[i], size, channels)["image"] for i in range(start, stop)]
            )
            out.append(torch.stack([torch.softmax(m(images)["logits"], 1) for m in members]))
    return torch.cat(out, 1).numpy()


def choose(
    probs: np.ndarray, agree: Literal["all", "majority"], min_confidence: float
) -> dict[str, np.ndarray]:
    """The pseudo-labels of ``probs`` (members x items x classes) and which items to keep.

    Returns:
        ``label``, ``confidence`` (mean probability of the label), ``agreement`` (share of
        members predicting the label) and ``keep`` per item.
    """
    mean = probs.mean(0)
    label = mean.argmax(1)
    confidence = mean[np.arange(len(label)), label]
    agreement = (probs.argmax(2) == label[None]).mean(0)
    agreed = agreement == 1.0 if agree == "all" else agreement > 0.5
    return {"label": label, "confidence": confidence, "agreement": agreement,
            "keep": agreed & (confidence >= min_confidence)}  # fmt: skip


def pseudo_label(
    checkpoints: list[str],
    source: Source,
    data: str,
    out: str | Path,
    agree: Literal["all", "majority"] = "all",
    min_confidence: float = 0.9,
    shard_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Labels ``source`` with the ensemble and writes the kept items to ``out``.

    Args:
        checkpoints: the members' classifier checkpoints.
        source: the items (labels, if any, are used only to score).
        data: how the user named the items (recorded in the manifest).
        out: dataset folder.
        agree: ``all`` or ``majority`` of the members must predict the label.
        min_confidence: the least mean probability of a kept label, in [0, 1].
        shard_size: items per shard.
        progress: show progress bars.

    Returns:
        the summary recorded in the manifest (counts, thresholds, accuracy when known).

    Raises:
        WorkbenchError: a bad threshold, an ensemble that does not share classes or input,
            or ``out`` holding another dataset; nothing is written then.
    """
    if not 0.0 <= min_confidence <= 1.0:
        raise WorkbenchError(f"--min-confidence: must lie in [0, 1], got {min_confidence}")
    if agree not in ("all", "majority"):
        raise WorkbenchError(f"--agree: must be all or majority, got {agree!r}")
    members = load_ensemble(checkpoints)
    classes = list(members[0].class_names)
    probs = ensemble_probs(members, source, progress=progress)
    chosen = choose(probs, agree, min_confidence)
    kept = np.flatnonzero(chosen["keep"])
    truth = source_labels(source)
    known = bool(len(truth)) and (truth >= 0).all() and list(source.classes) == classes
    summary = {
        "items": len(truth),
        "kept": len(kept),
        "agree": agree,
        "min_confidence": min_confidence,
        "accuracy_kept": float((chosen["label"][kept] == truth[kept]).mean())
        if known and len(kept) else None,
        "accuracy_all": float((chosen["label"] == truth).mean()) if known else None,
    }  # fmt: skip
    _write(Path(out), source, data, checkpoints, classes, chosen, kept, truth if known else None,
           summary, shard_size, progress)  # fmt: skip
    return summary


def _records(source: Source, positions: np.ndarray, start: int, chosen: dict, classes: list[str],
             truth: np.ndarray | None) -> list[SampleRecord]:  # fmt: skip
    records = []
    for offset, position in enumerate(positions):
        image = to_rgb8(np.asarray(source[int(position)]["image"], np.float32)[None])[0]
        size = image.shape[:2]
        label = int(chosen["label"][position])
        meta = {
            "index": start + offset,
            "label": label,
            "label_name": classes[label],
            "confidence": float(chosen["confidence"][position]),
            "agreement": float(chosen["agreement"][position]),
            "origin": int(position),
        }
        if truth is not None:
            meta["true_label"] = int(truth[position])
        records.append(SampleRecord({"rgb": image, "depth": np.zeros(size, np.float32),
                                     "seg": np.zeros(size, np.uint8),
                                     "inst": np.zeros(size, np.uint16)}, meta))  # fmt: skip
    return records


def _write(out: Path, source: Source, data: str, checkpoints: list[str], classes: list[str],
           chosen: dict, kept: np.ndarray, truth: np.ndarray | None, summary: dict,
           shard_size: int, progress: bool) -> None:  # fmt: skip
    if not len(kept):
        raise WorkbenchError(
            f"no item passed --agree {summary['agree']} and --min-confidence "
            f"{summary['min_confidence']}; lower them to write a dataset"
        )
    num_shards = -(-len(kept) // shard_size)
    ensemble = [{"checkpoint": str(Path(c).resolve()), "sha256": file_sha256(c)}
                for c in checkpoints]  # fmt: skip
    with dataset_lock(out):
        manifest = open_dataset_dir(out, {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": "pseudo",
            "name": "pseudo_labels", "ensemble": ensemble, "agree": summary["agree"],
            "min_confidence": summary["min_confidence"], "data": data, "seed": 0,
            "num_samples": len(kept), "shard_size": shard_size, "num_shards": num_shards,
            "condition": "pseudo", "resolution": None,
            "classes": {str(i): c for i, c in enumerate(classes)}, "modalities": MODALITIES,
            "dense_labels": False, "pseudo_labels": summary,
            "versions": {"workbench": __version__}, "command": list(sys.argv),
            "complete": False, "shards": [],
        }, _IDENTITY)  # fmt: skip
        done = finished_shards(out)
        todo = [k for k in range(num_shards) if k not in done]
        clear_partials(out, todo)
        with tqdm(total=len(todo), unit="shard", desc="write", disable=not progress) as bar:
            for shard in todo:
                start = shard * shard_size
                positions = kept[start : start + shard_size]
                write_shard(out, shard, start,
                            _records(source, positions, start, chosen, classes, truth))  # fmt: skip
                bar.update()
        manifest["resolution"] = int(np.asarray(source[int(kept[0])]["image"]).shape[0])
        finish_manifest(out, manifest)
