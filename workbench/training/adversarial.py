"""Adversarial training for the classifier: PGD training (Madry et al. 2018), TRADES (Zhang et
al. 2019) and robust accuracy as a validation metric.

The classifier's ``adversarial`` option group (see :class:`AdversarialConfig`) selects a method:

- ``pgd``: a ``mix`` fraction of every training batch is replaced by PGD adversarial examples
  of those images (adversarial examples as one more augmentation source); ``mix: 1.0`` is Madry
  et al.'s PGD training.
- ``trades``: the loss is the clean loss plus ``beta * KL(f(x) || f(x_adv))``, with ``x_adv``
  maximizing that KL divergence inside the ball by PGD.
- ``none``: no adversarial training, only the robust validation metric (for a baseline).

Adversarial examples are generated with the model in eval mode (BatchNorm uses its running
statistics and does not update them); the training step then runs in train mode. ``eps`` can
ramp up linearly over ``ramp_epochs`` epochs from ``start_epoch`` on, which helps small models
that cannot fit the full radius from the start.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from torch import Tensor, nn

from workbench.adversarial.attacks import build_attack
from workbench.adversarial.model import as_logits_model, attack_mode
from workbench.adversarial.threat import ThreatModel
from workbench.errors import WorkbenchError, option_error

METHODS = ("pgd", "trades", "none")


class AdversarialConfig(BaseModel):
    """Options of adversarial training (``model.adversarial`` in a config).

    Attributes:
        method: ``pgd``, ``trades`` or ``none`` (robust validation only).
        eps: L-inf radius of the training perturbations, in (0, 1].
        steps: PGD steps that make a training example.
        step_size: PGD step; None = ``2.5 * eps / steps``.
        beta: weight of the TRADES robustness term.
        mix: fraction of each batch replaced by adversarial examples (``pgd`` only), in (0, 1].
        start_epoch: first epoch with adversarial examples (clean training before).
        ramp_epochs: epochs over which eps grows linearly to its value (0 = full at once).
        val_eps: L-inf radius of the robust validation metric; None = ``eps``.
        val_steps: PGD steps of the robust validation metric; 0 turns the metric off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    method: str = "pgd"
    eps: float = 0.1
    steps: int = Field(7, ge=1)
    step_size: float | None = None
    beta: float = Field(6.0, ge=0)
    mix: float = 1.0
    start_epoch: int = Field(0, ge=0)
    ramp_epochs: int = Field(0, ge=0)
    val_eps: float | None = None
    val_steps: int = Field(10, ge=0)

    @field_validator("method")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown {value!r}; allowed: {', '.join(METHODS)}")
        return value

    @field_validator("eps", "val_eps")
    @classmethod
    def _radius(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"an L-inf radius in (0, 1] on [0, 1] pixels, got {value!r}")
        return value

    @field_validator("step_size")
    @classmethod
    def _step(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"must be in (0, 1] (or null for 2.5 * eps / steps), got {value!r}")
        return value

    @field_validator("mix")
    @classmethod
    def _mix(cls, value: float, info: ValidationInfo) -> float:
        if not 0 < value <= 1:
            raise ValueError(f"must be in (0, 1], got {value!r}")
        method = info.data.get("method")
        if method is not None and method != "pgd" and value != 1.0:
            raise ValueError(f"only applies to method pgd (got method {method})")
        return value

    @classmethod
    def from_dict(cls, options: dict[str, Any], prefix: str = "") -> AdversarialConfig:
        """Builds the config from a config mapping.

        Args:
            options: the mapping of the fields above.
            prefix: where the caller's users wrote the mapping (``model.adversarial``), put
                before the field an error names.

        Raises:
            WorkbenchError: an unknown option or a bad value, naming it.
        """
        if not isinstance(options, dict):
            raise WorkbenchError(
                f"{prefix or 'adversarial'}: must be a mapping such as "
                f"{{method: pgd, eps: 0.1}}, got {options!r}"
            )
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            raise option_error(exc, cls.model_fields, prefix) from None


