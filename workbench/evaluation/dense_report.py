"""The dense robustness report: ``report.json`` and a self-contained ``report.html`` with the
same sections as a classifier's (checks, the sweep, corruptions, conditions) and overlays of
clean and attacked predictions."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from workbench.evaluation.dense_data import DenseData
from workbench.evaluation.report import STYLE, _img, _png, _table, _table_title

METRIC_LABEL = {"miou": "mIoU (higher is better)", "absrel": "AbsRel (lower is better)"}
SEG_STYLE = {"cmap": "tab20", "vmin": 0, "vmax": 19, "interpolation": "nearest"}


def _metrics(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(head, {"seg": "miou", "depth": "absrel"}[head]) for head in report["sweep"]]


def sweep_plot(report: dict[str, Any], head: str, metric: str) -> str:
    """The metric against epsilon per attack and for the per-image worst case."""
    figure = Figure(figsize=(6, 3.6))
    ax = figure.subplots()
    eps = [0.0, *report["eps"]]
    clean = report["clean"][metric]
    for attack, per in report["sweep"][head].items():
        ax.plot(eps, [clean, *(v[metric] for v in per.values())], marker="o", label=attack)
    worst = [clean, *(v[metric] for v in report["worst_case"][head].values())]
    ax.plot(eps, worst, marker="s", color="black", linewidth=2.2, label="worst case")
    ax.set(xlabel=f"epsilon ({report['norm']})", ylabel=METRIC_LABEL[metric])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(figure)


def corruption_plot(report: dict[str, Any], metric: str) -> str:
    """The metric against severity for every corruption (severity 0 = clean)."""
    figure = Figure(figsize=(6.5, 4))
    ax = figure.subplots()
    for name, per in report["corruptions"].items():
        ax.plot(
            [0, *map(int, per)],
            [report["clean"][metric], *(v[metric] for v in per.values())],
            marker=".",
            label=name,
        )
    ax.set(xlabel="severity", ylabel=METRIC_LABEL[metric], xticks=range(6))
    ax.legend(fontsize=6, ncol=3)
    ax.grid(alpha=0.3)
    return _png(figure)


def overlays_plot(model: nn.Module, data: DenseData, x_adv: Tensor, eps: float) -> str:
    """Per example: clean image, clean prediction, adversarial image, attacked prediction and
    the truth (segmentation classes, else depth)."""
    ref = data.reference
    count = len(x_adv)
    head = "seg" if model.segments else "depth"
    with torch.no_grad():
        clean, attacked = model(ref.x[:count])[head], model(x_adv)[head]
    if head == "seg":
        clean, attacked, truth = clean.argmax(1), attacked.argmax(1), ref.seg[:count]
        style = SEG_STYLE
    else:
        truth = ref.depth[:count]
        style = {"cmap": "magma_r", "vmin": 0, "vmax": float(truth.max())}
    figure = Figure(figsize=(8, 1.75 * count + 0.4))
    axes = figure.subplots(count, 5, squeeze=False)
    titles = [
        "clean image",
        "clean prediction",
        f"adversarial (eps {eps:.3g})",
        "attacked prediction",
        "truth",
    ]
    for row in range(count):
        cells = [
            (ref.x[row].permute(1, 2, 0).numpy(), {}),
            (clean[row].numpy(), style),
            (x_adv[row].permute(1, 2, 0).numpy(), {}),
            (attacked[row].numpy(), style),
            (np.ma.masked_less(truth[row].numpy(), 0 if head == "seg" else 1e-9), style),
        ]
        for col, (picture, options) in enumerate(cells):
            axes[row, col].imshow(picture, **options)
            axes[row, col].axis("off")
    for col, title in enumerate(titles):
        axes[0, col].set_title(title, fontsize=8)
    figure.tight_layout()
    return _png(figure)


def render_html(report: dict[str, Any], overlays: str | None) -> str:
    """Returns the report as one self-contained HTML page."""
    s = report["settings"]
    eps = [f"{e:.4g}" for e in report["eps"]]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Dense robustness report</title>",
        f"<style>{STYLE}</style></head><body><h1>Dense robustness report</h1>",
        f"<p>A {report['task']} model ({html.escape(', '.join(report['classes']))}) on "
        f"{html.escape(report['data'])}: {report['n']} images, {report['norm']} threat model, "
        f"budget {s['budget']} ({s['steps']} steps, {s['restarts']} restarts), attacks "
        f"{html.escape(', '.join(report['attacks']))} on the per-pixel loss, seed {s['seed']}."
        "</p>",
        "<h2>Honesty checks</h2>",
        _table(
            ["check", "status", "detail"],
            [[c["name"], c["status"], c["detail"]] for c in report["checks"]],
        ),
        "<h2>Clean</h2>",
        _table(["metric", "value"], [[k, v] for k, v in report["clean"].items() if k != "iou"]),
    ]
    if "iou" in report["clean"]:
        parts.append(
            _table(
                ["class", "clean IoU"],
                [[k, "n/a" if v is None else v] for k, v in report["clean"]["iou"].items()],
            )
        )
    for head, metric in _metrics(report):
        rows = [[a, *(v[metric] for v in per.values())] for a, per in report["sweep"][head].items()]
        rows.append(["worst case", *(v[metric] for v in report["worst_case"][head].values())])
        parts += [
            f"<h2>Adversarial {metric} ({'segmentation' if head == 'seg' else 'depth'})</h2>",
            f"<p>Clean {metric}: {report['clean'][metric]:.4f}. Worst case: the worst of each "
            "attack on all images and of their per-image mixture (each image from the attack "
            "that did more damage on it).</p>",
            _table(["attack", *[f"eps {e}" for e in eps]], rows),
            _img(sweep_plot(report, head, metric), f"{metric} against epsilon"),
        ]
    if report["targeted"]:
        t = report["targeted"]
        parts += [
            "<h2>Targeted attack</h2>",
            f"<p>{html.escape(t['attack'])} pushing every {html.escape(t['region'])} pixel to "
            f"{html.escape(t['class'])}: the share of region pixels predicted as the target.</p>",
            _table(
                ["eps", "region pixels at target", "mIoU"],
                [[e, v["target_hits"], v["miou"]] for e, v in t["per_eps"].items()],
            ),
        ]
    if overlays:
        parts += ["<h2>Clean and attacked predictions</h2>", _img(overlays, "overlays")]
    if report["corruptions"]:
        for _, metric in _metrics(report):
            parts += [
                f"<h2>Corruptions ({metric})</h2>",
                "<p>Common corruptions and depth-aware ones (near_focus, far_focus, fog_3d, "
                f"z_motion_blur, low_light) from the rendered depth; {_table_title(report)}.</p>",
                _img(corruption_plot(report, metric), "corruptions"),
                _table(
                    ["corruption", *[f"severity {v}" for v in s["severities"]]],
                    [
                        [n, *(v[metric] for v in per.values())]
                        for n, per in report["corruptions"].items()
                    ],
                ),
            ]
    if report["conditions"]:
        metrics = [m for _, m in _metrics(report)]
        parts += [
            "<h2>Conditions (paired renders)</h2>",
            _table(
                ["condition", *metrics],
                [[n, *(c[m] for m in metrics)] for n, c in report["conditions"].items()],
            ),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_dense_report(
    report: dict[str, Any],
    out: Path,
    model: nn.Module,
    data: DenseData,
    examples: dict[str, Tensor],
) -> Path:
    """Writes ``report.json`` and ``report.html`` into ``out``; returns the HTML path.

    The overlays show the strongest attack at the largest epsilon on the first images.
    """
    out = Path(out)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    head = "seg" if model.segments else "depth"
    attack = "apgd" if "apgd" in report["attacks"] else report["attacks"][0]
    key = f"{head}_{attack}_{report['eps'][-1]:.6g}"
    overlays = None
    if key in examples:
        overlays = overlays_plot(model, data, examples[key], report["eps"][-1])
    page = out / "report.html"
    page.write_text(render_html(report, overlays))
    return page
