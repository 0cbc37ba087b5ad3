"""Fast Adaptive Boundary attack, FAB (Croce & Hein 2020), L-inf and L2, untargeted and FAB-T."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from workbench.adversarial.attacks.base import Attack, register_attack
from workbench.errors import WorkbenchError


def _capped_level(weight: Tensor, cap: Tensor, need: Tensor) -> Tensor:
    """Returns per row the smallest ``r >= 0`` with ``sum_i weight_i * min(r, cap_i) >= need``
    (``inf`` where even ``r = max cap`` falls short); ``weight``, ``cap`` >= 0, B x n."""
    caps, order = cap.sort(dim=1)
    weights = weight.gather(1, order)
    used = torch.cumsum(weights * caps, dim=1)  # sum over j <= k of weight_j * cap_j
    rest = weights.sum(dim=1, keepdim=True) - torch.cumsum(weights, dim=1)  # sum over j > k
    gains = used + caps * rest  # the gain at r = cap_k, non-decreasing in k
    below = (gains < need[:, None]).sum(dim=1)  # caps reached before the level
    previous = (below - 1).clamp_min(0)[:, None]
    first = below == 0
    fixed = torch.where(first, 0.0, used.gather(1, previous)[:, 0])
    slope = torch.where(first, weights.sum(dim=1), rest.gather(1, previous)[:, 0])
    level = ((need - fixed) / slope.clamp_min(1e-30)).clamp_min(0.0)
    return torch.where(below < cap.shape[1], level, math.inf)


def project_to_hyperplane(
    t: Tensor, w: Tensor, b: Tensor, norm: str, lower: float = 0.0, upper: float = 1.0
) -> Tensor:
    """Returns the smallest step ``d`` (L-inf or L2 norm) that moves each point ``t`` onto its
    hyperplane ``w . (t + d) = b`` while keeping ``t + d`` inside ``[lower, upper]``.

    Each coordinate moves in the direction that brings ``w . z`` towards ``b``, by
    ``min(r, room)`` (L-inf) or ``min(r |w_i|, room)`` (L2, from the KKT conditions), where
    ``room`` is its distance to the box in that direction; ``r`` is found exactly from the
    sorted breakpoints. Where the box holds no point of the hyperplane, every coordinate moves
    to its bound (the corner that comes closest), as in the reference implementation.

    Args:
        t: points, B x n.
        w: normals, B x n.
        b: offsets, B.
        norm: ``linf`` or ``l2``.
        lower: the box's lower bound, the same for every coordinate.
        upper: the box's upper bound, the same for every coordinate.
    """
    need = b - (w * t).sum(dim=1)
    w = w * torch.where(need < 0, -1.0, 1.0)[:, None]  # now w . d must rise by |need|
    need = need.abs()
    active = w != 0
    room = torch.where(w > 0, upper - t, t - lower).clamp_min(0.0) * active
    size = w.abs()
    if norm == "linf":
        level = _capped_level(size, room, need)
        move = torch.minimum(level[:, None].expand_as(room), room)
    else:
        cap = torch.where(active, room / torch.where(active, size, 1.0), 0.0)
        level = _capped_level(size**2, cap, need)
        move = torch.minimum(level[:, None] * size, room)
    return torch.where(active, w.sign() * move, 0.0)


@register_attack("fab")
class FAB(Attack):
    """FAB: walks along the linearised decision boundary towards the clean image.

    Every step linearises the model at the current point, picks the closest linearised
    boundary (untargeted: of every other class; targeted: of the target class), and projects
    both the current point and the clean image onto it inside the pixel box (exactly, see
    :func:`project_to_hyperplane`). The next point is a convex combination of the two
    projections, overshot by ``eta``, with weight ``alpha = min(|d_x| / (|d_x| + |d_clean|),
    alpha_max)`` on the clean side. After a success the point steps back towards the clean
    image by the factor ``beta``. A minimum-norm attack: an example counts as fooled only when
    the adversarial found is within ``eps``; the others come back unchanged. Every run after the
    first starts from a random point at distance ``eps / 2``.

    Targeted without given targets (FAB-T, as in AutoAttack), it tries the ``target_classes``
    most likely wrong classes of the clean image one after another (at most classes - 1) on the
    examples not fooled yet, each with ``restarts`` runs; success then means any
    misclassification. An example leaves a run once an adversarial within ``eps`` is found (the
    reference keeps shrinking it; the outcome is the same). One forward and ``classes``
    backward passes per step untargeted, one backward pass targeted, plus one forward pass.

    Options:
        steps: iterations per run (100).
        restarts: runs per target class (1).
        alpha_max: the largest weight on the clean image's projection (0.1).
        eta: overshoot of the projection (1.05).
        beta: backward step towards the clean image after a success (0.9).
        target_classes: target classes to try without given targets (9).
    """

    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")
    target_optional: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "steps": 100,
        "restarts": 1,
        "alpha_max": 0.1,
        "eta": 1.05,
        "beta": 0.9,
        "target_classes": 9,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        checks = {
            "alpha_max": (0 <= o["alpha_max"] <= 1, "in [0, 1]"),
            "eta": (o["eta"] > 0, "positive"),
            "beta": (0 < o["beta"] <= 1, "in (0, 1]"),
            "target_classes": (
                isinstance(o["target_classes"], int) and o["target_classes"] >= 1,
                "a positive integer",
            ),
        }
        for key, (fine, wanted) in checks.items():
            if not fine:
                raise WorkbenchError(f"{key}: must be {wanted}, got {o[key]!r}")

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        clean = self.logits(x, y, target)
        self.auto_targets = self.targeted and target is None
        try:
            if self.auto_targets:
                ranked = clean.scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)
                count = min(self.options["target_classes"], clean.shape[1] - 1)
                goals: list[Tensor | None] = [ranked[:, rank] for rank in range(count)]
            else:
                goals = [target]
            x_adv = x.clone()
            standing = ~self.success(clean, y, target)
            for goal in goals:
                for restart in range(self.options["restarts"]):
                    index = standing.nonzero()[:, 0]
                    if len(index) == 0:
                        return x_adv
                    part = None if goal is None else goal[index]
                    found, fooled = self.run(x[index], y[index], part, restart > 0)
                    x_adv[index[fooled]] = found[fooled]
                    standing[index[fooled]] = False
            return x_adv
        finally:
            self.auto_targets = False

    def run(
        self, x: Tensor, y: Tensor, target: Tensor | None, random_start: bool
    ) -> tuple[Tensor, Tensor]:
        """One FAB run.

        Returns:
            per example the closest adversarial found (the clean image where none) and
            whether it lies within ``eps``.
        """
        o, threat = self.options, self.threat
        flat = x.flatten(1)
        current = self._start(x) if random_start else x.clone()
        best = x.clone()
        best_dist = torch.full((len(x),), math.inf, device=x.device)
        active = torch.arange(len(x), device=x.device)
        for _ in range(o["steps"]):
            point, origin, labels = current[active], x[active], y[active]
            goal = None if target is None else target[active]
            w, b = self._boundary(point, labels, goal)
            count = len(active)
            steps = project_to_hyperplane(
                torch.cat([point.flatten(1), flat[active]]),
                torch.cat([w, w]),
                torch.cat([b, b]),
                threat.norm,
                threat.lower,
                threat.upper,
            )
            sizes = self._norm(steps).clamp_min(1e-8)
            alpha = (sizes[:count] / (sizes[:count] + sizes[count:])).clamp(0.0, o["alpha_max"])
            alpha = alpha.view(-1, *([1] * (x.dim() - 1)))
            to_point = steps[:count].view_as(point)
            to_origin = steps[count:].view_as(point)
            moved = (point + o["eta"] * to_point) * (1 - alpha) + (
                origin + o["eta"] * to_origin
            ) * alpha
            moved = moved.clamp(threat.lower, threat.upper)
            fooled = self.success(self.logits(moved, labels, goal), labels, goal)
            dist = threat.distance(moved, origin)
            closer = fooled & (dist < best_dist[active])
            best[active[closer]] = moved[closer]
            best_dist[active[closer]] = dist[closer]
            back = origin + (moved - origin) * o["beta"]
            current[active] = torch.where(fooled.view_as(alpha), back, moved)
            active = active[~(best_dist[active] <= threat.eps)]
            if len(active) == 0:
                break
        within = best_dist <= threat.eps
        return torch.where(within.view(-1, *([1] * (x.dim() - 1))), best, x), within

    def _start(self, x: Tensor) -> Tensor:
        """A random point at distance ``eps / 2`` from ``x`` (clipped to the box)."""
        if self.threat.norm == "linf":
            noise = 2 * torch.rand(x.shape, generator=self.generator, device=x.device) - 1
            scale = noise.flatten(1).abs().amax(dim=1)
        else:
            noise = torch.randn(x.shape, generator=self.generator, device=x.device)
            scale = noise.flatten(1).norm(dim=1)
        noise = noise / scale.clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
        return (x + noise * self.threat.eps / 2).clamp(self.threat.lower, self.threat.upper)

    def _norm(self, flat: Tensor) -> Tensor:
        return flat.abs().amax(dim=1) if self.threat.norm == "linf" else flat.norm(dim=1)

    def _boundary(self, x: Tensor, y: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor]:
        """Returns the closest linearised decision boundary ``w . z = b`` at ``x`` (B x n, B):
        of the target class, or of the class whose boundary is nearest in the threat's norm."""
        with torch.enable_grad():
            point = x.detach().requires_grad_(True)
            logits = self.logits(point, y, target)
            rows = torch.arange(len(x), device=x.device)
            if target is not None:
                gap = logits[rows, target] - logits[rows, y]
                (grad,) = torch.autograd.grad(gap.sum(), point)
                gap, grad = gap.detach(), grad.flatten(1)
            else:
                classes = logits.shape[1]
                grads = torch.stack(
                    [
                        torch.autograd.grad(
                            logits[:, k].sum(), point, retain_graph=k < classes - 1
                        )[0].flatten(1)
                        for k in range(classes)
                    ],
                    dim=1,
                )
                logits = logits.detach()
                gaps = logits - logits[rows, y][:, None]
                slopes = grads - grads[rows, y][:, None]
                dual = slopes.abs().sum(dim=2) if self.threat.norm == "linf" else slopes.norm(dim=2)
                distance = (gaps.abs() / (dual + 1e-12)).scatter(1, y[:, None], math.inf)
                nearest = distance.argmin(dim=1)
                gap, grad = gaps[rows, nearest], slopes[rows, nearest]
        return grad, (grad * x.flatten(1)).sum(dim=1) - gap