class AdversarialTraining:
    """Makes the adversarial examples of adversarial training and robust validation.

    Args:
        config: the options; see :class:`AdversarialConfig`.
    """

    def __init__(self, config: AdversarialConfig):
        self.config = config

    @property
    def robust_metric(self) -> bool:
        """Whether validation and test measure robust accuracy."""
        return self.config.val_steps > 0

    def trains(self, epoch: int) -> bool:
        """Whether training batches of ``epoch`` get adversarial examples."""
        return self.config.method != "none" and epoch >= self.config.start_epoch

    def eps_at(self, epoch: int) -> float:
        """Returns the training radius at ``epoch`` (ramped over ``ramp_epochs``)."""
        c = self.config
        if not c.ramp_epochs:
            return c.eps
        return c.eps * min(1.0, (epoch - c.start_epoch + 1) / c.ramp_epochs)

    def _step_size(self, eps: float) -> float:
        c = self.config
        return c.step_size if c.step_size is not None else 2.5 * eps / c.steps

    def pgd_batch(
        self, model: nn.Module, image: Tensor, label: Tensor, epoch: int, seed: int
    ) -> Tensor:
        """Returns ``image`` with its first ``round(mix * B)`` examples (the batch order is
        random) replaced by PGD adversarial examples against ``model``."""
        count = round(self.config.mix * len(image))
        if count == 0:
            return image
        eps = self.eps_at(epoch)
        attack = build_attack(
            "pgd",
            model,
            ThreatModel("linf", eps),
            seed=seed,
            steps=self.config.steps,
            step_size=self._step_size(eps),
        )
        adversarial = attack(image[:count].detach(), label[:count])
        return torch.cat([adversarial, image[count:]])

    def trades_examples(self, model: nn.Module, image: Tensor, epoch: int, seed: int) -> Tensor:
        """Returns the TRADES adversarial examples: PGD ascent of ``KL(f(x) || f(x_adv))`` from
        ``x`` plus small Gaussian noise (Zhang et al.'s start), inside the L-inf ball."""
        eps = self.eps_at(epoch)
        threat = ThreatModel("linf", eps)
        step = self._step_size(eps)
        logits_model = as_logits_model(model)
        x = image.detach()
        generator = torch.Generator(device=x.device).manual_seed(seed)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        with attack_mode(logits_model), torch.enable_grad():
            with torch.no_grad():
                clean = logits_model(x).softmax(dim=1)
            x_adv = threat.project(x + 0.001 * noise, x)
            for _ in range(self.config.steps):
                x_adv.requires_grad_(True)
                divergence = F.kl_div(
                    logits_model(x_adv).log_softmax(dim=1), clean, reduction="sum"
                )
                (grad,) = torch.autograd.grad(divergence, x_adv)
                x_adv = threat.project(x_adv.detach() + step * grad.sign(), x)
        return x_adv.detach()

    def robust_examples(self, model: nn.Module, image: Tensor, label: Tensor, seed: int) -> Tensor:
        """Returns PGD adversarial examples at ``val_eps`` for the robust accuracy metric.

        Works inside Lightning's evaluation loop: the inputs are copied out of inference mode,
        which is switched off while the attack takes its gradients.
        """
        c = self.config
        eps = c.val_eps if c.val_eps is not None else c.eps
        with torch.inference_mode(False):
            attack = build_attack(
                "pgd",
                model,
                ThreatModel("linf", eps),
                seed=seed,
                steps=c.val_steps,
                step_size=2.5 * eps / c.val_steps,
            )
            return attack(image.clone(), label.clone())


def trades_loss(logits_clean: Tensor, logits_adv: Tensor) -> Tensor:
    """Returns the TRADES robustness term ``KL(softmax(clean) || softmax(adv))``, averaged over
    the batch; zero when the two agree."""
    return F.kl_div(
        logits_adv.log_softmax(dim=1), logits_clean.softmax(dim=1), reduction="batchmean"
    )
