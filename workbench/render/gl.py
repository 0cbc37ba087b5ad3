"""OpenGL backend choice for offscreen rendering: EGL first, OSMesa as fallback.

PyOpenGL fixes its platform when first imported, so a backend is probed in a short
subprocess and then set in ``PYOPENGL_PLATFORM`` before pyrender is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from workbench.errors import WorkbenchError

BACKENDS = ("egl", "osmesa")
MESA_HINT = "apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6"

_PROBE = """
import sys
import pyrender
from OpenGL.GL import glGetString, GL_RENDERER
r = pyrender.OffscreenRenderer(8, 8)
r._platform.make_current()
sys.stdout.write(glGetString(GL_RENDERER).decode() + "\\n")
r.delete()
"""


@dataclass(frozen=True)
class GLInfo:
    """The chosen backend and the ``GL_RENDERER`` string it reported."""

    backend: str
    renderer: str


def probe(backend: str) -> GLInfo:
    """Creates a tiny offscreen context with ``backend`` in a subprocess.

    Raises:
        WorkbenchError: the backend is unknown or cannot create a context.
    """
    if backend not in BACKENDS:
        raise WorkbenchError(
            f"--gl: unknown backend {backend!r}; allowed: auto, {', '.join(BACKENDS)}"
        )
    env = {**os.environ, "PYOPENGL_PLATFORM": backend}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkbenchError(
            f"OpenGL backend {backend} is not available ({last}); install Mesa: {MESA_HINT}"
        )
    return GLInfo(backend, done.stdout.strip().splitlines()[-1])


def choose(requested: str = "auto") -> GLInfo:
    """Returns the backend to use: ``requested``, or for ``auto`` EGL when it works, else OSMesa.

    Also sets ``PYOPENGL_PLATFORM`` so this process and its children use it.
    """
    if requested == "auto":
        errors = []
        for backend in BACKENDS:
            try:
                info = probe(backend)
                break
            except WorkbenchError as exc:
                errors.append(str(exc))
        else:
            raise WorkbenchError("no OpenGL backend works: " + "; ".join(errors))
    else:
        info = probe(requested)
    activate(info.backend)
    return info


def activate(backend: str) -> None:
    """Sets the backend for this process; refuses to switch once PyOpenGL is imported."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    if "OpenGL" in sys.modules and current not in (None, backend):
        raise RuntimeError(
            f"PyOpenGL already uses {current}; cannot switch to {backend} in this process"
        )
    os.environ["PYOPENGL_PLATFORM"] = backend
