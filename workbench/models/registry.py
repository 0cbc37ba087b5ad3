"""Backbone registry (:data:`BACKBONES`) and the builder that checks the options by signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError
from workbench.registry import Registry

if TYPE_CHECKING:
    from workbench.models.backbones import Backbone

Constructor = Callable[..., "Backbone"]
BACKBONES: Registry[Constructor] = Registry("backbone")
"""``constructor(in_channels, **options) -> Backbone`` by the name that the configs use."""


def backbone_options(name: str) -> list[str]:
    """Returns the option names that the backbone ``name`` accepts besides ``in_channels``."""
    params = inspect.signature(BACKBONES.get(name)).parameters
    return [p for p in params if p != "in_channels"]


def build_backbone(name: str, in_channels: int, **options) -> Backbone:
    """Builds the registered backbone ``name``.

    Args:
        name: a name in :data:`BACKBONES`.
        in_channels: input image channels (1 or 3).
        **options: the backbone's keyword options (see its class).

    Returns:
        The backbone, a module with ``out_channels`` and ``stride``.

    Raises:
        WorkbenchError: unknown name, unknown option or an invalid option value.
    """
    unknown = sorted(set(options) - set(backbone_options(name)))
    if unknown:
        raise WorkbenchError(
            f"backbone {name!r} has no option {', '.join(unknown)}; "
            f"options: {', '.join(backbone_options(name))}"
        )
    return BACKBONES.get(name)(in_channels, **options)
