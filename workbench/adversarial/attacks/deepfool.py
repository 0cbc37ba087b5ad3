"""DeepFool (Moosavi-Dezfooli et al. 2016), multi-class, batched."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from workbench.adversarial.attacks.base import Attack, register_attack
from workbench.errors import WorkbenchError


@register_attack("deepfool")
class DeepFool(Attack):
    """Steps to the nearest linearised decision boundary until the label flips.

    At every step each example still classified correctly is linearised around its iterate;
    among the ``candidates`` most likely other classes (ranked on the clean image) it moves to
    the closest boundary ``|f_k| / ||w_k||`` (dual norm: L2 for L2, L1 for L-inf), and the
    accumulated step is applied with ``1 + overshoot``. One forward pass and ``candidates``
    backward passes per step, over the whole batch at once. Untargeted only.

    DeepFool finds a minimal perturbation rather than one inside a ball, so like C&W its result
    is projected onto the threat model's eps-ball (an example that needed more comes back at
    ``eps``); the unbounded distances are in :attr:`last_distance`.

    Options:
        steps: the most linearisation steps (50).
        overshoot: relative overshoot of the accumulated step (0.02).
        candidates: classes considered, the most likely first (10).
    """

    targeted_ok: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {"steps": 50, "overshoot": 0.02, "candidates": 10}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.options["overshoot"] >= 0:
            raise WorkbenchError(f"overshoot: must be >= 0, got {self.options['overshoot']}")
        if not (isinstance(self.options["candidates"], int) and self.options["candidates"] >= 2):
            raise WorkbenchError(
                f"candidates: must be an integer >= 2, got {self.options['candidates']!r}"
            )
        self.last_distance: Tensor | None = None

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        clean = self.logits(x, y)
        count = min(self.options["candidates"], clean.shape[1])
        others = clean.scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
        others = others[:, : count - 1]
        scale = 1 + self.options["overshoot"]
        total = torch.zeros_like(x)
        x_adv = x.clone()
        active = clean.argmax(dim=1) == y
        for _ in range(self.options["steps"]):
            index = active.nonzero()[:, 0]
            if len(index) == 0:
                break
            step, still = self._step(x_adv[index], y[index], others[index])
            active[index] = still
            total[index] += step
            x_adv[index] = (x[index] + scale * total[index]).clamp(
                self.threat.lower, self.threat.upper
            )
        self.last_distance = self.threat.distance(x_adv, x)
        return x_adv

    def _step(self, x: Tensor, y: Tensor, others: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the step to the closest linearised boundary (zero for examples already
        fooled) and which examples were still correctly classified."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logits = self.logits(x, y)
            true = logits.gather(1, y[:, None])
            gaps = logits.gather(1, others) - true
            grads = torch.stack(
                [
                    torch.autograd.grad(gaps[:, k].sum(), x, retain_graph=k < gaps.shape[1] - 1)[0]
                    for k in range(gaps.shape[1])
                ],
                dim=1,
            )
        gaps = gaps.detach().abs()
        still = logits.detach().argmax(dim=1) == y
        flat = grads.flatten(2)
        dual = flat.norm(dim=2) if self.threat.norm == "l2" else flat.abs().sum(dim=2)
        closest = (gaps / dual.clamp_min(1e-12)).argmin(dim=1)
        pick = torch.arange(len(x), device=x.device)
        w, gap, norm = grads[pick, closest], gaps[pick, closest], dual[pick, closest]
        view = (-1, *([1] * (x.dim() - 1)))
        if self.threat.norm == "l2":
            step = ((gap + 1e-4) / norm.pow(2).clamp_min(1e-12)).view(view) * w
        else:
            step = ((gap + 1e-4) / norm.clamp_min(1e-12)).view(view) * w.sign()
        return step * still.view(view), still
