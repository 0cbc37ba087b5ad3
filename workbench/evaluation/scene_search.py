"""Adversarial scene search: a black-box search over a scene spec's randomized factors for
rendered inputs a classifier gets wrong.

Every factor the spec randomizes becomes one coordinate of a point in the unit cube:

- ranges (``yaw_deg``, ``camera.distance``, ``lights.intensity``, ...) pin to one value inside
  the spec's own range; integer ranges (``lights.count``, ``distractors``) to one count;
- probabilities (``materials.texture_probability``, ``background.photo_probability``) pin to 0
  or 1 (texture or none, photo or none);
- choice lists (``fonts``, ``materials.textures``, ``conditions``, ``digits``, ...) pin to one
  entry; lists whose pinning would change the spec's classes (``primitives``) stay free;
- one more coordinate picks the sample index, which fixes the remaining randomness (light
  azimuth, hue, position jitter, background crop).

A point is rendered by :func:`~workbench.render.sample.render_sample` with the spec pinned to
it, so a found scene stays inside the spec's distribution and reproduces exactly from the pins
recorded in its JSON. The objective is the classifier's margin ``max_{j != y} z_j - z_y`` on
the harmonised image (positive = misclassified). The search spends a quarter of the budget on
random points, then runs a (mu + lambda) evolution strategy: children are Gaussian
perturbations of the elite (the best point of each of the ``mu`` labels that come closest to
being misclassified, so the search does not collapse onto one class), each coordinate also redrawn
uniformly with probability ``1 / D`` so that choices can jump, with the step size adapted by
the 1/5 success rule. Every misclassified scene found on the way is written, hardest first, as
a dataset in the standard contract; ``{kind: rendered, path: OUT}`` feeds them back as hard
examples.

An evolution strategy finds many near-copies of one failure, so the summary also counts
*distinct* failures (:func:`distinct_groups`, rule in :data:`DISTINCT_RULE`): failures with the
same rendered image, or with the same choices, counts and on/off pins and every range pin within
a tenth of its range, are one failure.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from tqdm import tqdm

from workbench import __version__
from workbench.adversarial.attacks.base import margin_loss
from workbench.data.format import FORMAT_NAME, FORMAT_VERSION, MODALITIES
from workbench.data.writer import MANIFEST, write_json_atomic, write_shard
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

INDEX_RANGE = 2**20  # sample indices the search draws the remaining randomness from
SHARD_SIZE = 64
DISTINCT_TOLERANCE = 0.1  # share of a range factor's interval within which two pins are alike
DISTINCT_RULE = (
    "two failures are copies when their rendered rgb images are identical (sha256) or when they "
    "pin every choice, count and on/off factor alike and every range factor within "
    f"{DISTINCT_TOLERANCE:g} of its interval of each other (the sample index, which draws only "
    "the unsearched remainder such as light azimuth and jitter, is ignored); distinct failures "
    "are the groups these links join, so a chain of near-copies counts once"
)


@dataclass(frozen=True)
class Factor:
    """One searchable factor of a spec.

    Attributes:
        path: field path in the spec, e.g. ``("camera", "distance")``.
        kind: ``range`` (float interval), ``count`` (integer interval), ``binary`` (a
            probability pinned to 0 or 1) or ``choice`` (one entry of a list).
        low, high: the interval of ``range`` and ``count``.
        options: the entries of ``choice``.
    """

    path: tuple[str, ...]
    kind: str
    low: float = 0.0
    high: float = 1.0
    options: tuple = ()

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def value(self, u: float) -> Any:
        """Returns the factor's value at the unit coordinate ``u`` in [0, 1)."""
        if self.kind == "range":
            return self.low + u * (self.high - self.low)
        if self.kind == "count":
            return int(self.low) + min(
                int(u * (self.high - self.low + 1)), int(self.high - self.low)
            )
        if self.kind == "binary":
            return 1.0 if u >= 0.5 else 0.0
        return self.options[min(int(u * len(self.options)), len(self.options) - 1)]

    def pin(self, value: Any) -> Any:
        """Returns the spec field value that fixes this factor to ``value``."""
        if self.kind in ("range", "count"):
            return (value, value)
        if self.kind == "binary":
            return value
        return [value]


