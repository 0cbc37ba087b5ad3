"""The robustness evaluation of a dense checkpoint (segmentation, depth or both): mIoU and
AbsRel against epsilon for PGD and APGD on the per-pixel loss, the per-image worst case, an
optional targeted attack (one class made into another over a region), common and depth-aware
corruptions, the paired conditions, and the honesty checks adapted to dense outputs.

Every piece is a unit saved under ``OUT/units/`` as it ends; a rerun with the same settings,
weights and data skips the finished ones. The model is evaluated in eval mode.

Per-image state makes the worst case exact: a sweep unit keeps, for every image, its confusion
matrix (segmentation) or its depth-error sums. The worst case at an epsilon is the worst of the
attacks on all images and of their per-image mixture (each image from the attack that did more
damage on it: lower pixel accuracy, higher AbsRel), so it is never better than any one attack.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import Tensor, nn
from tqdm.auto import tqdm

from workbench.adversarial.dense import DENSE_ATTACKS, dense_attack
from workbench.adversarial.model import attack_mode
from workbench.adversarial.threat import ThreatModel
from workbench.checkpoint import load_module
from workbench.errors import WorkbenchError
from workbench.evaluation.corruptions import SEVERITIES, check_parameters, corrupt
from workbench.evaluation.dense_data import DenseData, DenseSet, load_dense_data
from workbench.evaluation.depth_corruptions import DEPTH_CORRUPTIONS, corrupt_with_depth
from workbench.evaluation.results import Unit
from workbench.evaluation.settings import ALL_CORRUPTIONS, Count, Names, SweepOptions
from workbench.evaluation.units import UnitStore
from workbench.models.dense_metrics import (
    confusions,
    depth_scores,
    depth_sums,
    segmentation_scores,
)

log = logging.getLogger(__name__)

HEAD_METRIC = {"seg": "miou", "depth": "absrel"}  # the headline metric of each output
# the sweep is monotone when a larger radius never helps by more than this (mIoU points / 100,
# AbsRel relative)
MONOTONE_TOLERANCE = {"seg": 0.01, "depth": 0.02}
BUDGET_TOLERANCE = {"seg": 0.02, "depth": 0.05}  # twice the budget may not do more than this
LARGE_EPS = {"linf": 0.5, "l2": None}  # None: half the image's L2 diameter


@dataclass(frozen=True)
class DenseBudget:
    """Samples, steps and radii of a dense evaluation."""

    n: int
    steps: int
    eps: tuple[float, ...]
    severities: tuple[int, ...]


DENSE_BUDGETS = {
    "quick": DenseBudget(16, 10, (2 / 255, 8 / 255), (3,)),
    "standard": DenseBudget(64, 50, (1 / 255, 2 / 255, 4 / 255, 8 / 255), SEVERITIES),
}


@dataclass
class DenseSettings:
    """Everything that decides the numbers of a dense evaluation (and so the resume key)."""

    norm: str = "linf"
    eps: list[float] = field(default_factory=list)
    attacks: list[str] = field(default_factory=lambda: ["pgd", "apgd"])
    budget: str = "standard"
    n: int = 64
    steps: int = 20
    restarts: int = 1
    batch_size: int = 16
    seed: int = 0
    corruptions: list[str] = field(default_factory=lambda: list(ALL_CORRUPTIONS))
    severities: list[int] = field(default_factory=lambda: list(SEVERITIES))
    corruption_parameters: str = "cifar10c"
    target_class: str | None = None
    target_region: str | None = None

    def key(self) -> str:
        """Returns a short hash of the settings."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class DenseRobustnessOptions(SweepOptions):
    """The user's choices of a dense evaluation, checked (those of :class:`SweepOptions`
    first); :meth:`settings` fills the rest from the budget (:data:`DENSE_BUDGETS`).

    Attributes:
        budget: ``quick`` or ``standard``.
        attacks: ``pgd`` and / or ``apgd`` on the per-pixel loss.
        restarts: attack runs.
        batch_size: images per model call.
        target_class: for a targeted attack, the class the region is pushed to.
        target_region: the class whose pixels form the region (needs ``target_class``).
    """

    budget: str = "standard"
    attacks: Names = None
    restarts: Count = 1
    batch_size: Count = 16
    target_class: str | None = None
    target_region: str | None = Field(None, validate_default=True)

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        if value not in DENSE_BUDGETS:
            raise ValueError(f"unknown {value!r}; allowed: {', '.join(DENSE_BUDGETS)}")
        return value

    @field_validator("attacks")
    @classmethod
    def _attacks(cls, names: list[str] | None) -> list[str] | None:
        for name in names or ():
            if name not in DENSE_ATTACKS:
                raise ValueError(
                    f"unknown dense attack {name!r}; known: {', '.join(DENSE_ATTACKS.names())}"
                )
        return names

    @field_validator("target_region")
    @classmethod
    def _region(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (value is None) != (info.data.get("target_class") is None):
            raise ValueError("a targeted attack needs both --target-class and --target-region")
        return value

    def settings(self) -> DenseSettings:
        """Returns the settings: these choices, and the budget's for the rest."""
        plan = DENSE_BUDGETS[self.budget]
        return DenseSettings(
            norm=self.norm,
            eps=sorted(float(e) for e in (self.eps or plan.eps)),
            attacks=list(dict.fromkeys(self.attacks or DENSE_ATTACKS.names())),
            budget=self.budget,
            n=plan.n if self.n is None else self.n,
            steps=plan.steps if self.steps is None else self.steps,
            restarts=self.restarts,
            batch_size=self.batch_size,
            seed=self.seed,
            corruptions=list(self.corruptions if self.corruptions is not None else ALL_CORRUPTIONS),
            severities=list(plan.severities),
            corruption_parameters=self.corruption_parameters,
            target_class=self.target_class,
            target_region=self.target_region,
        )


@dataclass
class Saved(Unit):
    """A finished unit: JSON-ready values and per-image tensors."""

    values: dict[str, Any]


def _image_state(
    model: nn.Module,
    x: Tensor,
    seg: Tensor,
    depth: Tensor,
    heads: Sequence[str],
    num_outputs: int,
    batch_size: int,
) -> dict[str, Tensor]:
    """Per image: confusion matrices (``seg``) and depth-error sums (``depth``) of the model's
    predictions on ``x``, one forward pass per batch."""
    parts: dict[str, list[Tensor]] = {head: [] for head in heads}
    with attack_mode(model), torch.no_grad():
        for start in range(0, len(x), batch_size):
            out = model(x[start : start + batch_size])
            part = slice(start, start + batch_size)
            if "seg" in parts:
                parts["seg"].append(confusions(out["seg"].argmax(1), seg[part], num_outputs))
            if "depth" in parts:
                parts["depth"].append(depth_sums(out["depth"], depth[part]))
    return {head: torch.cat(values) for head, values in parts.items()}


def pooled_scores(state: dict[str, Tensor], names: Sequence[str]) -> dict[str, Any]:
    """The metrics of pooled per-image state: mIoU, pixel accuracy and IoU per class (by
    ``names``) for ``seg``; the depth metrics for ``depth``."""
    scores: dict[str, Any] = {}
    if "seg" in state:
        seg = segmentation_scores(state["seg"].sum(0))
        scores["miou"], scores["pixel_acc"] = float(seg["miou"]), float(seg["pixel_acc"])
        scores["iou"] = {
            n: None if v.isnan() else float(v) for n, v in zip(names, seg["iou"], strict=True)
        }
    if "depth" in state:
        scores.update({k: float(v) for k, v in depth_scores(state["depth"].sum(0)).items()})
    return scores


class DenseEvaluation:
    """One dense evaluation; :meth:`run` returns the report as a dict.

    Args:
        model: a :class:`~workbench.training.dense.DenseModule`.
        data: the evaluation data.
        settings: the settings.
        out: the report folder (units saved under ``units/``), or None to keep nothing.
        progress: show a progress bar.
    """

    def __init__(
        self,
        model: nn.Module,
        data: DenseData,
        settings: DenseSettings,
        out: Path | None = None,
        progress: bool = True,
    ) -> None:
        self.model, self.data, self.settings = model.eval(), data, settings
        self.heads = [h for h, on in (("seg", model.segments), ("depth", model.depths)) if on]
        self.names = list(model.output_names)
        self.progress = progress
        ref = data.reference
        digest = hashlib.sha1(settings.key().encode())
        tensors = [*model.state_dict().values(), *ref.tensors()]
        for condition in data.conditions.values():
            tensors += condition.tensors()
        for tensor in tensors:
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.store = UnitStore(out, digest.hexdigest()[:16])
        self.target = self._target_ids() if settings.target_class else None
        self.examples: dict[str, Tensor] = {}
        self.bar: tqdm | None = None

    def _target_ids(self) -> tuple[int, int]:
        s = self.settings
        for option, name in (
            ("--target-class", s.target_class),
            ("--target-region", s.target_region),
        ):
            if name not in self.names:
                raise WorkbenchError(
                    f"{option}: {name!r} is not a class of the model; classes: "
                    f"{', '.join(self.names)}"
                )
        if s.target_class == s.target_region:
            raise WorkbenchError("--target-class: must differ from --target-region")
        if "seg" not in self.heads:
            raise WorkbenchError("--target-class: a targeted attack needs a segmentation model")
        return self.names.index(s.target_class), self.names.index(s.target_region)

    def _unit(self, name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        saved = self.store.get(name, Saved)
        if saved is None:
            saved = self.store.put(name, Saved(compute()))
        if self.bar is not None:
            self.bar.update()
        return saved.values

    def _state(self, x: Tensor, labels: DenseSet) -> dict[str, Tensor]:
        return _image_state(
            self.model,
            x,
            labels.seg,
            labels.depth,
            self.heads,
            len(self.names),
            self.settings.batch_size,
        )

    def _attack(
        self, name: str, head: str, eps: float, steps: int, restarts: int, targeted: bool = False
    ) -> dict[str, Any]:
        """Attacks every image; returns the per-image state, a few adversarial images and the
        re-verification."""
        s, ref = self.settings, self.data.reference
        threat = ThreatModel(s.norm, eps)
        labels = ref.seg if head == "seg" else ref.depth
        target = None
        if targeted:
            goal, region = self.target
            target = torch.where(ref.seg == region, torch.full_like(ref.seg, goal), -1)
        options = {"steps": steps, "restarts": restarts}
        adversarial = []
        for number, start in enumerate(range(0, len(ref.x), s.batch_size)):
            part = slice(start, start + s.batch_size)
            attack = dense_attack(
                name, self.model, threat, head, targeted=targeted, seed=s.seed + number, **options
            )
            adversarial.append(
                attack(ref.x[part], labels[part], None if target is None else target[part])
            )
        x_adv = torch.cat(adversarial)
        state = self._state(x_adv, ref)
        again = self._state(x_adv, ref)
        within = bool(
            ((x_adv - ref.x).flatten(1).abs().amax(1) <= eps + 1e-6).all()
            if s.norm == "linf"
            else ((x_adv - ref.x).flatten(1).norm(dim=1) <= eps + 1e-5).all()
        )
        values = {
            "state": state,
            "examples": x_adv[:4].clone(),
            "within": within and bool(((x_adv >= 0) & (x_adv <= 1)).all()),
            "reproduced": all(torch.equal(state[h], again[h]) for h in state),
        }
        if targeted:
            goal, region = self.target
            in_region = state["seg"][:, region]  # true region pixels, by predicted class
            values["target_hits"] = float(in_region[:, goal].sum() / in_region.sum().clamp(min=1))
        return values

    def run(self) -> dict[str, Any]:
        """Runs (or resumes) every unit and returns the report dict."""
        s = self.settings
        strongest = "apgd" if "apgd" in s.attacks else s.attacks[0]
        total = (
            1
            + len(self.heads) * (len(s.attacks) * len(s.eps) + 2)
            + len(s.corruptions)
            + bool(self.data.conditions)
            + (len(s.eps) if self.target else 0)
        )
        self.bar = tqdm(total=total, desc="dense robustness", disable=not self.progress)
        try:
            report = self._run(strongest)
        finally:
            self.bar.close()
        return report

    def _run(self, strongest: str) -> dict[str, Any]:
        s, ref = self.settings, self.data.reference
        clean = self._unit("clean", lambda: {"state": self._state(ref.x, ref)})
        clean_scores = pooled_scores(clean["state"], self.names)
        sweep: dict[str, dict[str, dict[str, Any]]] = {}
        worst: dict[str, dict[str, Any]] = {}
        units: list[dict[str, Any]] = []
        for head in self.heads:
            sweep[head] = {}
            for attack in s.attacks:
                sweep[head][attack] = {}
                for eps in s.eps:
                    found = self._unit(
                        f"{head}_{attack}_{eps:.6g}",
                        lambda a=attack, e=eps, h=head: self._attack(a, h, e, s.steps, s.restarts),
                    )
                    units.append(found)
                    sweep[head][attack][f"{eps:.6g}"] = found
                    self.examples[f"{head}_{attack}_{eps:.6g}"] = found["examples"]
            worst[head] = {}
            for eps in s.eps:
                states = [sweep[head][a][f"{eps:.6g}"]["state"][head] for a in s.attacks]
                worst[head][f"{eps:.6g}"] = self._worst(head, states)
        checks = self._checks(strongest, clean_scores, sweep, worst, units)
        targeted = {}
        if self.target:
            for eps in s.eps:
                found = self._unit(
                    f"targeted_{strongest}_{eps:.6g}",
                    lambda e=eps: self._attack(
                        strongest, "seg", e, s.steps, s.restarts, targeted=True
                    ),
                )
                targeted[f"{eps:.6g}"] = {
                    "target_hits": found["target_hits"],
                    **pooled_scores(found["state"], self.names),
                }
        corruptions = {
            name: self._unit(f"corruption_{name}", lambda c=name: self._corruption(c))
            for name in s.corruptions
        }
        conditions = {}
        if self.data.conditions:
            conditions = self._unit(
                "conditions",
                lambda: {
                    name: pooled_scores(self._state(d.x, d), self.names)
                    for name, d in self.data.conditions.items()
                },
            )
        return {
            "kind": "dense",
            "task": {"seg": "segmentation", "depth": "depth"}[self.heads[0]]
            if len(self.heads) == 1
            else "both",
            "classes": self.names,
            "data": self.data.source,
            "n": len(ref.x),
            "norm": s.norm,
            "eps": s.eps,
            "attacks": s.attacks,
            "clean": clean_scores,
            "sweep": {
                h: {
                    a: {e: pooled_scores(p["state"], self.names) for e, p in per.items()}
                    for a, per in by_attack.items()
                }
                for h, by_attack in sweep.items()
            },
            "worst_case": worst,
            "targeted": (
                {
                    "class": s.target_class,
                    "region": s.target_region,
                    "attack": strongest,
                    "per_eps": targeted,
                }
                if self.target
                else None
            ),
            "corruptions": corruptions,
            "conditions": conditions,
            "reference_condition": self.data.reference_condition,
            "checks": checks,
            "settings": asdict(s),
        }

    def _worst(self, head: str, states: list[Tensor]) -> dict[str, Any]:
        """The worst of each attack's state and of their per-image mixture (see the module
        docstring), as pooled scores."""
        stacked = torch.stack(states)  # attacks x images x ...
        if head == "seg":
            diagonal = stacked.diagonal(dim1=-2, dim2=-1).sum(-1).double()
            damage = -diagonal / stacked.flatten(2).sum(-1).clamp(min=1)  # minus pixel accuracy
        else:
            damage = stacked[..., 0] / stacked[..., 6].clamp(min=1)  # AbsRel per image
        mixture = stacked[damage.argmax(0), torch.arange(stacked.shape[1])]
        candidates = [pooled_scores({head: c}, self.names) for c in [*states, mixture]]
        metric = HEAD_METRIC[head]
        if head == "seg":
            return min(candidates, key=lambda c: c[metric])
        return max(candidates, key=lambda c: c[metric])

    def _corruption(self, name: str) -> dict[str, Any]:
        s, ref = self.settings, self.data.reference
        per = {}
        for severity in s.severities:
            if name in DEPTH_CORRUPTIONS:
                x = corrupt_with_depth(ref.x, ref.depth, name, severity, s.seed)
            else:
                x = corrupt(ref.x, name, severity, s.seed, s.corruption_parameters)
            scores = pooled_scores(self._state(x, ref), self.names)
            per[str(severity)] = {k: v for k, v in scores.items() if k != "iou"}
        return per

    def _checks(
        self,
        strongest: str,
        clean: dict[str, Any],
        sweep: dict,
        worst: dict,
        units: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The honesty checks, each ``{name, status, detail}``: per output a monotone sweep,
        budget stability and a large radius that breaks the model; then re-verification."""
        found = []
        for head in self.heads:
            found.append(self._monotone(head, clean, worst[head]))
            found.append(self._budget(head, strongest, sweep[head][strongest]))
            found.append(self._large(head, strongest, clean))
        within = all(u["within"] for u in units)
        reproduced = all(u["reproduced"] for u in units)
        found.append(
            {
                "name": "re-verification",
                "status": "PASS" if within and reproduced else "FAIL",
                "detail": f"{len(units)} sweep points: every adversarial image inside the "
                f"{self.settings.norm} ball and [0, 1]: {within}; a second forward pass gives "
                f"the same predictions: {reproduced}",
            }
        )
        return found

    def _monotone(self, head: str, clean: dict[str, Any], worst: dict) -> dict[str, Any]:
        """A larger radius never helps the model by more than the tolerance."""
        s = self.settings
        metric, tol = HEAD_METRIC[head], MONOTONE_TOLERANCE[head]
        series = [clean[metric], *(worst[f"{e:.6g}"][metric] for e in s.eps)]
        if head == "seg":
            broken = [i for i in range(1, len(series)) if series[i] > series[i - 1] + tol]
        else:
            broken = [i for i in range(1, len(series)) if series[i] < series[i - 1] * (1 - tol)]
        return {
            "name": f"monotone sweep ({metric})",
            "status": "FAIL" if broken else "PASS",
            "detail": f"worst-case {metric} from clean over eps {s.eps}: "
            + ", ".join(f"{v:.3f}" for v in series)
            + (f"; rises at eps {[s.eps[i - 1] for i in broken]}" if broken else ""),
        }

    def _budget(self, head: str, strongest: str, points: dict) -> dict[str, Any]:
        """Twice the steps and restarts at the largest radius move the metric little."""
        s = self.settings
        metric, top = HEAD_METRIC[head], s.eps[-1]
        doubled = self._unit(
            f"budget_{head}_{strongest}",
            lambda: self._attack(strongest, head, top, 2 * s.steps, 2 * s.restarts),
        )
        single = pooled_scores(points[f"{top:.6g}"]["state"], self.names)[metric]
        twice = pooled_scores(doubled["state"], self.names)[metric]
        gained = (single - twice) if head == "seg" else (twice - single) / max(single, 1e-9)
        ok = gained <= BUDGET_TOLERANCE[head]
        return {
            "name": f"budget stability ({metric})",
            "status": "PASS" if ok else "FAIL",
            "detail": f"{strongest} at eps {top:g}: {metric} {single:.3f} with {s.steps} steps "
            f"x {s.restarts} restarts, {twice:.3f} with twice both"
            + ("" if ok else "; the sweep's budget is too small, raise --steps"),
        }

    def _large(self, head: str, strongest: str, clean: dict[str, Any]) -> dict[str, Any]:
        """A radius that reaches a grey image breaks the model (else gradients are masked)."""
        s = self.settings
        metric = HEAD_METRIC[head]
        large = LARGE_EPS[s.norm] or 0.5 * float(self.data.reference.x[0].numel()) ** 0.5
        found = self._unit(
            f"large_{head}_{strongest}",
            lambda: self._attack(strongest, head, large, s.steps, s.restarts),
        )
        value = pooled_scores(found["state"], self.names)[metric]
        ok = value < 0.5 * clean[metric] if head == "seg" else value > 2 * clean[metric]
        return {
            "name": f"large radius breaks the model ({metric})",
            "status": "PASS" if ok else "FAIL",
            "detail": f"{strongest} at eps {large:g}: {metric} {value:.3f} against clean "
            f"{clean[metric]:.3f}"
            + ("" if ok else "; gradients may be masked: the numbers above are not trustworthy"),
        }


def evaluate_dense_checkpoint(
    ckpt: str | Path,
    data: str,
    out: str | Path,
    settings: DenseSettings,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Evaluates a dense checkpoint and writes ``report.json`` and ``report.html`` to ``out``.

    Raises:
        WorkbenchError: a checkpoint that is not dense, data that is not rendered or lacks the
            labels the model predicts, classes that differ (both lists shown), bad settings.
    """
    from workbench.evaluation.dense_report import write_dense_report

    model = load_module(ckpt, ["dense"], map_location=device)
    needs = tuple(h for h, on in (("seg", model.segments), ("depth", model.depths)) if on)
    loaded = load_dense_data(data, model.hparams.image_size, settings.n, settings.seed, needs)
    if loaded.classes != list(model.class_names):
        raise WorkbenchError(
            f"--data: its classes {loaded.classes} differ from the model's "
            f"{list(model.class_names)}; evaluate on data of the model's scene"
        )
    if settings.corruptions:
        check_parameters(settings.corruption_parameters, *loaded.reference.x.shape[-2:])
    if device != "cpu":
        loaded = _to(loaded, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evaluation = DenseEvaluation(model, loaded, settings, out, progress)
    report = evaluation.run()
    return write_dense_report(report, out, model, loaded, evaluation.examples)


def _to(data: DenseData, device: str) -> DenseData:
    def move(d: DenseSet) -> DenseSet:
        return DenseSet(d.x.to(device), d.seg.to(device), d.depth.to(device))

    return DenseData(
        move(data.reference),
        data.classes,
        data.source,
        {k: move(v) for k, v in data.conditions.items()},
        data.reference_condition,
    )


__all__ = ["DenseEvaluation", "DenseRobustnessOptions", "evaluate_dense_checkpoint"]
