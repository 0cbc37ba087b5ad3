"""Publishes what ``make bench`` wrote into ``docs/results/`` and rewrites the README's result
tables from those files.

    python benchmarks/publish.py --from bench_out   # copy the known outputs, rewrite README.md
    python benchmarks/publish.py                    # rewrite README.md from docs/results
    python benchmarks/publish.py --check            # exit 1 when a README table differs

Each generated region of README.md lies between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` and is rendered from one JSON under ``docs/results/`` by the
renderer of the study or benchmark that writes that JSON, followed by a line with the JSON's
provenance. Only full runs with a ``provenance`` block are published: a JSON without one, or
from a ``--quick`` run, is refused and nothing is copied.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from workbench.errors import WorkbenchError
from workbench.experiments.stats import STD as SAMPLE_STD

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
# timings are published only from runs that started with the load below this share of the CPUs
BUSY_LOAD = 0.5
MARKER = re.compile(r"<!-- results:([\w-]+) -->\n(.*?)<!-- /results:([\w-]+) -->", re.DOTALL)


@cache
def _bench(name: str) -> ModuleType:
    """Imports ``benchmarks/NAME.py`` (the benchmarks folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _study(name: str) -> ModuleType:
    return importlib.import_module(f"workbench.experiments.{name}")


@dataclass(frozen=True)
class Output:
    """One JSON that ``make bench`` writes (``source``, under its output folder), its name in
    docs/results, the command that produces it, the images that go with it, and whether its
    headline numbers are timings (published only from a quiet machine)."""

    source: str
    name: str
    command: str
    images: dict[str, str] = field(default_factory=dict)
    timing: bool = False


@dataclass(frozen=True)
class Region:
    """A generated README region: the JSON (an :class:`Output` name) and its renderer."""

    output: str
    render: Callable[[dict[str, Any]], str]


OUTPUTS = {
    o.name: o
    for o in (
        Output(
            "render.json",
            "render.json",
            "python benchmarks/bench_render.py --out bench_out",
            timing=True,
        ),
        Output(
            "training.json",
            "training.json",
            "python benchmarks/bench_training.py --out bench_out",
            timing=True,
        ),
        Output(
            "sim2real/results.json",
            "sim2real.json",
            "workbench experiment sim2real --out bench_out/sim2real",
            {"sim2real/results.png": "sim2real.png"},
        ),
        Output(
            "sim2real/curriculum_choice.json",
            "sim2real_curriculum_choice.json",
            "workbench experiment sim2real --out bench_out/sim2real",
        ),
        Output(
            "augment/results.json",
            "augment.json",
            "workbench experiment augment --out bench_out/augment",
            {
                "augment/results.png": "augment.png",
                "augment/samples_vae_kall.png": "augment_vae_samples.png",
                "augment/samples_gan_kall.png": "augment_gan_samples.png",
                "augment/samples_diffusion_kall.png": "augment_diffusion_samples.png",
                "augment/refined.png": "augment_refined.png",
            },
        ),
        Output(
            "gan/results.json",
            "gan.json",
            "workbench experiment gan --out bench_out/gan",
            {"gan/results.png": "gan.png", "gan/samples.png": "gan_samples.png"},
        ),
        Output(
            "generators.json",
            "generators.json",
            "python benchmarks/bench_generators.py --out bench_out",
            timing=True,
        ),
        Output(
            "noisy/results.json",
            "noisy.json",
            "workbench experiment noisy --out bench_out/noisy",
            {"noisy/results.png": "noisy.png"},
        ),
        Output(
            "semisupervised/results.json",
            "semisupervised.json",
            "workbench experiment semisupervised --out bench_out/semisupervised",
            {"semisupervised/results.png": "semisupervised.png"},
        ),
        Output(
            "conditions/results.json",
            "conditions.json",
            "workbench experiment conditions --out bench_out/conditions",
            {"conditions/results.png": "conditions.png",
             "conditions/predictions.png": "conditions_predictions.png"},
        ),
        Output(
            "corruptions.json",
            "corruptions.json",
            "python benchmarks/bench_corruptions.py --out bench_out",
            timing=True,
        ),
        Output(
            "dense_robustness.json",
            "dense_robustness.json",
            "python benchmarks/bench_dense_robustness.py --out bench_out",
        ),
        Output(
            "attacks.json",
            "attacks.json",
            "python benchmarks/bench_attacks.py --out bench_out",
            timing=True,
        ),
        Output(
            "adversarial_training.json",
            "adversarial_training.json",
            "python benchmarks/bench_adversarial_training.py --out bench_out",
            {"adversarial_training.png": "adversarial_training.png"},
        ),
        Output(
            "scene_search.json",
            "scene_search.json",
            "python benchmarks/bench_scene_search.py --out bench_out",
        ),
        Output("demo/summary.json", "demo.json", "workbench demo --out bench_out/demo"),
        Output(
            "tune.json",
            "tune.json",
            "python benchmarks/bench_tune.py --out bench_out",
            timing=True,
        ),
    )
}
REGIONS = {
    "render": Region("render.json", lambda d: _bench("bench_render").markdown(d)),
    "training": Region("training.json", lambda d: _bench("bench_training").markdown(d)),
    "sim2real": Region("sim2real.json", lambda d: _study("sim2real").tables(d)),
    "sim2real-curriculum": Region(
        "sim2real_curriculum_choice.json", lambda d: _study("sim2real").choice_line(d) + "\n"
    ),
    "augment": Region("augment.json", lambda d: _study("augment").tables(d)),
    "gan": Region("gan.json", lambda d: _study("gan").tables(d)),
    "generators": Region("generators.json", lambda d: _bench("bench_generators").markdown(d)),
    "noisy": Region("noisy.json", lambda d: _study("noisy").tables(d)),
    "semisupervised": Region("semisupervised.json", lambda d: _study("semisupervised").tables(d)),
    "conditions": Region("conditions.json", lambda d: _study("conditions").tables(d)),
    "corruptions": Region("corruptions.json", lambda d: _bench("bench_corruptions").markdown(d)),
    "dense-robustness": Region(
        "dense_robustness.json", lambda d: _bench("bench_dense_robustness").markdown(d)
    ),
    "adversarial-training": Region(
        "adversarial_training.json", lambda d: _bench("bench_adversarial_training").markdown(d)
    ),
    "attacks": Region("attacks.json", lambda d: _bench("bench_attacks").markdown(d)),
    "scene-search": Region("scene_search.json", lambda d: _bench("bench_scene_search").markdown(d)),
    "demo": Region("demo.json", lambda d: _study("demo").markdown(d)),
    "tune": Region("tune.json", lambda d: _bench("bench_tune").markdown(d)),
}


def provenance_line(data: dict[str, Any], output: Output) -> str:
    """One line saying where a published JSON came from (or that it predates provenance)."""
    p = data.get("provenance")
    if p is None:
        legacy_std = (
            " Its `std` fields are population standard deviations; the tables recompute the "
            "sample standard deviation (n - 1) from its per-seed `values`."
            if '"values"' in json.dumps(data) and data.get("std") != SAMPLE_STD
            else ""
        )
        return (
            f"Source: `docs/results/{output.name}`, produced before provenance was recorded (it "
            f"names no commit, host or versions); regenerated by `make bench` "
            f"(`{output.command}`).{legacy_std}"
        )
    git, host, packages = p["git"], p["host"], p["packages"]
    commit = (git["commit"] or "no git checkout")[:12] + (" (dirty tree)" if git["dirty"] else "")
    parts = [
        f"`{p['command']}` at commit {commit}, started {p['started_utc']}",
        f"{host['cpu_model']}, {host['affinity']} of {host['cpu_count']} CPUs usable",
        f"torch {packages['torch']}"
        + (f" with {p['torch_threads']} threads" if p["torch_threads"] else " (not loaded by the "
           "driver process; its runs set their own threads)"),
    ]
    if p.get("gl"):
        parts.append("GL " + ", ".join(f"{k}: {v}" for k, v in p["gl"].items()))
    parts.append(f"wall {p['wall_s'] / 60:.1f} min, CPU {p['cpu_s']['total'] / 60:.1f} min")
    if p.get("resumed"):
        parts.append("resumed: earlier invocations did part of the work, not counted here")
    return f"Source: `docs/results/{output.name}`: " + "; ".join(parts) + "."


def render_region(name: str, results: Path = RESULTS) -> str:
    """The body of README region ``name``, rendered from its JSON under ``results``."""
    region = REGIONS[name]
    output = OUTPUTS[region.output]
    path = results / output.name
    if not path.is_file():
        return (
            f"_Not published yet: there is no `docs/results/{output.name}`; `make bench` "
            f"produces it (`{output.command}`)._\n"
        )
    data = json.loads(path.read_text())
    return region.render(data) + "\n" + provenance_line(data, output) + "\n"


def regions(text: str) -> dict[str, str]:
    """The generated regions of a README, name -> body.

    Raises:
        WorkbenchError: an unknown, unclosed, mismatched or repeated region, or a known one
            missing.
    """
    found: dict[str, str] = {}
    for match in MARKER.finditer(text):
        name, body, closing = match.groups()
        if name != closing:
            raise WorkbenchError(f"README.md: region {name} is closed as {closing}")
        if name not in REGIONS:
            raise WorkbenchError(
                f"README.md: unknown results region {name}; known: {', '.join(REGIONS)}"
            )
        if name in found:
            raise WorkbenchError(f"README.md: results region {name} appears twice")
        found[name] = body
    opened = re.findall(r"<!-- results:([\w-]+) -->", text)
    if len(opened) != len(found):
        unclosed = sorted(set(opened) - set(found)) or opened
        raise WorkbenchError(f"README.md: region {unclosed[0]} has no closing marker")
    missing = [name for name in REGIONS if name not in found]
    if missing:
        raise WorkbenchError(
            f"README.md: no region {missing[0]}; add <!-- results:{missing[0]} --> and "
            f"<!-- /results:{missing[0]} -->"
        )
    return found


def rewrite(text: str, results: Path = RESULTS) -> str:
    """``text`` with every generated region rendered anew from ``results``."""
    regions(text)
    return MARKER.sub(
        lambda m: (
            f"<!-- results:{m[1]} -->\n{render_region(m[1], results)}<!-- /results:{m[1]} -->"
        ),
        text,
    )


def check(text: str, results: Path = RESULTS) -> list[str]:
    """The names of the regions of ``text`` that differ from what their JSON renders."""
    return [name for name, body in regions(text).items() if body != render_region(name, results)]


def _check_quiet(path: Path, provenance: dict[str, Any], output: Output) -> None:
    """Refuses timings measured while other work loaded the machine: a 1-minute load average
    at the start of the run above half the logical CPUs (the run's own work comes after)."""
    start = (provenance.get("load_average") or {}).get("start")
    cpus = (provenance.get("host") or {}).get("cpu_count")
    if start and cpus and start[0] > BUSY_LOAD * cpus:
        raise WorkbenchError(
            f"{path}: timed on a busy machine (load {start[0]} at the start on {cpus} CPUs, "
            f"above {BUSY_LOAD * cpus:g}); rerun `{output.command}` on a quiet machine"
        )


def publishable(source: Path) -> dict[str, dict[str, Any]]:
    """Reads and vets every known output present under ``source``; returns name -> JSON.

    Raises:
        WorkbenchError: an output without a provenance block, from a ``--quick`` run, timed on
            a busy machine (a timing output), or that its README renderer cannot read.
    """
    found = {}
    for output in OUTPUTS.values():
        path = source / output.source
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkbenchError(f"{path}: not readable JSON ({exc}); rerun its benchmark") from exc
        provenance = data.get("provenance") if isinstance(data, dict) else None
        if not isinstance(provenance, dict):
            raise WorkbenchError(
                f"{path}: no provenance block (written by an older script); "
                f"rerun `{output.command}`"
            )
        if "--quick" in provenance.get("argv", []):
            raise WorkbenchError(
                f"{path}: a --quick run; publish full runs only (`{output.command}`)"
            )
        if output.timing:
            _check_quiet(path, provenance, output)
        for name, region in REGIONS.items():
            if region.output == output.name:
                try:
                    region.render(data)
                except (KeyError, TypeError, ValueError) as exc:
                    raise WorkbenchError(
                        f"{path}: region {name} cannot render it ({type(exc).__name__}: {exc})"
                    ) from exc
        found[output.name] = data
    return found


def publish(source: Path, results: Path = RESULTS) -> list[str]:
    """Copies the known outputs under ``source`` (and their images) into ``results`` after
    vetting them all; returns the names copied."""
    vetted = publishable(source)
    results.mkdir(parents=True, exist_ok=True)
    for name in vetted:
        output = OUTPUTS[name]
        for src, dest in {output.source: output.name, **output.images}.items():
            if (source / src).is_file():
                shutil.copyfile(source / src, results / dest)
    return list(vetted)


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="the folder make bench wrote")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        text = args.readme.read_text()
        if args.check:
            stale = check(text, args.results)
            for name in stale:
                print(
                    f"{args.readme}: region {name} differs from "
                    f"{args.results / OUTPUTS[REGIONS[name].output].name}; "
                    "run python benchmarks/publish.py",
                    file=sys.stderr,
                )
            return 1 if stale else 0
        if args.source is not None:
            if not args.source.is_dir():
                raise WorkbenchError(f"--from {args.source}: no such folder; run make bench first")
            copied = publish(args.source, args.results)
            print(f"published {len(copied)} results: {', '.join(copied) or 'none found'}")
        new = rewrite(text, args.results)
        if new != text:
            _write(args.readme, new)
        print(f"{args.readme}: {len(REGIONS)} regions rendered from {args.results}")
        return 0
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