def _is_probability(info) -> bool:
    ge = [m.ge for m in info.metadata if hasattr(m, "ge")]
    le = [m.le for m in info.metadata if hasattr(m, "le")]
    return ge == [0.0] and le == [1.0]


def _walk(model: BaseModel, path: tuple[str, ...]) -> list[Factor]:
    factors = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        here = (*path, name)
        if isinstance(value, BaseModel):
            factors += _walk(value, here)
        elif (
            isinstance(value, tuple)
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and value[0] < value[1]
        ):
            kind = "count" if all(isinstance(v, int) for v in value) else "range"
            factors.append(Factor(here, kind, value[0], value[1]))
        elif isinstance(value, float) and _is_probability(info) and 0.0 < value < 1.0:
            factors.append(Factor(here, "binary"))
        elif (
            isinstance(value, list)
            and len(value) > 1
            and all(isinstance(v, (str, int)) for v in value)
        ):
            factors.append(Factor(here, "choice", options=tuple(value)))
    return factors


def pin_spec(spec: BaseModel, pins: dict[tuple[str, ...], Any]) -> BaseModel:
    """Returns a copy of ``spec`` with the fields at the given paths replaced."""
    updates: dict[str, Any] = {}
    nested: dict[str, dict[tuple[str, ...], Any]] = {}
    for path, value in pins.items():
        if len(path) == 1:
            updates[path[0]] = value
        else:
            nested.setdefault(path[0], {})[path[1:]] = value
    for name, inner in nested.items():
        updates[name] = pin_spec(getattr(spec, name), inner)
    return spec.model_copy(update=updates)


@dataclass
class FactorSpace:
    """The searchable factors of a spec plus the sample-index coordinate (the last one)."""

    spec: BaseModel
    factors: list[Factor] = field(init=False)

    def __post_init__(self) -> None:
        classes = self.spec.classes()
        self.factors = [
            f
            for f in _walk(self.spec, ())
            if f.kind != "choice"
            or pin_spec(self.spec, {f.path: f.pin(f.options[0])}).classes() == classes
        ]

    @property
    def dims(self) -> int:
        return len(self.factors) + 1

    def decode(self, point: np.ndarray) -> tuple[BaseModel, int, str, dict[str, Any]]:
        """Returns the pinned spec, sample index, condition and pinned values of a point."""
        factors = zip(self.factors, point[:-1], strict=True)  # the last coordinate: the index
        values = {f.name: f.value(float(u)) for f, u in factors}
        spec = self._pinned(values)
        index = min(int(float(point[-1]) * INDEX_RANGE), INDEX_RANGE - 1)
        return spec, index, spec.conditions[0], values

    def replay(self, search: dict[str, Any]) -> tuple[BaseModel, int, str]:
        """Returns the pinned spec, sample index and condition of a found scene from the
        ``search`` entry of its JSON: ``render_sample(renderer, spec, seed, index, condition)``
        with the dataset's seed renders it again."""
        spec = self._pinned(search["pins"])
        return spec, int(search["index"]), spec.conditions[0]

    def _pinned(self, values: dict[str, Any]) -> BaseModel:
        return pin_spec(self.spec, {f.path: f.pin(values[f.name]) for f in self.factors})


@dataclass
class Candidate:
    """One evaluated point: its score (the margin), its niche (the rendered label) and, when it
    is a failure, its rendered sample."""

    point: np.ndarray
    margin: float
    niche: Any = None
    sample: Any = None


