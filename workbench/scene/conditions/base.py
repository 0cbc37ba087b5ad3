"""The condition base class (kornia's sample-then-apply split) and the name registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from workbench.errors import WorkbenchError
from workbench.registry import Registry
from workbench.scene.model import SceneInstance


class Condition:
    """A weather or time-of-day condition of a sample, in three steps.

    :meth:`sample` draws the parameters from the sample's own ``condition/<name>`` stream,
    :meth:`apply_scene` changes the scene instance before rendering (lights, ambient light) and
    :meth:`apply_image` changes the rendered image (sky, fog, rain, noise); the renderer then
    clips the image to [0, 1]. The parameters, with ``name``, go into the sample JSON. Every
    step is a pure function of its arguments, so paired renders of one sample share geometry.

    Attributes:
        name: the registered name (set by :func:`register_condition`).
        description: what the condition does, in one line (for ``--help`` and the app).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Returns the parameters of one sample, drawn from ``rng`` (none by default)."""
        return {}

    def apply_scene(
        self, scene: SceneInstance, params: dict[str, Any], rng: np.random.Generator
    ) -> SceneInstance:
        """Returns ``scene`` changed for the condition (in place; unchanged by default).

        Args:
            scene: the randomized scene instance.
            params: what :meth:`sample` drew, with ``name``.
            rng: the same stream, after :meth:`sample`'s draws, for draws that depend on the
                scene; they are not recorded.
        """
        return scene

    def apply_image(
        self,
        rgb: np.ndarray,
        params: dict[str, Any],
        depth: np.ndarray,
        rng: np.random.Generator,
        subject: np.ndarray | None = None,
    ) -> np.ndarray:
        """Returns the image-space part of the condition applied to ``rgb`` (unchanged by default).

        Args:
            rgb: the rendered image, float in [0, 1], H x W x 3.
            params: the parameters; a condition may add what it derives from the image (fog's
                ``fog_beta``), which the sample JSON records and the difficulty reads.
            depth: the depth pass in metres (0 = no surface).
            rng: the same stream, after the scene's draws, for per-pixel draws (not recorded).
            subject: H x W bool, the pixels of labelled things (None: no such mask).
        """
        return rgb


CONDITIONS: Registry[type[Condition]] = Registry("condition")
"""Condition classes by name: the one list the spec, the CLI, the app and the tests use."""


def register_condition(name: str) -> Callable[[type[Condition]], type[Condition]]:
    """Class decorator that sets ``cls.name`` and registers the class in :data:`CONDITIONS`."""

    def decorate(cls: type[Condition]) -> type[Condition]:
        cls.name = name
        return CONDITIONS.add(name, cls)

    return decorate


def build_condition(name: str, field: str = "condition") -> Condition:
    """Returns the registered condition ``name``.

    Args:
        name: a key of :data:`CONDITIONS`.
        field: what the caller calls the name (``--conditions``), prefixed to the error.

    Raises:
        WorkbenchError: ``{field}: unknown condition {name!r}; known: ...``.

    Examples:
        >>> build_condition("fog").description
        'a dimmer sun and depth fog (visibility 2 to 8 times the subject distance)'
        >>> build_condition("snow", "--conditions")
        Traceback (most recent call last):
        ...
        workbench.errors.WorkbenchError: --conditions: unknown condition 'snow'; known: clone, ...
    """
    try:
        return CONDITIONS.get(name)()
    except WorkbenchError as exc:
        raise WorkbenchError(f"{field}: {exc}") from None
