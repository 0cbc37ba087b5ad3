"""Scene kinds: a registry from spec ``kind`` to the builder that randomizes one sample."""

from __future__ import annotations

from collections.abc import Callable

from workbench.errors import WorkbenchError
from workbench.scene.model import SceneInstance

Builder = Callable[..., SceneInstance]
_BUILDERS: dict[str, Builder] = {}
_PREFLIGHTS: dict[str, Callable[..., None]] = {}


def register_kind(
    name: str, preflight: Callable[..., None] | None = None
) -> Callable[[Builder], Builder]:
    """Registers ``builder(spec, seed, index) -> SceneInstance`` for a scene kind.

    Args:
        name: the spec's ``kind`` value.
        preflight: optional ``preflight(spec)`` that loads assets and raises
            :class:`~workbench.errors.WorkbenchError` for specs that cannot be rendered.
    """

    def decorate(builder: Builder) -> Builder:
        _BUILDERS[name] = builder
        if preflight is not None:
            _PREFLIGHTS[name] = preflight
        return builder

    return decorate


def build_scene(spec, seed: int, index: int) -> SceneInstance:
    """Randomizes sample ``index`` of a dataset with ``seed``; pure function of its arguments."""
    return _BUILDERS[spec.kind](spec, seed, index)


def preflight(spec) -> None:
    """Checks before any rendering that the spec's assets load and its objects can be placed.

    Raises:
        WorkbenchError: one line naming the spec's file (``spec.source``) and the field.
    """
    check = _PREFLIGHTS.get(spec.kind)
    if check is not None:
        try:
            check(spec)
        except WorkbenchError as exc:
            raise WorkbenchError(f"{spec.source}: {exc}") from None


def kinds() -> list[str]:
    """Returns the registered scene kinds."""
    return sorted(_BUILDERS)


from workbench.scene.kinds import digits, shapes, street, tabletop  # noqa: F401  (registration)