class _Evaluator:
    """Renders points and scores them with the classifier; keeps the failures."""

    def __init__(self, model, space: FactorSpace, renderer, seed: int, threshold: float):
        from workbench.data.transforms import harmonise

        self.model, self.space, self.renderer = model, space, renderer
        self.seed, self.threshold = seed, threshold
        self.size = int(model.hparams.image_size)
        self.channels = int(model.hparams.in_channels)
        self.harmonise = harmonise
        self.failures: dict[tuple, Candidate] = {}
        self.evaluations = 0

    @torch.no_grad()
    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, list[int]]:
        from workbench.render.sample import render_sample

        samples, images, labels = [], [], []
        for point in points:
            spec, index, condition, pins = self.space.decode(point)
            sample = render_sample(self.renderer, spec, self.seed, index, condition)
            sample.meta["search"] = {"index": index, "pins": pins}
            label = int(sample.meta["label"])
            item = {
                "image": sample.arrays["rgb"].astype(np.float32) / 255.0,
                "label": max(label, 0),
            }
            samples.append(sample)
            images.append(self.harmonise(item, self.size, self.channels)["image"])
            labels.append(label)
        logits = self.model(torch.stack(images))["logits"].float()
        margins = margin_loss(logits, torch.tensor(labels).clamp(min=0)).numpy().astype(np.float64)
        margins[np.array(labels) < 0] = -np.inf  # no labelled object in view: nothing to fool
        predictions = logits.argmax(dim=1).tolist()
        for point, sample, margin, predicted, label in zip(
            points, samples, margins, predictions, labels, strict=True
        ):
            self.evaluations += 1
            key = (sample.meta["search"]["index"], *sorted(sample.meta["search"]["pins"].items()))
            if margin > self.threshold and key not in self.failures:
                sample.meta["search"].update(
                    margin=round(float(margin), 6),
                    predicted=int(predicted),
                    evaluation=self.evaluations,
                )
                self.failures[key] = Candidate(point, float(margin), label, sample)
        return margins, labels


def image_digest(rgb: np.ndarray) -> str:
    """Returns the sha256 of a rendered image's bytes (with its shape and dtype)."""
    digest = hashlib.sha256(f"{rgb.shape}{rgb.dtype}".encode())
    digest.update(np.ascontiguousarray(rgb).tobytes())
    return digest.hexdigest()


def distinct_groups(
    pins: Sequence[dict[str, Any]],
    digests: Sequence[str],
    factors: Sequence[Factor],
    tolerance: float = DISTINCT_TOLERANCE,
) -> list[int]:
    """Groups failures that are copies of one another (:data:`DISTINCT_RULE`).

    Rounding each range pin to a grid would split near-copies that straddle a grid line (with
    a dozen range factors almost every pair does), so range pins are compared at a tolerance
    instead, and the groups are the connected components of the "is a copy" links (independent
    of the order of the failures).

    Args:
        pins: each failure's pinned factor values (its JSON's ``search.pins``).
        digests: each failure's :func:`image_digest`.
        factors: the searched factors (:attr:`FactorSpace.factors`).
        tolerance: the share of a range factor's interval within which two pins are alike.

    Returns:
        each failure's group number; groups are numbered in order of first appearance.

    Raises:
        ValueError: ``pins`` and ``digests`` differ in length.
    """
    if len(pins) != len(digests):
        raise ValueError(f"{len(pins)} pins but {len(digests)} image digests")
    n = len(pins)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def link(i: int, j: int) -> None:
        parent[root(j)] = root(i)

    ranges = [f for f in factors if f.kind == "range"]
    discrete = [f.name for f in factors if f.kind != "range"]
    unit = np.array(
        [[(p[f.name] - f.low) / (f.high - f.low) for f in ranges] for p in pins], dtype=np.float64
    ).reshape(n, len(ranges))
    keys = [tuple(p[name] for name in discrete) for p in pins]
    first_with: dict[str, int] = {}
    for i in range(n):
        if digests[i] in first_with:
            link(first_with[digests[i]], i)
        first_with.setdefault(digests[i], i)
        if i:
            near = np.abs(unit[:i] - unit[i]).max(axis=1, initial=0.0) <= tolerance + 1e-12
            for j in np.flatnonzero(near):
                if keys[j] == keys[i]:
                    link(int(j), i)
    numbers: dict[int, int] = {}
    return [numbers.setdefault(root(i), len(numbers)) for i in range(n)]


