"""``clone``: the scene as specified."""

from __future__ import annotations

from workbench.scene.conditions.base import Condition, register_condition


@register_condition("clone")
class Clone(Condition):
    """The scene as specified: no draws, no changes."""

    description = "the scene as specified"
