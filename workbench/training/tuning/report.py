"""What a sweep leaves in its folder: the trial table (``trials.csv``), the best trial's
overlay (``best.yaml``) and a plot (``tune.png``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import yaml
from matplotlib.figure import Figure

from workbench.training.tuning.overlay import overlay
from workbench.training.tuning.trial import TrialSetup, trial_folder, trial_index

STATUSES = ("completed", "stopped", "error")


def rows(results: Any, keys: list[str], metric: str, setup: TrialSetup) -> list[dict[str, Any]]:
    """One row per trial of a Ray Tune ``ResultGrid``, in trial order: its values, status
    (completed, stopped early, error), epochs run, last value of ``metric``, seconds, the
    metric at each epoch, and its run folder."""
    max_epochs = setup.max_epochs
    out = []
    for result in results:
        index = trial_index(Path(result.path).name, setup.first_tag)
        history = result.metrics_dataframe
        curve = [] if history is None or metric not in history else list(history[metric])
        status = "error" if result.error else "completed" if len(curve) >= max_epochs else "stopped"
        row = {"trial": index}
        row.update({key: result.config.get(key) for key in keys})
        row.update(
            status=status,
            epochs=len(curve),
            last=curve[-1] if curve else None,
            best=None,
            seconds=round(float((result.metrics or {}).get("time_total_s", 0.0)), 1),
            path=str(trial_folder(setup.runs, index)),
        )
        row.update({f"epoch_{i + 1}": value for i, value in enumerate(curve)})
        out.append(row)
    return sorted(out, key=lambda r: r["trial"])


def mark_best(table: list[dict[str, Any]], mode: str) -> dict[str, Any] | None:
    """Picks the best trial on its last ``metric`` value (among the trials that ran to the end
    when any did), lowest trial number on ties; sets ``best`` on its row and returns it."""
    ran = [r for r in table if r["last"] is not None and not math.isnan(r["last"])]
    pool = [r for r in ran if r["status"] == "completed"] or ran
    if not pool:
        return None
    sign = 1 if mode == "max" else -1
    best = max(pool, key=lambda r: (sign * r["last"], -r["trial"]))
    for row in table:
        row["best"] = row is best
    return best


def write_csv(table: list[dict[str, Any]], path: Path, max_epochs: int) -> None:
    """Writes the trial table (without the trial folders) as CSV."""
    columns = [c for c in table[0] if c != "path" and not c.startswith("epoch_")]
    columns += [f"epoch_{i + 1}" for i in range(max_epochs)]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)


def write_best(config: dict, best: dict[str, Any], keys: list[str], path: Path, **trainer) -> None:
    """Writes ``best.yaml``: the overlay that sets the best trial's values (and the trainer
    options the trials ran with), for ``workbench fit -c CONFIG -c best.yaml``."""
    values = {key: best[key] for key in keys}
    out = overlay(config, values)
    if trainer:
        out.setdefault("trainer", {}).update(trainer)
    header = f"# best trial {best['trial']} of the sweep (selected on validation)\n"
    path.write_text(header + yaml.safe_dump(out, sort_keys=False))


def plot(table: list[dict[str, Any]], keys: list[str], metric: str, log_keys: set[str],
         path: Path) -> None:  # fmt: skip
    """Writes ``tune.png``: the metric against each searched value (stopped trials hollow) and
    the curves of all trials (stopped ones grey, the best one bold)."""
    fig = Figure(figsize=(4 * (len(keys) + 1), 3.5))
    axes = fig.subplots(1, len(keys) + 1, squeeze=False)[0]
    done = [r for r in table if r["last"] is not None]
    for ax, key in zip(axes, keys, strict=False):
        for status, face in (("completed", "C0"), ("stopped", "none")):
            points = [r for r in done if r["status"] == status and _number(r[key])]
            ax.scatter([r[key] for r in points], [r["last"] for r in points],
                       facecolors=face, edgecolors="C0", label=status)  # fmt: skip
        if key in log_keys:
            ax.set_xscale("log")
        labels = [r for r in done if not _number(r[key])]
        for row in labels:  # choices that are not numbers: one column per value
            ax.scatter([str(row[key])], [row["last"]], color="C1")
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    curves = axes[-1]
    for row in done:
        ys = [row[f"epoch_{i + 1}"] for i in range(row["epochs"])]
        style = {"color": "grey", "ls": "--", "lw": 0.8} if row["status"] == "stopped" else {}
        if row.get("best"):
            style = {"color": "C3", "lw": 2.5, "label": f"best (trial {row['trial']})"}
        curves.plot(range(1, len(ys) + 1), ys, marker=".", **style)
    curves.set_xlabel("epoch")
    curves.set_ylabel(metric)
    curves.set_title("all trials (grey dashed: stopped early)", fontsize=8)
    curves.grid(alpha=0.3)
    curves.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
