"""``workbench clean``: find the training items whose labels look wrong, and write what a
source needs to leave them out.

Every check (options, config, folds, cluster address) runs before the output folder is touched;
the cross-fitting units are saved as they end, so a stopped run continues with the same command,
and a rerun with another ``--method`` reuses them. The results are written whole at the end:

* ``suspects.csv``: rank, source, item, given label, predicted label, score;
* ``exclude.json``: ``{"items": {source: [item, ...]}, "reviewed": {...}}``, read back by a
  source's ``exclude:`` (decisions made in the app's Cleaning page survive a rerun);
* ``report.json``: the method, its counts, the held-out accuracy, and when the noise was made on
  purpose (``noise:`` on a source) the precision and recall of the flagged items.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import WorkbenchError, option_error
from workbench.execution import Executor, Unit, check_address, claim_folder
from workbench.training.cleaning import EXCLUDE, FOLDS, REPORT, SETTINGS, SUSPECTS
from workbench.training.cleaning.crossfit import (
    Items,
    assemble,
    config_args,
    fit_fold,
    fold_of,
)
from workbench.training.cleaning.rank import Ranking, detection, rank
from workbench.training.lightning_cli import build, resolve


class CleanOptions(BaseModel):
    """The options of a cleaning run (``workbench clean``'s flags)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    configs: list[str] = Field(min_length=1)
    out: str
    folds: int = 5
    method: Literal["confident", "loss", "ensemble"] = "confident"
    members: int | None = Field(None, ge=1, le=20)
    seed: int = 0
    workers: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1)
    ray_address: str | None = None

    @classmethod
    def parse(cls, **values: Any) -> CleanOptions:
        """Checks the flags; errors name the flag.

        Raises:
            WorkbenchError: a bad value, in one line.
        """
        try:
            options = cls(**values)
        except ValidationError as exc:
            raise option_error(exc, cls.model_fields, "--") from None
        if options.method == "ensemble" and options.ensemble_members < 2:
            raise WorkbenchError("--members: the ensemble method needs at least 2 members")
        return options

    @property
    def ensemble_members(self) -> int:
        """Models per fold: ``members``, else 3 for the ensemble method and 1 otherwise."""
        return self.members or (3 if self.method == "ensemble" else 1)


def clean(options: CleanOptions, say: Callable[[str], None] = lambda line: None) -> dict:
    """Runs (or continues) a cleaning run; returns its report. ``say`` gets a progress line per
    finished fold.

    Raises:
        WorkbenchError: bad options, config or folder, in one line, before anything is written.
    """
    import torch

    check_address(options.ray_address)
    out, members = Path(options.out), options.ensemble_members
    configs = [str(Path(c).resolve()) for c in options.configs]
    config = resolve([arg for c in configs for arg in ("-c", c)])
    cli = build(config_args(configs, str(out), options.seed), run_name="items")
    cli.datamodule.setup("fit")
    items = Items.of(cli.datamodule)
    fold_of(items.label, options.folds, options.seed)  # checks --folds before any write
    identity = {"config": config, "folds": options.folds, "members": members,
                "seed": options.seed}  # fmt: skip
    claim_folder(out / SETTINGS, identity, "cleaning run")

    threads = options.threads or torch.get_num_threads()
    executor = Executor(options.workers, options.ray_address, threads, out / FOLDS)
    units = {
        (fold, member): Unit(f"fold{fold}_member{member}", fit_fold, dict(
            configs=configs, out=str(out), cwd=os.getcwd(), fold=fold, folds=options.folds,
            member=member, seed=options.seed))
        for fold in range(options.folds)
        for member in range(members)
    }  # fmt: skip
    start = time.perf_counter()
    finished = []

    def progress(unit: Unit, result: dict, seconds: float) -> None:
        finished.append(unit.key)
        how = "saved earlier" if seconds == 0 else f"{seconds:.0f} s"
        say(f"[{len(finished)}/{len(units)}] {unit.key}: held-out accuracy against the given "
            f"labels {result['accuracy']:.4f} ({how})")  # fmt: skip

    done = executor.run(list(units.values()), progress)
    results = {key: done[unit.key] for key, unit in units.items()}
    probs = assemble(results, members, len(items.label), len(items.classes))
    ranking = rank(options.method, items.label, probs)
    report = _report(options, members, items, ranking, probs, time.perf_counter() - start)
    report["execution"] = {"workers": options.workers, "threads": threads}
    _write(out, items, ranking, report)
    return report


def _report(options: CleanOptions, members: int, items: Items, ranking: Ranking, probs,
            seconds: float) -> dict[str, Any]:  # fmt: skip
    flagged_sources = items.source[ranking.flagged]
    flipped = items.flipped()
    return {
        "method": options.method,
        "folds": options.folds,
        "members": members,
        "seed": options.seed,
        "items": len(items.label),
        "flagged": len(ranking.flagged),
        "flagged_per_source": {
            name: int((flagged_sources == name).sum()) for name in dict.fromkeys(items.source)
        },
        "held_out_accuracy": float((probs.mean(0).argmax(1) == items.label).mean()),
        "noise": None if flipped is None else {
            "made": {name: {**{k: v for k, v in r.items() if k != "flipped"},
                            "flipped": len(r["flipped"])} for name, r in items.noise.items()},
            "detection": detection(ranking, flipped),
        },
        "seconds": round(seconds, 1),
    }  # fmt: skip


def _suspects_csv(items: Items, ranking: Ranking) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "source", "item", "given", "predicted", "score"])
    for rank_, position in enumerate(ranking.flagged, 1):
        writer.writerow([
            rank_, items.source[position], int(items.item[position]),
            items.classes[items.label[position]], items.classes[ranking.predicted[position]],
            f"{ranking.score[position]:.6g}",
        ])  # fmt: skip
    return buffer.getvalue()


def exclude_items(flagged: dict[str, list[int]], reviewed: dict[str, str]) -> dict[str, list[int]]:
    """The items to leave out: the flagged ones, less those a reviewer kept, plus those a
    reviewer excluded (``reviewed`` maps ``source/item`` to ``keep`` or ``exclude``)."""
    chosen = {name: set(ids) for name, ids in flagged.items()}
    for key, decision in reviewed.items():
        name, _, item = key.rpartition("/")
        ids = chosen.setdefault(name, set())
        if decision == "keep":
            ids.discard(int(item))
        else:
            ids.add(int(item))
    return {name: sorted(ids) for name, ids in chosen.items()}


def _write(out: Path, items: Items, ranking: Ranking, report: dict) -> None:
    flagged: dict[str, list[int]] = {name: [] for name in dict.fromkeys(items.source)}
    for position in ranking.flagged:
        flagged[items.source[position]].append(int(items.item[position]))
    reviewed = {}
    if (out / EXCLUDE).is_file():
        reviewed = json.loads((out / EXCLUDE).read_text()).get("reviewed", {})
    exclude = {"method": report["method"], "flagged": flagged, "reviewed": reviewed,
               "items": exclude_items(flagged, reviewed)}  # fmt: skip
    files = {
        SUSPECTS: _suspects_csv(items, ranking),
        EXCLUDE: json.dumps(exclude, indent=1),
        REPORT: json.dumps(report, indent=1),
    }
    for name, text in files.items():
        partial = out / f"{name}.partial"
        partial.write_text(text)
        os.replace(partial, out / name)
