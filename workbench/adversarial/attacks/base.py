"""The attack base class (boundary checks, eval mode, projection) and the name registry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench.adversarial.model import as_logits_model, attack_mode, check_batch, check_logits
from workbench.adversarial.threat import NORMS, ThreatModel
from workbench.errors import WorkbenchError
from workbench.registry import Registry

log = logging.getLogger(__name__)

ATTACKS: Registry[type[Attack]] = Registry("attack")


def register_attack(name: str) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator that sets ``cls.name`` and registers the class in :data:`ATTACKS`."""

    def decorate(cls: type[Attack]) -> type[Attack]:
        cls.name = name
        return ATTACKS.add(name, cls)

    return decorate


def margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Returns ``max_{i != y} z_i - z_y`` per example (positive = misclassified)."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return other - true


def dlr_loss(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    """Difference of logits ratio (Croce & Hein 2020), to be maximised.

    Untargeted: ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)``; targeted:
    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``, with ``z_pi`` the sorted logits. Invariant
    to shifting and scaling the logits.
    """
    ordered = logits.sort(dim=1, descending=True).values
    true = logits.gather(1, y[:, None])[:, 0]
    if target is None:
        other = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        return -(true - other) / (ordered[:, 0] - ordered[:, 2] + 1e-12)
    goal = logits.gather(1, target[:, None])[:, 0]
    scale = ordered[:, 0] - (ordered[:, 2] + ordered[:, 3]) / 2
    return -(true - goal) / (scale + 1e-12)


LOSSES = ("ce", "margin", "dlr")


class BestIterate:
    """Per-example best point seen so far: a successful example beats an unsuccessful one, then
    the higher loss wins. Starts at ``x`` with loss ``-inf`` and no success."""

    def __init__(self, x: Tensor) -> None:
        self.x = x.clone()
        self.loss = torch.full((len(x),), float("-inf"), device=x.device)
        self.success = torch.zeros(len(x), dtype=torch.bool, device=x.device)

    def update(self, x_adv: Tensor, loss: Tensor, success: Tensor) -> None:
        """Keeps ``x_adv`` for the examples where it beats the best so far."""
        better = (success & ~self.success) | ((success == self.success) & (loss > self.loss))
        self.x = torch.where(better.view(-1, *([1] * (x_adv.dim() - 1))), x_adv, self.x)
        self.loss = torch.where(better, loss, self.loss)
        self.success = self.success | success

    def merge(self, index: Tensor, other: BestIterate) -> None:
        """Takes the examples ``index`` from ``other`` (a run on a subset) where they are better."""
        better = (other.success & ~self.success[index]) | (
            (other.success == self.success[index]) & (other.loss > self.loss[index])
        )
        chosen = index[better]
        self.x[chosen] = other.x[better]
        self.loss[chosen] = other.loss[better]
        self.success[chosen] = other.success[better]


def restarted(
    run: Callable[[Tensor, Tensor, Tensor | None], BestIterate],
    x: Tensor,
    y: Tensor,
    target: Tensor | None,
    restarts: int,
) -> BestIterate:
    """Calls ``run`` on the batch, then ``restarts - 1`` more times on the examples it has not
    fooled yet, and returns every example's best iterate over all runs."""
    best = run(x, y, target)
    for _ in range(1, restarts):
        index = (~best.success).nonzero()[:, 0]
        if len(index) == 0:
            break
        best.merge(index, run(x[index], y[index], None if target is None else target[index]))
    return best


class Attack:
    """Base of every attack: checks the batch, runs under :func:`attack_mode`, projects.

    Subclasses set the class attributes and implement :meth:`perturb`; options are keyword
    arguments listed with their defaults in ``defaults``.

    Args:
        model: a classifier (dict output with ``"logits"``) or any module returning logits; it
            is wrapped in :class:`~workbench.adversarial.model.LogitsModel` and never moved.
        threat: the threat model (norm, eps, pixel box).
        targeted: steer towards a given target class instead of away from the true label.
        seed: seeds every random draw of the attack (random starts, squares), so a call is
            deterministic; a wrapped module with a ``reseed(seed)`` method (such as
            :class:`~workbench.adversarial.eot.EOTModel`) is reseeded with it at every call.
        **options: attack-specific options (see each class's ``defaults``).
    """

    name: ClassVar[str] = ""
    norms: ClassVar[tuple[str, ...]] = NORMS
    targeted_ok: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    target_optional: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    # True while a targeted attack without given targets tries classes of its own choosing
    auto_targets: bool = False

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        targeted: bool = False,
        seed: int = 0,
        **options: Any,
    ) -> None:
        if threat.norm not in self.norms:
            raise WorkbenchError(
                f"norm: attack '{self.name}' supports {', '.join(self.norms)}, got {threat.norm!r}"
            )
        if targeted and not self.targeted_ok:
            raise WorkbenchError(f"targeted: attack '{self.name}' is untargeted only")
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise WorkbenchError(
                f"attack '{self.name}': unknown option {unknown[0]!r}; known: {known}"
            )
        self.model = self.wrap(model)
        self.threat = threat
        self.targeted = bool(targeted)
        self.seed = int(seed)
        self.options = {**self.defaults, **options}
        for key in ("steps", "restarts"):
            if key in self.options and not (
                isinstance(self.options[key], int) and self.options[key] >= 1
            ):
                raise WorkbenchError(
                    f"{key}: must be a positive integer, got {self.options[key]!r}"
                )
        if self.options.get("loss", "ce") not in LOSSES:
            raise WorkbenchError(
                f"loss: unknown {self.options['loss']!r}; allowed: {', '.join(LOSSES)}"
            )
        self.num_classes: int | None = None
        self.generator: torch.Generator | None = None

    def __call__(self, x: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
        """Returns adversarial examples for images ``x`` (float32 B x C x H x W in [0, 1]) with
        labels ``y`` (and ``target`` classes when targeted): detached, float32, on ``x``'s
        device, inside the threat model."""
        self.check_inputs(x, y, target)
        self.threat.check_images(x)
        device = next((p.device for p in self.model.parameters()), x.device)
        if device != x.device:
            raise WorkbenchError(
                f"x: images are on {x.device} but the model is on {device}; move the images"
            )
        if len(x) == 0:
            return x.detach().clone()
        y = y.to(x.device) if y.is_floating_point() else y.to(x.device).long()  # depth: metres
        target = None if target is None else target.to(x.device).long()
        self.generator = torch.Generator(device=x.device)
        self.generator.manual_seed(self.seed)
        self.num_classes = None
        for module in self.model.modules():  # models with random draws (EOTModel) restart them
            if hasattr(module, "reseed"):
                module.reseed(self.seed)
        x = x.detach()
        with attack_mode(self.model), torch.no_grad():
            x_adv = self.perturb(x, y, target)
        x_adv = self.threat.project(x_adv.detach(), x).to(torch.float32)
        self.verify(x_adv, x)
        return x_adv

    def wrap(self, model: nn.Module) -> nn.Module:
        """Returns the module the attack differentiates: ``model`` as B x K logits."""
        return as_logits_model(model)

    def check_inputs(self, x: Tensor, y: Tensor, target: Tensor | None) -> None:
        """Raises for labels (and targets) that do not fit the batch of images."""
        check_batch(x, y)
        self._check_target(y, target)

    def verify(self, x_adv: Tensor, x: Tensor) -> None:
        """Raises unless the returned examples satisfy the attack's bound (the threat model)."""
        self.threat.assert_within(x_adv, x)

    def perturb(self, x: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """Returns the adversarial images (projected again by the caller); runs under
        ``torch.no_grad`` with the model in eval mode: use :meth:`loss_grad` for gradients."""
        raise NotImplementedError

    def _check_target(self, y: Tensor, target: Tensor | None) -> None:
        if not self.targeted:
            if target is not None:
                raise WorkbenchError(
                    f"target: attack '{self.name}' is untargeted here; pass targeted=True"
                )
            return
        if target is None:
            if self.target_optional:
                return
            raise WorkbenchError("target: a targeted attack needs target classes (B labels)")
        if not isinstance(target, Tensor) or target.shape != y.shape:
            raise WorkbenchError(
                f"target: need one target class per image ({len(y)}), got "
                f"{tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__}"
            )
        if target.dtype.is_floating_point or target.dtype == torch.bool:
            raise WorkbenchError(f"target: classes must be integers, got {target.dtype}")
        same = int((target.to(y.device) == y).sum())
        if same:
            raise WorkbenchError(f"target: equals the true label for {same} examples; pick others")

    def logits(self, x: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
        """Returns the model's logits for ``x``; the first call of an attack checks that they are
        logits and that the labels fit the number of classes."""
        out = self.model(x)
        if self.num_classes is None:
            check_logits(out)
            self.num_classes = out.shape[1]
            check_batch(x.detach(), y, self.num_classes)
            if target is not None:
                check_batch(x.detach(), target, self.num_classes)
        return out

    def objective(self, logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """Returns the per-example loss the attack ascends (``options['loss']``, default ce)."""
        kind = self.options.get("loss", "ce")
        if kind == "dlr":
            return dlr_loss(logits, y, target)
        if kind == "margin":
            return -margin_loss(logits, target) if target is not None else margin_loss(logits, y)
        if target is not None:
            return -F.cross_entropy(logits, target, reduction="none")
        return F.cross_entropy(logits, y, reduction="none")

    def success(self, logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
        """Returns which examples fool the model (B bool); while a targeted attack tries target
        classes of its own choosing (``auto_targets``), any wrong class counts."""
        pred = logits.argmax(dim=1)
        if target is None or self.auto_targets:
            return pred != y
        return pred == target

    def loss_grad(
        self, x_adv: Tensor, y: Tensor, target: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One forward and one backward pass at ``x_adv``.

        Returns:
            the per-example objective (B), the logits (B x K), both detached, and the gradient
            of the objective with respect to the input only.
        """
        with torch.enable_grad():
            x_adv = x_adv.detach().requires_grad_(True)
            logits = self.logits(x_adv, y, target)
            loss = self.objective(logits, y, target)
            (grad,) = torch.autograd.grad(loss.sum(), x_adv)
        return loss.detach(), logits.detach(), grad

    def evaluate(self, x_adv: Tensor, y: Tensor, target: Tensor | None) -> tuple[Tensor, Tensor]:
        """Returns the objective and success of ``x_adv`` from one forward pass."""
        logits = self.logits(x_adv, y, target)
        return self.objective(logits, y, target), self.success(logits, y, target)

    def steepest(self, grad: Tensor) -> Tensor:
        """Returns the unit steepest-ascent direction of the threat's norm: the sign of the
        gradient for L-inf, the gradient scaled to unit L2 norm for L2."""
        if self.threat.norm == "linf":
            return grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return grad / norms.view(-1, *([1] * (grad.dim() - 1)))

    def step_size(self, steps: int, factor: float = 2.5) -> float:
        """Returns ``options['step_size']`` or ``factor * eps / steps`` (Madry et al.)."""
        size = self.options.get("step_size")
        if size is None:
            return factor * self.threat.eps / steps
        if not size > 0:
            raise WorkbenchError(f"step_size: must be positive, got {size}")
        return float(size)
