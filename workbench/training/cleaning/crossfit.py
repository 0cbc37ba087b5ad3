"""Out-of-sample predicted probabilities for every training item, by K-fold cross-fitting.

The training items of a config's DataModule are split into ``folds`` stratified folds (by their
given labels, seeded); for each fold and ensemble member a model is trained from the same config
on the other folds (seed ``seed + member``) and predicts the held-out fold. Each (fold, member)
is a unit of :mod:`workbench.execution`: saved as it ends, so a stopped run resumes, and spread
over Ray workers with ``--workers``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from workbench.data.datamodule import MixedDataModule, MixedDataset, item_ids
from workbench.errors import WorkbenchError
from workbench.training.lightning_cli import build


@dataclass(frozen=True)
class Items:
    """The training items of a config, in the DataModule's order.

    Attributes:
        source: each item's source name.
        item: each item's index in its source's training pool (as exclude files name it).
        label: each item's given label (noisy where noise was made).
        classes: the class names.
        noise: source name -> the noise report of ``split.json`` (for sources with noise).
    """

    source: np.ndarray
    item: np.ndarray
    label: np.ndarray
    classes: list[str]
    noise: dict

    @classmethod
    def of(cls, data: MixedDataModule) -> Items:
        """Reads the items of a set-up DataModule's training split."""
        train = data.datasets["train"]
        names = [data.source_names[sid] for sid, part in train.parts for _ in range(len(part))]
        ids = [item_ids(part) for _, part in train.parts]
        return cls(
            source=np.array(names, dtype=object),
            item=np.concatenate(ids) if ids else np.array([], np.int64),
            label=np.asarray(train.labels(), np.int64),
            classes=list(data.classes),
            noise=dict(data.noise_report),
        )

    def flipped(self) -> np.ndarray | None:
        """Whether each item's label was flipped on purpose; None when no source has noise."""
        if not self.noise:
            return None
        flips = {(name, i) for name, r in self.noise.items() for i, _, _ in r["flipped"]}
        return np.array([(s, int(i)) in flips for s, i in zip(self.source, self.item, strict=True)])


def config_args(configs: list[str], out: str, seed: int) -> list[str]:
    """The Lightning CLI arguments of a fold's training run."""
    args = [arg for config in configs for arg in ("-c", config)]
    return [*args, "--seed_everything", str(seed), "--trainer.default_root_dir", f"{out}/runs",
            "--trainer.enable_progress_bar", "false"]  # fmt: skip


def fold_of(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each item's fold: stratified by label, shuffled with ``seed``.

    Raises:
        WorkbenchError: fewer than 2 folds, or more than the smallest class has items.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min()) if len(labels) else 0
    if folds < 2 or folds > smallest:
        raise WorkbenchError(
            f"--folds: must lie in [2, {smallest}] (the smallest class has {smallest} training "
            f"items), got {folds}"
        )
    assignment = np.empty(len(labels), np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        assignment[held] = fold
    return assignment


def predict_probs(model: torch.nn.Module, dataset: MixedDataset, batch_size: int) -> np.ndarray:
    """Softmax probabilities (N x classes) of the model in eval mode on the dataset's items."""
    model.eval()
    rows = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            rows.append(torch.softmax(model(batch["image"])["logits"].double(), 1))
    return torch.cat(rows).numpy()


def fit_fold(
    configs: list[str], out: str, cwd: str, fold: int, folds: int, member: int, seed: int
) -> dict:
    """One unit: trains on every fold but ``fold`` and predicts it (in ``cwd``, where the
    config's relative paths resolve, whichever process runs it).

    Returns:
        ``{"position": [...], "probs": [[...], ...], "accuracy": float}``: the held-out items'
        positions among the training items, their probabilities, and the accuracy against
        their given labels.
    """
    os.chdir(cwd)
    cli = build(config_args(configs, out, seed + member), run_name=f"fold{fold}_member{member}")
    data = cli.datamodule
    data.setup("fit")
    labels = np.asarray(data.datasets["train"].labels(), np.int64)
    position = np.flatnonzero(fold_of(labels, folds, seed) == fold)
    held = data.hold_out(position)
    cli.trainer.fit(cli.model, data)
    probs = predict_probs(cli.model, held, data.hparams.batch_size)
    accuracy = float((probs.argmax(1) == labels[position]).mean())
    return {"position": position.tolist(), "probs": probs.tolist(), "accuracy": accuracy}


def assemble(results: dict[tuple[int, int], dict], members: int, count: int, classes: int):
    """The units' held-out probabilities as one array, members x items x classes.

    Args:
        results: (fold, member) -> what :func:`fit_fold` returned.
        members: ensemble members per fold.
        count: training items.
        classes: number of classes.
    """
    probs = np.full((members, count, classes), np.nan)
    for (_, member), result in results.items():
        probs[member, result["position"]] = result["probs"]
    if np.isnan(probs).any():
        raise RuntimeError("cross-fitting left items without a held-out prediction")
    return probs
