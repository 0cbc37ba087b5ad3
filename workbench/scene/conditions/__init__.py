"""Weather and time-of-day conditions: one registered :class:`Condition` class per file.

A condition draws its parameters from the sample's own ``condition/<name>`` stream, changes the
lights and ambient light of the scene instance (time of day moves the sun and changes its
colour) and then does in the rendered image what light transport does: fog from depth
(Koschmieder's law), rain streaks, overcast haze, night noise. :data:`CONDITIONS` is the one
list of them: the scene spec validates its ``conditions`` against it, and the render job, the
app and the tests list it. They live in ``scene`` (below ``render``) so that the spec can see
them. A new condition is one file here that registers its class with
:func:`register_condition`, and its line in the import below.
"""

from workbench.scene.conditions import (  # noqa: F401  (importing registers them)
    camera_turn,
    clone,
    fog,
    morning,
    night,
    overcast,
    rain,
    sunset,
)
from workbench.scene.conditions.base import (
    CONDITIONS,
    Condition,
    build_condition,
    register_condition,
)

__all__ = ["CONDITIONS", "Condition", "build_condition", "register_condition"]
