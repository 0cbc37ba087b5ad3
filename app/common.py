"""Shared widgets of the app's pages: the data root, path pickers, images and error boxes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import streamlit as st

from workbench.errors import WorkbenchError
from workbench.inspect.paths import resolve_under

ROOT_ENV = "WORKBENCH_DATA_ROOT"


def data_root() -> Path:
    """The data root: ``--data-root`` after ``--`` on the command line, else $WORKBENCH_DATA_ROOT,
    else the working directory."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--data-root", default=None)
    given = parser.parse_known_args(sys.argv[1:])[0].data_root
    return Path(given or os.environ.get(ROOT_ENV) or ".").resolve()


@contextmanager
def error_box() -> Iterator[None]:
    """Shows a :class:`WorkbenchError` raised inside the block as an error box."""
    try:
        yield
    except WorkbenchError as exc:
        st.error(str(exc), icon=":material/error:")


def pick_path(label: str, choices: Sequence[str], key: str, help: str = "") -> str | None:
    """A select box over ``choices`` plus a text field for any other path under the data root.

    Returns:
        the chosen path relative to the root, or None (an error box says why) when nothing is
        chosen or a typed path leaves the root.
    """
    root = data_root()
    typed = st.text_input(
        f"{label}: another path under the data root", key=f"{key}_typed", help=help
    ).strip()
    if typed:
        with error_box():
            return str(resolve_under(root, typed).relative_to(root)) or "."
        return None
    if not choices:
        st.info(f"No {label.lower()} under {root}.")
        return None
    return st.selectbox(label, choices, key=key)


def show_images(images: dict[str, np.ndarray], columns: int = 4) -> None:
    """Shows captioned images in rows of ``columns``."""
    names = list(images)
    for start in range(0, len(names), columns):
        for column, name in zip(st.columns(columns), names[start : start + columns], strict=False):
            column.image(images[name], caption=name, width="stretch")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Converts a float image in [0, 1] (H x W x C or H x W) to uint8 H x W x 3."""
    array = np.clip(np.asarray(image, np.float32), 0, 1)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.round(array * 255).astype(np.uint8)
