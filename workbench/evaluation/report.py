"""The robustness report: ``report.json`` (fields in the spirit of RobustBench) and a
self-contained ``report.html`` whose matplotlib plots are embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from workbench.evaluation.results import Examples

STYLE = """
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td.name { text-align: left; }
.PASS { color: #17803d; font-weight: bold; } .FAIL { color: #b3261e; font-weight: bold; }
.SKIP { color: #777; font-weight: bold; }
img { max-width: 100%; }
"""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def eps_plot(report: dict[str, Any]) -> str:
    """Accuracy against epsilon per attack and for the worst case (clean accuracy at 0)."""
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    eps = [0.0, *report["eps"]]
    for name, accs in report["robust_acc"].items():
        ax.plot(eps, [report["clean_acc"], *accs.values()], marker="o", label=name, alpha=0.8)
    worst = [report["clean_acc"], *report["worst_case_acc"].values()]
    ax.plot(eps, worst, marker="s", color="black", linewidth=2.5, label="worst case")
    ax.axhline(1.0 / report["num_classes"], color="grey", linestyle=":", label="chance")
    ax.set(xlabel=f"epsilon ({report['norm']})", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(figure)


TABLE_TITLES = {
    "cifar10c": "CIFAR-10-C's parameters",
    "imagenet_c": "ImageNet-C's parameters (as the imagecorruptions package applies them)",
}
"""How a report names the corruptions' parameter table."""


def _table_title(report: dict[str, Any]) -> str:
    """The corruptions' parameter table, for HTML (reports from before the choice used
    CIFAR-10-C's)."""
    return html.escape(TABLE_TITLES[report["settings"].get("corruption_parameters", "cifar10c")])


def corruption_plot(report: dict[str, Any]) -> str:
    """Accuracy against severity for every corruption (severity 0 = clean)."""
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    for name, per in report["corruptions"].items():
        severities = [0, *map(int, per)]
        ax.plot(severities, [report["clean_acc"], *per.values()], marker=".", label=name)
    ax.set(xlabel="severity", ylabel="accuracy", ylim=(-0.02, 1.02), xticks=range(6))
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _png(figure)


def condition_plot(report: dict[str, Any]) -> str:
    """Accuracy per render condition of the same scenes."""
    names = list(report["conditions"])
    figure = Figure(figsize=(6, 3))
    ax = figure.subplots()
    ax.bar(names, [report["conditions"][n]["acc"] for n in names], color="#4c72b0")
    ax.set(ylabel="accuracy", ylim=(0, 1))
    ax.grid(alpha=0.3, axis="y")
    return _png(figure)


def examples_plot(examples: Examples) -> str:
    """Clean image, adversarial image and the perturbation (scaled to its largest value)."""
    count = len(examples.label)
    figure = Figure(figsize=(1.4 * count, 4.4))
    axes = figure.subplots(3, count, squeeze=False)
    for i in range(count):
        clean = examples.x[i].permute(1, 2, 0).numpy()
        adv = examples.x_adv[i].permute(1, 2, 0).numpy()
        delta = (adv - clean).mean(axis=2)
        scale = max(float(np.abs(delta).max()), 1e-12)
        cmap = "gray" if clean.shape[2] == 1 else None
        axes[0, i].imshow(clean.squeeze(2) if cmap else clean, cmap=cmap, vmin=0, vmax=1)
        axes[0, i].set_title(f"label {examples.label[i]}", fontsize=8)
        axes[1, i].imshow(adv.squeeze(2) if cmap else adv, cmap=cmap, vmin=0, vmax=1)
        axes[1, i].set_title(f"pred {examples.pred[i]}", fontsize=8)
        axes[2, i].imshow(delta, cmap="seismic", vmin=-scale, vmax=scale)
        axes[2, i].set_title(examples.attack[i], fontsize=7)
        for row in range(3):
            axes[row, i].axis("off")
    figure.suptitle(
        f"clean / adversarial / perturbation (eps {examples.eps:g}, scaled per image)",
        fontsize=9,
    )
    return _png(figure)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any, first: bool) -> str:
        text = f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))
        return f'<td class="name">{text}</td>' if first else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(cell(v, i == 0) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _mce_section(mce: dict[str, Any] | None) -> list[str]:
    """The corruption errors normalised by the baseline (none without ``--baseline``)."""
    if mce is None:
        return []

    def number(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.3f}"

    counted = f"{len(mce['counted'])} of the 15 benchmark corruptions"
    missing = f" (not run: {', '.join(mce['missing'])})" if mce["missing"] else ""
    return [
        "<h3>Corruption error normalised by the baseline</h3>",
        f"<p>Baseline: {html.escape(mce['baseline'])} (clean accuracy "
        f"{mce['baseline_clean_acc']:.4f}). mCE {number(mce['mce'])}, relative mCE "
        f"{number(mce['relative_mce'])}, over {counted}{html.escape(missing)}; below 1 is more "
        "robust than the baseline (Hendrycks and Dietterich 2019).</p>",
        _table(
            ["corruption", "CE", "relative CE"],
            [[n, number(v["ce"]), number(v["relative_ce"])]
             for n, v in mce["per_corruption"].items()],
        ),  # fmt: skip
    ]


def _cascade_text(report: dict[str, Any]) -> str:
    """The paragraph that says how the worst case was found, with any departure from
    AutoAttack that the model's classes forced."""
    preset = report.get("cascade_preset", "standard")
    stages = ", ".join(report.get("cascade_stages", []))
    targets = report.get("target_classes", report["settings"]["targets"])
    text = (
        "<p>Worst case: per example over every attack; the stages of AutoAttack's "
        f"{html.escape(preset)} version ({html.escape(stages)}) not already in the sweep then "
        "attack only the points still standing. Targeted stages (-t) and targeted sweep attacks "
        f"try the {targets} most likely wrong classes in turn.</p>"
    )
    notes = report.get("cascade_notes", [])
    if notes:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        text += f"<p>Departures from AutoAttack for this model:</p><ul>{items}</ul>"
    return text


def render_html(report: dict[str, Any], examples: Examples | None) -> str:
    """Returns the report as one self-contained HTML page."""
    eps = [f"{e:g}" for e in report["eps"]]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Robustness report</title>",
        f"<style>{STYLE}</style></head><body><h1>Robustness report</h1>",
        (
            f"<p>Model <code>{html.escape(str(report.get('model', '')))}</code> on "
            f"{html.escape(str(report.get('data', '')))}: {report['n_examples']} examples, "
            f"{report['norm']} threat model, budget {report['settings']['budget']} "
            f"({report['settings']['steps']} steps, {report['settings']['restarts']} restarts, "
            f"{report['settings']['queries']} black-box queries), seed "
            f"{report['settings']['seed']}.</p>"
        ),
        (
            "<h2>Honesty checks</h2><table><tr><th>check</th><th>status</th><th>value</th>"
            "<th>threshold</th><th>detail</th></tr>"
        ),
    ]
    for check in report["checks"]:
        value = "" if check["value"] is None else f"{check['value']:.4g}"
        parts.append(
            f"<tr><td class='name'>{check['name']}</td><td class='{check['status']}'>"
            f"{check['status']}</td><td>{value}</td><td>{html.escape(check['threshold'])}</td>"
            f"<td class='name'>{html.escape(check['detail'])}</td></tr>"
        )
    parts.append("</table>")
    rows = [["clean", *[report["clean_acc"]] * len(eps)]]
    rows += [[name, *accs.values()] for name, accs in report["robust_acc"].items()]
    rows.append(["worst case", *report["worst_case_acc"].values()])
    parts += [
        "<h2>Adversarial accuracy</h2>",
        _table(["attack", *[f"eps {e}" for e in eps]], rows),
        _img(eps_plot(report), "accuracy against epsilon"),
        _cascade_text(report),
    ]
    stage_rows = [
        [f"eps {e}", st["stage"], st["attacked"], st["broken"], f"{st['seconds']:.1f}"]
        for e, stages in report["cascade"].items()
        for st in stages
    ]
    if stage_rows:
        parts.append(
            _table(["epsilon", "cascade stage", "attacked", "broken", "seconds"], stage_rows)
        )
    if examples is not None:
        parts += ["<h2>Example adversarials</h2>", _img(examples_plot(examples), "examples")]
    if report["corruptions"]:
        mean = report["mean_corruption_acc"]
        parts += [
            "<h2>Common corruptions</h2>",
            f"<p>Mean accuracy over corruptions and severities: {mean:.4f}; "
            f"{_table_title(report)}.</p>",
            _img(corruption_plot(report), "corruptions"),
            _table(
                ["corruption", *[f"severity {s}" for s in report["settings"]["severities"]]],
                [[n, *per.values()] for n, per in report["corruptions"].items()],
            ),
            *_mce_section(report.get("mce")),
        ]
    if report["conditions"]:
        parts += [
            "<h2>Condition shift (paired renders)</h2>",
            _img(condition_plot(report), "conditions"),
            _table(
                ["condition", "accuracy", "agrees with reference"],
                [[n, c["acc"], c["agreement"]] for n, c in report["conditions"].items()],
            ),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(report: dict[str, Any], examples: Examples | None, out: Path) -> Path:
    """Writes ``report.json`` and ``report.html`` into ``out``; returns the HTML path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    page = out / "report.html"
    page.write_text(render_html(report, examples))
    return page
