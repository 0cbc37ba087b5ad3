"""Scene kinds: a registry from spec ``kind`` to the builder that randomizes one sample."""

from __future__ import annotations

from collections.abc import Callable

from workbench.errors import WorkbenchError
from workbench.registry import Registry
from workbench.scene.model import SceneInstance

Builder = Callable[..., SceneInstance]
SCENE_KINDS: Registry[Builder] = Registry("scene kind")
"""``builder(spec, seed, index) -> SceneInstance`` by spec ``kind``; the optional metadata
``preflight`` is a ``preflight(spec)`` that loads assets and raises
:class:`~workbench.errors.WorkbenchError` for specs that cannot be rendered."""

register_kind = SCENE_KINDS.register  # @register_kind(kind, preflight=check)
kinds = SCENE_KINDS.names


def build_scene(spec, seed: int, index: int) -> SceneInstance:
    """Randomizes sample ``index`` of a dataset with ``seed``; pure function of its arguments."""
    return SCENE_KINDS.get(spec.kind)(spec, seed, index)


def preflight(spec) -> None:
    """Checks before any rendering that the spec's assets load and its objects can be placed.

    Raises:
        WorkbenchError: one line naming the spec's file (``spec.source``) and the field.
    """
    try:
        check = SCENE_KINDS.metadata(spec.kind).get("preflight")
        if check is not None:
            check(spec)
    except WorkbenchError as exc:
        raise WorkbenchError(f"{spec.source}: {exc}") from None


# the kinds register themselves with register_kind above, so they are imported last
from workbench.scene.kinds import digits, shapes, street, tabletop  # noqa: E402, F401
