"""Backbone registry (:data:`BACKBONES`) and the builder that checks the options by signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
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


def check_backbone_options(name: str, options: Mapping[str, object], prefix: str = "") -> None:
    """Refuses an option name that the backbone ``name`` does not take.

    The constructor's signature is the schema: each backbone checks its option values itself,
    with one-line errors that name the option.

    Args:
        name: a name in :data:`BACKBONES`.
        options: the options by name.
        prefix: where the caller's users set the options (``model.backbone_options``), put
            before the option an error names.

    Raises:
        WorkbenchError: an unknown backbone, or the first unknown option and the allowed ones.
    """
    allowed = backbone_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        field = ".".join(p for p in (prefix, unknown[0]) if p)
        raise WorkbenchError(
            f"{field}: not an option of backbone {name!r}; allowed: {', '.join(allowed)}"
        )


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
    check_backbone_options(name, options)
    return BACKBONES.get(name)(in_channels, **options)
