"""The files the package ships beside its code: bundled scene specs, training configs, the app,
textures.

The repository keeps them at the top level (``scenes/``, ``configs/``, ``app/``, ``textures/``);
``pyproject.toml`` maps those folders into this package as ``workbench.resources.scenes``,
``workbench.resources.configs``, ``workbench.resources.app`` and
``workbench.resources.textures``, so a wheel carries them and an editable install reads them
where they are. Every lookup goes through
:func:`importlib.resources.files`, never through a path relative to the source tree.

The functions return real folders, because their users need paths (scene specs name their mesh
files relative to the spec; LightningCLI and Streamlit take file names). pip installs wheels
unpacked, so the folders exist; an import from a zip archive is refused with one line.

Examples:
    >>> from workbench.resources import scenes_dir
    >>> (scenes_dir() / "digits.yaml").is_file()
    True
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from workbench.errors import WorkbenchError


def _folder(package: str) -> Path:
    """Returns the folder on disk of the resource package ``package``.

    Raises:
        WorkbenchError: the package is missing (an install older than the mapping: reinstall) or
            is not a folder on disk (imported from a zip archive).
    """
    try:
        folder = files(package)
    except ModuleNotFoundError:
        raise WorkbenchError(
            f"{package}: not installed; reinstall workbench (pip install -e . in a checkout)"
        ) from None
    if not isinstance(folder, Path) or not folder.is_dir():
        raise WorkbenchError(
            f"{package}: the bundled files are not a folder on disk ({folder}); install "
            "workbench with pip (unpacked), not from a zip archive"
        )
    return folder


def scenes_dir() -> Path:
    """Returns the folder of the bundled scene specs (``digits.yaml``, ...) and ``assets/``."""
    return _folder("workbench.resources.scenes")


def configs_dir() -> Path:
    """Returns the folder of the bundled LightningCLI configs (``classifier_digits.yaml``, ...)."""
    return _folder("workbench.resources.configs")


def textures_dir() -> Path:
    """Returns the folder of the bundled textures (``frost/``, see its ``NOTICE``)."""
    return _folder("workbench.resources.textures")


def app_dir() -> Path:
    """Returns the folder of the Streamlit app (``serve.py``, ``main.py``, ``pages/``)."""
    return _folder("workbench.resources.app")


def resolve_scene(name: str) -> Path:
    """Returns the spec file for a path or for the name of a bundled scene (``digits``, ...)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    bundled = scenes_dir()
    for folder in (Path.cwd() / "scenes", bundled):
        candidate = folder / f"{name}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in bundled.glob("*.yaml"))
    raise WorkbenchError(
        f"scene {name!r}: no such file or bundled scene; bundled: {', '.join(known)}"
    )
