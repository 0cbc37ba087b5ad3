"""Backbone registry: name -> constructor, feeding the CLI choices, the app and the tests."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.models.backbones import Backbone

Constructor = Callable[..., "Backbone"]
_BACKBONES: dict[str, Constructor] = {}


def register_backbone(name: str) -> Callable[[Constructor], Constructor]:
    """Registers ``constructor(in_channels, **options) -> Backbone`` under ``name``.

    Args:
        name: the name that :func:`build_backbone` and the configs use.

    Returns:
        A decorator that registers the constructor and returns it unchanged.
    """

    def decorate(constructor: Constructor) -> Constructor:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is registered twice")
        _BACKBONES[name] = constructor
        return constructor

    return decorate


def backbone_names() -> list[str]:
    """Returns the registered backbone names, sorted."""
    return sorted(_BACKBONES)


def backbone_options(name: str) -> list[str]:
    """Returns the option names that the backbone ``name`` accepts besides ``in_channels``."""
    params = inspect.signature(_constructor(name)).parameters
    return [p for p in params if p != "in_channels"]


def build_backbone(name: str, in_channels: int, **options) -> Backbone:
    """Builds the registered backbone ``name``.

    Args:
        name: one of :func:`backbone_names`.
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
    return _constructor(name)(in_channels, **options)


def _constructor(name: str) -> Constructor:
    if name not in _BACKBONES:
        raise WorkbenchError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
    return _BACKBONES[name]