def random_share(budget: int, population: int) -> int:
    """Returns how many of ``budget`` evaluations go to uniform random points first."""
    return min(budget, max(population, budget // 4))


def elite(history: list[Candidate], mu: int) -> list[Candidate]:
    """Returns the parents of the next generation: the best candidate of each of the ``mu``
    niches with the highest best scores, topped up with the next best candidates when there are
    fewer niches. Niches (the rendered label) keep the search from collapsing onto one class."""
    ranked = sorted(history, key=lambda c: c.margin, reverse=True)
    best: dict[Any, Candidate] = {}
    for candidate in ranked:
        best.setdefault(candidate.niche, candidate)
    chosen = list(best.values())[:mu]
    return chosen + [c for c in ranked if all(c is not e for e in chosen)][: mu - len(chosen)]


def evolve(
    evaluate, dims: int, budget: int, rng: np.random.Generator, population: int = 8
) -> list[Candidate]:
    """Maximizes ``evaluate(points) -> (scores, niches)`` over the unit cube ``[0, 1)^dims``.

    A quarter of ``budget`` (at least one batch) goes to uniform random points; the rest to a
    (mu + lambda) evolution strategy with ``lambda = population`` children per generation of
    ``mu = population // 2`` parents chosen by :func:`elite`.

    Returns:
        every evaluated candidate (without samples), in evaluation order.
    """
    top = 1.0 - 1e-9
    history: list[Candidate] = []

    def run(points: np.ndarray) -> np.ndarray:
        scores, niches = evaluate(points)
        evaluated = zip(points, scores, niches, strict=True)
        history.extend(Candidate(p, float(s), n) for p, s, n in evaluated)
        return scores

    run(rng.random((random_share(budget, population), dims)))
    sigma, mu = 0.2, max(1, population // 2)
    while len(history) < budget:
        parents = elite(history, mu)
        count = min(population, budget - len(history))
        parents = [parents[k % len(parents)] for k in range(count)]
        children = np.stack([p.point for p in parents]) + sigma * rng.standard_normal((count, dims))
        redraw = rng.random((count, dims)) < 1.0 / dims
        children = np.where(redraw, rng.random((count, dims)), children).clip(0.0, top)
        scores = run(children)
        success = np.mean([s > p.margin for s, p in zip(scores, parents, strict=True)])
        sigma = float(np.clip(sigma * (1.22 if success > 0.2 else 0.82), 0.02, 0.5))
    return history


def _load_spec(scene) -> BaseModel:
    if isinstance(scene, BaseModel):
        return scene
    from workbench.scene.spec import load_spec

    return load_spec(scene)


def _manifest(spec, seed: int, records: list, failures: list[Candidate], info, extra) -> dict:
    conditions = sorted({c.sample.meta["condition"]["name"] for c in failures})
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": spec.kind,
        "name": f"{spec.name}-adversarial",
        "spec": spec.model_dump(mode="json"),
        "seed": seed,
        "num_samples": len(failures),
        "shard_size": SHARD_SIZE,
        "num_shards": len(records),
        "condition": conditions[0] if len(conditions) == 1 else "mixed",
        "resolution": spec.resolution,
        "classes": {str(i): c for i, c in enumerate(spec.classes())},
        "modalities": MODALITIES,
        "renderer": {
            "backend": info.backend,
            "gl_renderer": info.renderer,
            "workbench": __version__,
        },
        "search": extra,
        "complete": True,
        "shards": records,
    }


def search_scenes(
    ckpt: str | Path,
    scene: str | Path | BaseModel,
    out: str | Path,
    budget: int = 200,
    seed: int = 0,
    *,
    population: int = 8,
    resolution: int | None = None,
    threshold: float = 0.0,
    gl: str = "auto",
    progress: bool = True,
) -> Path:
    """Searches a scene spec's factors for scenes the classifier in ``ckpt`` gets wrong and
    writes them, hardest first, as a dataset at ``out``.

    Args:
        ckpt: a classifier checkpoint; its class names must be the spec's classes.
        scene: a scene spec file or a validated spec.
        out: dataset folder to create (must not exist or be empty).
        budget: number of scenes rendered and classified.
        seed: seed of the search and of the rendered samples' random streams.
        population: children per generation of the evolution strategy.
        resolution: render resolution (default: the spec's).
        threshold: a scene counts as found when its margin exceeds this (0 = misclassified;
            negative values also keep nearly misclassified scenes).
        gl: OpenGL backend: ``auto``, ``egl`` or ``osmesa``.
        progress: show a progress bar.

    Returns:
        ``out``; its manifest's ``search`` entry holds the counts (``found``, and
        ``distinct`` failures by :func:`distinct_groups`) and the best margin, every sample's
        JSON the margin, prediction, pinned factor values, image sha256 and distinct group
        under ``search``.

    Raises:
        WorkbenchError: bad budget, resolution or output folder, a checkpoint that is not a
            classifier or whose classes differ from the spec's, or no working OpenGL backend.
    """
    from workbench.checkpoint import load_module
    from workbench.render import gl as gl_backend

    if budget < 1:
        raise WorkbenchError(f"budget: must be a positive number of scenes, got {budget}")
    if population < 2:
        raise WorkbenchError(f"population: must be at least 2, got {population}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WorkbenchError(f"{out}: already exists and is not empty; choose another output")
    spec = _load_spec(scene)
    if resolution is not None:
        if not 16 <= resolution <= 2048:
            raise WorkbenchError(f"resolution: must lie in [16, 2048], got {resolution}")
        spec = spec.model_copy(update={"resolution": resolution})
    model = load_module(ckpt, kinds=["classifier"])
    if list(model.class_names) != spec.classes():
        raise WorkbenchError(
            f"{ckpt}: the classifier's classes {model.class_names} differ from the scene's "
            f"{spec.classes()}; search a scene of the classes it was trained on"
        )
    from workbench.scene.kinds import preflight

    preflight(spec)
    info = gl_backend.choose(gl)
    from workbench.render.view import Renderer

    space = FactorSpace(spec)
    log.info("searching %d factors of %s: %s", len(space.factors), spec.name,
             ", ".join(f.name for f in space.factors))  # fmt: skip
    renderer = Renderer(spec.resolution, spec.resolution)
    try:
        evaluator = _Evaluator(model, space, renderer, seed, threshold)
        with tqdm(total=budget, desc="scene search", unit="scene", disable=not progress) as bar:

            def evaluate(points: np.ndarray) -> tuple[np.ndarray, list[int]]:
                scores, labels = evaluator(points)
                bar.update(len(points))
                bar.set_postfix(found=len(evaluator.failures))
                return scores, labels

            history = evolve(evaluate, space.dims, budget, np.random.default_rng(seed), population)
    finally:
        renderer.close()

    failures = sorted(evaluator.failures.values(), key=lambda c: c.margin, reverse=True)
    records_of = [c.sample.meta["search"] for c in failures]
    for record, candidate in zip(records_of, failures, strict=True):
        record["rgb_sha256"] = image_digest(candidate.sample.arrays["rgb"])
    groups = distinct_groups(
        [r["pins"] for r in records_of], [r["rgb_sha256"] for r in records_of], space.factors
    )
    for record, group in zip(records_of, groups, strict=True):
        record["group"] = group
    first = random_share(budget, population)
    margins = np.array([c.margin for c in history])
    extra = {
        "checkpoint": str(ckpt),
        "budget": budget,
        "population": population,
        "threshold": threshold,
        "found": len(failures),
        "distinct": len(set(groups)),
        "distinct_rule": DISTINCT_RULE,
        "random_phase": {
            "evaluations": first,
            "misclassified": int((margins[:first] > 0).sum()),
        },
        "evolution_phase": {
            "evaluations": len(margins) - first,
            "misclassified": int((margins[first:] > 0).sum()),
        },
        "best_margin": float(margins.max()) if math.isfinite(margins.max()) else None,
        "factors": [f.name for f in space.factors],
    }
    out.mkdir(parents=True, exist_ok=True)
    records = [
        write_shard(out, k, start, (c.sample for c in failures[start : start + SHARD_SIZE]))
        for k, start in enumerate(range(0, len(failures), SHARD_SIZE))
    ]
    write_json_atomic(out / MANIFEST, _manifest(spec, seed, records, failures, info, extra))
    log.info("scene search: %d of %d scenes misclassified (%d distinct), written to %s",
             len(failures), budget, len(set(groups)), out)  # fmt: skip
    return out
