"""The robustness evaluation: clean accuracy, an epsilon sweep per attack, the per-example worst
case (completed by one of AutoAttack's versions as a cascade), common corruptions, condition
shifts and honesty checks. The model is evaluated in eval mode; the caller's modes come back.

Work is cut into units (one per epsilon, one per corruption, the conditions, each check); a
finished unit is saved under ``OUT/units/`` and a rerun with the same settings skips it, so an
interrupted evaluation resumes where it stopped. The settings and budgets live in
:mod:`workbench.evaluation.settings`, the units' results in :mod:`workbench.evaluation.results`
and their store in :mod:`workbench.evaluation.units`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from workbench.adversarial.attacks import ATTACKS
from workbench.adversarial.model import as_logits_model, attack_mode, check_batch
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError
from workbench.evaluation import checks
from workbench.evaluation.cascade import (
    CascadeResult,
    Stage,
    capped_targets,
    cascade_stages,
    predict,
    run_cascade,
    stage_notes,
)
from workbench.evaluation.corruptions import check_parameters, corrupt
from workbench.evaluation.depth_corruptions import DEPTH_CORRUPTIONS, corrupt_with_depth
from workbench.evaluation.mce import corruption_errors
from workbench.evaluation.results import (
    BudgetStability,
    Clean,
    Conditions,
    ConditionShift,
    Corruptions,
    Evaluation,
    Examples,
    LargeEps,
    SweepPoint,
    Unit,
)
from workbench.evaluation.settings import Settings, make_settings, stage_for
from workbench.evaluation.units import UnitStore, fingerprint
from workbench.execution import Executor
from workbench.execution import Unit as WorkUnit

# make_settings and Settings are imported from here too (the runner's public API)
__all__ = ["Evaluation", "Runner", "Settings", "evaluate_checkpoint", "make_settings"]

log = logging.getLogger(__name__)

U = TypeVar("U", bound=Unit)


def _strongest_whitebox(attacks: Sequence[str]) -> str:
    for name in ("apgd-ce", "pgd", *attacks):
        if name in ATTACKS and not ATTACKS[name].black_box:
            return name
    raise WorkbenchError("attacks: the checks need at least one white-box attack")


def _large_eps(norm: str, x: Tensor) -> float:
    """A radius that reaches a uniform grey image from any image in [0, 1]."""
    return 0.5 if norm == "linf" else 0.5 * math.sqrt(x[0].numel())


class Runner:
    """Runs every unit of an evaluation with one progress bar.

    Args:
        model: the classifier (dict output with ``logits``, or logits); evaluated in eval mode,
            its modes restored after each call.
        x, y: evaluation images (float32 n x C x S x S in [0, 1]) and labels.
        settings: from :func:`make_settings`.
        class_names: names of the model's classes (for the example figure).
        conditions: condition name -> images of the same samples (paired renders).
        out: folder for resumable units, or None to keep nothing.
        progress: show a tqdm bar.
        executor: runs the planned units at once (as Ray tasks); None runs them here.
        depth: metres of ``x`` (n x S x S) for the depth-aware corruptions; without it they
            are left out (an error when the user named them).

    Examples:
        A tiny linear model on random images, one attack and no corruptions:

        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
        >>> x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 4, (8,))
        >>> settings = make_settings(
        ...     budget="quick", eps=[0.1], attacks=["fgsm"], n=8, steps=2, corruptions=[]
        ... )
        >>> report = Runner(model, x, y, settings, progress=False).run().report
        >>> report["n_examples"], list(report["robust_acc"]), list(report["worst_case_acc"])
        (8, ['fgsm'], ['0.1'])
        >>> worst, fgsm = report["worst_case_acc"]["0.1"], report["robust_acc"]["fgsm"]["0.1"]
        >>> worst <= fgsm <= report["clean_acc"]
        True
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        settings: Settings,
        class_names: Sequence[str] | None = None,
        conditions: dict[str, Tensor] | None = None,
        out: Path | None = None,
        progress: bool = True,
        executor: Executor | None = None,
        depth: Tensor | None = None,
    ):
        self.model = as_logits_model(model)
        self.executor = executor
        device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
        check_batch(x, y)
        self.x, self.y = x.to(device), y.to(device)
        with attack_mode(self.model), torch.no_grad():
            self.num_classes = int(self.model(self.x[:1]).shape[1])
        check_batch(self.x, self.y, self.num_classes)
        settings = _without_depth_corruptions(settings) if depth is None else settings
        self.settings = settings
        self.class_names = list(class_names or range(self.num_classes))
        self.conditions = {k: v.to(device) for k, v in (conditions or {}).items()}
        self.depth = None if depth is None else depth.to(device)
        seen = {**(conditions or {}), **({"depth": depth} if depth is not None else {})}
        self.store = UnitStore(out, fingerprint(settings, self.model, self.x, self.y, seen))
        self.progress = progress
        self.bar: tqdm | None = None
        s = settings
        self.stages = cascade_stages(
            s.cascade, s.steps, s.queries, s.targets, s.restarts, self.num_classes
        )

    def stage(self, name: str, scale: int = 1) -> Stage:
        """Returns the stage of attack ``name`` under this evaluation's budget."""
        return stage_for(name, self.settings, self.num_classes, scale)

    def _unit(self, name: str, kind: type[U], compute: Callable[[], U]) -> U:
        """Returns the result of unit ``name``: saved by an earlier run, else computed and saved."""
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        cached = self.store.get(name, kind)
        value = cached if cached is not None else self.store.put(name, compute())
        if self.bar is not None:
            self.bar.update(1)
        return value

    def _cascade(
        self, eps: float, stages: Sequence[Stage], start: CascadeResult | None = None
    ) -> CascadeResult:
        s = self.settings
        return run_cascade(
            self.model,
            self.x,
            self.y,
            ThreatModel(s.norm, eps),
            stages,
            seed=s.seed,
            batch_size=s.batch_size,
            robust=None if start is None else start.robust,
            x_adv=None if start is None else start.x_adv,
            broken_by=None if start is None else start.broken_by,
        )

    def _sweep_point(self, eps: float) -> SweepPoint:
        """Every sweep attack on its own at ``eps``, then the cascade on the points none broke."""
        s = self.settings
        robust, per_attack, x_adv = {}, {}, self.x.clone()
        broken_by: list[str | None] = [None] * len(self.x)
        standing = None
        for name in s.attacks:
            result = self._cascade(eps, [self.stage(name)])
            robust[name] = result.robust
            per_attack[name] = result.accuracy
            if standing is None:
                standing = result.robust.clone()
                broken_by = list(result.broken_by)
                x_adv = result.x_adv.clone()
            newly = standing & ~result.robust
            x_adv[newly] = result.x_adv[newly]
            for i in newly.nonzero().flatten().tolist():
                broken_by[i] = name
            standing &= result.robust
        start = None
        if standing is not None:
            start = CascadeResult(x_adv, standing, broken_by, [])
        swept = [self.stage(name) for name in s.attacks]
        stages = [
            st for st in self.stages if st not in swept and s.norm in ATTACKS[st.attack].norms
        ]
        worst = self._cascade(eps, stages, start)
        return SweepPoint(
            robust=robust,
            acc=per_attack,
            worst_robust=worst.robust,
            worst_acc=worst.accuracy,
            x_adv=worst.x_adv,
            broken_by=worst.broken_by,
            stages=worst.stages,
        )

    def _corruption(self, name: str) -> Corruptions:
        """Accuracy under corruption ``name`` at every severity."""
        return Corruptions({name: self.corruption_accuracy(name, self.model)})

    def corruption_accuracy(self, name: str, model: nn.Module) -> dict[int, float]:
        """Accuracy of ``model`` (this evaluation's or a baseline) under corruption ``name`` at
        every severity, on the very images this evaluation corrupts (the same seeds)."""
        s = self.settings
        index = s.corruptions.index(name)
        acc: dict[int, float] = {}
        for severity in s.severities:
            seed = s.seed * 1000 + index * 10 + severity
            if name in DEPTH_CORRUPTIONS:
                images = corrupt_with_depth(self.x, self.depth, name, severity, seed)
            else:
                images = corrupt(self.x, name, severity, seed, s.corruption_parameters)
            pred = predict(model, images, s.batch_size)
            acc[severity] = float((pred == self.y).float().mean())
        return acc

    def baseline_errors(self, baseline: nn.Module, report: dict[str, Any]) -> dict[str, Any]:
        """CE, mCE and relative mCE of this evaluation's corruption results normalised by
        ``baseline`` on the same corrupted images (:mod:`workbench.evaluation.mce`)."""
        baseline = as_logits_model(baseline).to(self.x.device)
        clean = float((predict(baseline, self.x, self.settings.batch_size) == self.y)
                      .float().mean())  # fmt: skip
        names = list(report["corruptions"])
        accuracy = {n: {str(k): v for k, v in self.corruption_accuracy(n, baseline).items()}
                    for n in names}  # fmt: skip
        errors = corruption_errors(report["corruptions"], report["clean_acc"], accuracy, clean)
        return {"baseline_clean_acc": clean, "baseline_corruptions": accuracy, **errors}

    def _large(self) -> LargeEps:
        """The strongest white-box attack alone at a radius that reaches a grey image."""
        large = _large_eps(self.settings.norm, self.x)
        return LargeEps(self._cascade(large, [self.stage(self._strongest())]).accuracy)

    def _strongest(self) -> str:
        return _strongest_whitebox(self.settings.attacks or [st.attack for st in self.stages])

    def _conditions(self) -> Conditions:
        s = self.settings
        preds = {k: predict(self.model, v, s.batch_size) for k, v in self.conditions.items()}
        reference = next(iter(preds.values()))
        return Conditions(
            {
                name: ConditionShift(
                    acc=float((pred == self.y).float().mean()),
                    agreement=float((pred == reference).float().mean()),
                )
                for name, pred in preds.items()
            }
        )

    def run(self) -> Evaluation:
        """Runs (or resumes) every unit and returns the evaluation."""
        with attack_mode(self.model):
            self._spread()
            return self._run()

    def _plan(self) -> dict[str, tuple[type[Unit], str, dict[str, Any]]]:
        """The units that need only the model and the data: key -> (result type, the method
        that computes it, its arguments). The budget check, which starts from a sweep point,
        runs after them."""
        s = self.settings
        plan = {f"eps_{e:g}": (SweepPoint, "_sweep_point", {"eps": e}) for e in s.eps}
        plan[f"large_{self._strongest()}"] = (LargeEps, "_large", {})
        for name in s.corruptions:
            plan[f"corruption_{name}"] = (Corruptions, "_corruption", {"name": name})
        if self.conditions:
            plan["conditions"] = (Conditions, "_conditions", {})
        return plan

    def _spread(self) -> None:
        """With an executor, computes the planned units not saved yet at once (each saved as
        it ends); :meth:`_run` then reads them like a resumed run."""
        if self.executor is None:
            return
        plan = self._plan()
        args = {"model": self.model, "x": self.x, "y": self.y, "settings": self.settings}
        todo = [
            WorkUnit(key, _runner_unit, {
                **args, "method": method, "kwargs": kwargs,
                "conditions": self.conditions if kind is Conditions else None,
                "depth": self.depth if kind is Corruptions else None,
            })
            for key, (kind, method, kwargs) in plan.items()
            if self.store.get(key, kind) is None
        ]  # fmt: skip

        def save(unit: WorkUnit, fields: dict, seconds: float) -> None:
            self.store.put(unit.key, plan[unit.key][0].from_unit(fields))

        if todo:
            self.executor.run(todo, save)

    def _run(self) -> Evaluation:
        s = self.settings
        plan = self._plan()
        start = time.perf_counter()
        units = 1 + len(plan) + 1  # clean, the plan, the budget check
        with tqdm(total=units, desc="robustness", disable=not self.progress) as self.bar:
            clean = self._unit(
                "clean", Clean, lambda: Clean(predict(self.model, self.x, s.batch_size) == self.y)
            )
            done = {
                key: self._unit(key, kind, lambda m=method, a=kwargs: getattr(self, m)(**a))
                for key, (kind, method, kwargs) in plan.items()
            }
            points = {e: done[f"eps_{e:g}"] for e in s.eps}
            corruption = Corruptions(
                {name: done[f"corruption_{name}"].acc[name] for name in s.corruptions}
            )
            found = self._checks(points, done[f"large_{self._strongest()}"])
        self.bar = None
        report = self._report(clean, points, corruption, done.get("conditions"), found)
        report["seconds"] = round(time.perf_counter() - start, 2)
        return Evaluation(report, self._examples(points))

    def _checks(self, points: dict[float, SweepPoint], large_unit: LargeEps) -> list[checks.Check]:
        s = self.settings
        strongest = self._strongest()
        found = self._model_checks()
        curves = {name: [points[e].acc[name] for e in s.eps] for name in s.attacks}
        curves["worst case"] = [points[e].worst_acc for e in s.eps]
        found.append(checks.sweep_monotone(s.eps, curves, len(self.x)))
        large = _large_eps(s.norm, self.x)
        found.append(
            checks.chance_at_large_eps(large_unit.acc, large, self.num_classes, len(self.x))
        )

        middle = s.eps[len(s.eps) // 2]

        def budget() -> BudgetStability:
            point = points[middle]
            doubled = self._cascade(middle, [self.stage(strongest, scale=2)], point.worst())
            return BudgetStability(single=point.worst_acc, doubled=doubled.accuracy)

        stability = self._unit(f"budget_{strongest}", BudgetStability, budget)
        found.append(
            checks.budget_stable(
                stability.single, stability.doubled, strongest, middle, len(self.x)
            )
        )
        found.append(self._blackbox_check(points))
        found.append(self._reverify(points))
        return found

    def _model_checks(self) -> list[checks.Check]:
        s = self.settings
        count = min(len(self.x), s.batch_size)
        return checks.model_checks(
            self.model, self.x[:count], self.y[:count], eot=s.cascade == "rand"
        )

    def _blackbox_check(self, points: dict[float, SweepPoint]) -> checks.Check:
        black = [a for a in self.settings.attacks if ATTACKS[a].black_box]
        white = [a for a in self.settings.attacks if not ATTACKS[a].black_box]
        worst: checks.Check | None = None
        for eps, point in points.items():
            if black and white:
                white_robust = torch.stack([point.robust[a] for a in white]).all(0)
                black_robust = torch.stack([point.robust[a] for a in black]).all(0)
            else:
                # the cascade's black-box stage ran only where every white-box attack failed:
                # each point it broke is one the white-box attacks missed
                stage = [
                    st
                    for st in point.stages
                    if st["stage"] in ATTACKS and ATTACKS[st["stage"]].black_box
                ]
                if not stage:
                    continue
                white_robust = point.worst_robust | torch.tensor(
                    [b == stage[0]["stage"] for b in point.broken_by], device=self.x.device
                )
                black_robust = point.worst_robust
            check = checks.whitebox_beats_blackbox(
                white_robust, black_robust, eps, self.settings.queries
            )
            if worst is None or check.value > worst.value:
                worst = check
        return worst or checks.skipped("whitebox_beats_blackbox", "no black-box attack ran")

    def _reverify(self, points: dict[float, SweepPoint]) -> checks.Check:
        s = self.settings
        verdicts = []
        for eps, point in points.items():
            threat = ThreatModel(s.norm, eps)
            verdicts.append(
                checks.reverified(
                    self.model,
                    self.x,
                    point.x_adv.to(self.x.device),
                    self.y,
                    point.worst_robust,
                    threat.distance,
                    eps,
                    s.batch_size,
                )
            )
        failed = [v for v in verdicts if not v.passed]
        if failed:
            return failed[0]
        total = len(self.x) * len(verdicts)
        return replace(
            verdicts[-1],
            detail=f"all {total} final examples ({len(verdicts)} epsilons) give the reported "
            "outcome on a fresh float64 copy of the model, in another order and batch size, "
            "and lie inside their ball",
        )

    def _report(
        self,
        clean: Clean,
        points: dict[float, SweepPoint],
        corruption: Corruptions,
        condition: Conditions | None,
        found: list[checks.Check],
    ) -> dict[str, Any]:
        """The JSON-ready report (its format is read by the app, the publish script and tests)."""
        s = self.settings
        return {
            "n_examples": len(self.x),
            "norm": s.norm,
            "eps": s.eps,
            "clean_acc": clean.accuracy,
            "robust_acc": {
                name: {f"{e:g}": points[e].acc[name] for e in s.eps} for name in s.attacks
            },
            "worst_case_acc": {f"{e:g}": points[e].worst_acc for e in s.eps},
            "cascade": {f"{e:g}": points[e].stages for e in s.eps},
            "corruptions": {
                name: {str(k): v for k, v in per.items()} for name, per in corruption.acc.items()
            },
            "mean_corruption_acc": corruption.mean(),
            "conditions": {} if condition is None else condition.to_unit(),
            "checks": [c.to_dict() for c in found],
            "checks_passed": all(c.passed is not False for c in found),
            "settings": asdict(s),
            "num_classes": self.num_classes,
            "cascade_preset": s.cascade,
            "cascade_stages": [st.label for st in self.stages],
            "target_classes": capped_targets(s.targets, self.num_classes),
            "cascade_notes": stage_notes(
                [*self.stages, *(self.stage(name) for name in s.attacks)],
                self.num_classes,
                s.targets,
            ),
        }

    def _examples(self, points: dict[float, SweepPoint], count: int = 8) -> Examples | None:
        """Up to ``count`` broken examples at the middle epsilon, with their predictions."""
        s = self.settings
        eps = s.eps[len(s.eps) // 2]
        point = points[eps]
        chosen = [i for i, b in enumerate(point.broken_by) if b not in (None, "clean")][:count]
        if not chosen:
            return None
        index = torch.tensor(chosen)
        x, x_adv = self.x[index].cpu(), point.x_adv[index].cpu()
        pred = predict(self.model, x_adv.to(self.x.device), s.batch_size).cpu()
        return Examples(
            eps=eps,
            x=x,
            x_adv=x_adv,
            label=[self.class_names[int(i)] for i in self.y[index].cpu()],
            pred=[self.class_names[int(i)] for i in pred],
            attack=[point.broken_by[i] for i in chosen],
        )


def _without_depth_corruptions(settings: Settings) -> Settings:
    """The settings without depth-aware corruptions, for data without depth.

    Raises:
        WorkbenchError: the user named one (``--corruptions``).
    """
    named = [c for c in settings.corruptions if c in DEPTH_CORRUPTIONS]
    if named and settings.corruptions_named:
        raise WorkbenchError(
            f"--corruptions: {named[0]} needs the images' depth, which this data does not have "
            "(rendered data has it); leave the depth-aware corruptions out"
        )
    kept = [c for c in settings.corruptions if c not in DEPTH_CORRUPTIONS]
    return replace(settings, corruptions=kept) if named else settings


def _runner_unit(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    settings: Settings,
    conditions: dict[str, Tensor] | None,
    method: str,
    kwargs: dict[str, Any],
    depth: Tensor | None = None,
) -> dict:
    """One planned unit of an evaluation (see :meth:`Runner._plan`) as a unit of
    :mod:`workbench.execution`: ``Runner.<method>(**kwargs)``, its fields as saved."""
    if depth is None:  # a unit that needs no depth: no depth-aware corruption to refuse
        settings = replace(settings, corruptions_named=False)
    runner = Runner(model, x, y, settings, conditions=conditions, progress=False, depth=depth)
    with attack_mode(runner.model):
        return getattr(runner, method)(**kwargs).to_unit()


def _load_baseline(path: str | Path, model: nn.Module, device: str) -> nn.Module:
    """Loads the ``--baseline`` classifier and checks it knows the model's classes.

    Raises:
        WorkbenchError: another kind of checkpoint, or other classes (both lists named).
    """
    from workbench.checkpoint import load_module

    baseline = load_module(path, ["classifier"], map_location=device)
    ours, theirs = list(model.class_names), list(baseline.class_names)
    if ours != theirs:
        raise WorkbenchError(
            f"--baseline {path}: trained on classes {theirs} but the model on {ours}; normalise "
            "by a baseline of the same classes"
        )
    return baseline


def evaluate_checkpoint(
    ckpt: str | Path,
    data: str,
    out: str | Path,
    settings: Settings,
    device: str = "cpu",
    progress: bool = True,
    executor: Executor | None = None,
    baseline: str | Path | None = None,
) -> Path:
    """Evaluates a classifier checkpoint on ``data`` and writes the report into ``out``.

    Args:
        ckpt: a classifier checkpoint.
        data: ``digits``, a rendered dataset, a paired-conditions folder or an ImageFolder tree.
        out: report folder (also holds the resumable units).
        settings: from :func:`make_settings`.
        device: torch device of the model and images.
        progress: show a progress bar.
        executor: runs the sweep points and corruptions at once (as Ray tasks); None runs
            them one after another here.
        baseline: a classifier checkpoint of the same classes that normalises the corruption
            errors (CE, mCE and relative mCE in the report's ``mce``).

    Returns:
        the path of ``report.html``.

    Raises:
        WorkbenchError: an unusable device, data or checkpoint, or a baseline of other classes.
    """
    from workbench.checkpoint import load_module
    from workbench.evaluation.data import load_eval_data
    from workbench.evaluation.report import write_report

    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        first = str(error).strip().splitlines()[0][:120]
        raise WorkbenchError(f"--device {device}: not usable here ({first}); use cpu") from None
    model = load_module(ckpt, ["classifier"], map_location=device)
    base = None if baseline is None else _load_baseline(baseline, model, device)
    hparams = model.hparams
    data_set = load_eval_data(
        data, int(hparams.image_size), int(hparams.in_channels), settings.n, settings.seed
    )
    if len(data_set.classes) > int(hparams.num_classes):
        raise WorkbenchError(
            f"--data: {len(data_set.classes)} classes but the model knows {hparams.num_classes}; "
            "evaluate on data with the model's classes"
        )
    if settings.corruptions:
        check_parameters(settings.corruption_parameters, *data_set.x.shape[-2:])
    class_names = list(getattr(model, "class_names", data_set.classes))
    if class_names[: len(data_set.classes)] != data_set.classes:
        log.warning(
            "class names differ: model %s, data %s (labels are compared by index)",
            class_names,
            data_set.classes,
        )
    out = Path(out)
    runner = Runner(
        model,
        data_set.x,
        data_set.y,
        settings,
        class_names,
        data_set.conditions,
        out,
        progress,
        executor,
        data_set.depth,
    )
    evaluation = runner.run()
    report = {"model": str(ckpt), "data": data_set.source, **evaluation.report}
    if base is not None and report["corruptions"]:
        report["mce"] = {"baseline": str(baseline), **runner.baseline_errors(base, report)}
    if executor is not None:
        report["execution"] = {"workers": executor.workers, "threads": executor.threads}
    if data_set.reference:
        report["reference_condition"] = data_set.reference
    return write_report(report, evaluation.examples, out)
