"""Robustness reports under a data root (``DIR/report.json`` written by ``workbench robustness``):
discovery, validated reading, tables and the report's own plots."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.inspect.paths import relative_to_root, resolve_under, walk_under

REPORT = "report.json"
REQUIRED = ("clean_acc", "eps", "norm", "robust_acc", "worst_case_acc", "corruptions", "checks")
REQUIRED_DENSE = ("clean", "eps", "norm", "sweep", "worst_case", "corruptions", "checks")
DENSE_METRIC = {"seg": "miou", "depth": "absrel"}


def find_reports(root: str | Path, max_depth: int = 6) -> list[str]:
    """Lists the folders holding a ``report.json`` under ``root`` (relative paths)."""
    return [
        relative_to_root(root, folder)
        for folder, _dirs, files in walk_under(root, max_depth, frozenset({"shards"}))
        if REPORT in files
    ]


def read_report(root: str | Path, folder: str) -> dict[str, Any]:
    """Reads and checks ``FOLDER/report.json`` under ``root``.

    Raises:
        WorkbenchError: the folder leaves the root, or the report is missing, not JSON, or lacks
            a field every report has.
    """
    path = resolve_under(root, folder) / REPORT
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no report here; run `workbench robustness` first") from None
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"{path}: unreadable report ({exc})") from None
    dense = isinstance(report, dict) and report.get("kind") == "dense"
    required = REQUIRED_DENSE if dense else REQUIRED
    missing = [key for key in required if not isinstance(report, dict) or key not in report]
    if missing:
        raise WorkbenchError(f"{path}: not a robustness report (no {', '.join(missing)})")
    return report


def accuracy_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per attack (plus clean and worst case): accuracy at every epsilon."""
    columns = [f"{e:g}" for e in report["eps"]]
    rows = [{"attack": "clean", **{f"eps {c}": report["clean_acc"] for c in columns}}]
    rows += [
        {"attack": name, **{f"eps {c}": accs.get(c) for c in columns}}
        for name, accs in report["robust_acc"].items()
    ]
    rows.append(
        {"attack": "worst case", **{f"eps {c}": report["worst_case_acc"].get(c) for c in columns}}
    )
    return rows


def corruption_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per corruption: accuracy at every severity."""
    return [
        {"corruption": name, **{f"severity {s}": acc for s, acc in per.items()}}
        for name, per in report["corruptions"].items()
    ]


def check_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per honesty check: name, status (PASS/FAIL/SKIP), value, threshold, detail."""
    keys = ("name", "status", "value", "threshold", "detail")
    return [{k: check.get(k) for k in keys} for check in report["checks"]]


def report_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """The report's own plots as PNG bytes: accuracy against epsilon, and corruptions and
    conditions when the report has them."""
    from workbench.evaluation.report import condition_plot, corruption_plot, eps_plot

    plots = {"accuracy against epsilon": eps_plot(report)}
    if report["corruptions"]:
        plots["accuracy against corruption severity"] = corruption_plot(report)
    if report.get("conditions"):
        plots["accuracy per render condition"] = condition_plot(report)
    return {name: base64.b64decode(data) for name, data in plots.items()}


def is_dense_report(report: dict[str, Any]) -> bool:
    """Whether ``report`` evaluates a dense (segmentation / depth) model."""
    return report.get("kind") == "dense"


def dense_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """A dense report's sweep: one row per output, attack and the worst case, with the output's
    headline metric (mIoU or AbsRel) at every epsilon (clean first)."""
    columns = [f"{e:.6g}" for e in report["eps"]]
    rows = []
    for head, by_attack in report["sweep"].items():
        metric = DENSE_METRIC[head]
        for attack, per in [*by_attack.items(), ("worst case", report["worst_case"][head])]:
            rows.append({"metric": metric, "attack": attack, "clean": report["clean"][metric],
                         **{f"eps {c}": per[c][metric] for c in columns}})  # fmt: skip
    return rows


def dense_corruption_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per corruption and headline metric: its value at every severity."""
    metrics = [DENSE_METRIC[h] for h in report["sweep"]]
    return [
        {"corruption": name, "metric": metric,
         **{f"severity {sev}": values[metric] for sev, values in per.items()}}
        for name, per in report["corruptions"].items() for metric in metrics
    ]  # fmt: skip


def dense_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """A dense report's plots as PNG bytes: each metric against epsilon, and against the
    corruptions' severity when the report has corruptions."""
    from workbench.evaluation.dense_report import corruption_plot, sweep_plot

    plots = {}
    for head in report["sweep"]:
        metric = DENSE_METRIC[head]
        plots[f"{metric} against epsilon"] = sweep_plot(report, head, metric)
        if report["corruptions"]:
            plots[f"{metric} against corruption severity"] = corruption_plot(report, metric)
    return {name: base64.b64decode(data) for name, data in plots.items()}
