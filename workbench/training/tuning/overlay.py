"""Sampled values applied to a config: dotted keys with list indices, checked against the
whole config (defaults included), and the overlay a sweep's ``best.yaml`` holds."""

from __future__ import annotations

import copy
import re
from typing import Any

from workbench.errors import WorkbenchError

_PART = re.compile(r"([A-Za-z_]\w*)((?:\[\d+\])*)")


def parts(key: str) -> list[str | int]:
    """Splits ``a.b[1].c`` into ``['a', 'b', 1, 'c']``."""
    out: list[str | int] = []
    for segment in key.split("."):
        match = _PART.fullmatch(segment)
        if match is None:
            raise WorkbenchError(f"{key}: not a dotted config key")
        out.append(match[1])
        out.extend(int(index) for index in re.findall(r"\[(\d+)\]", match[2]))
    return out


def _name(path: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _walk(config: Any, key: str) -> tuple[Any, str | int]:
    """The container holding ``key``'s last part, and that part; checks every step."""
    path = parts(key)
    node = config
    for depth, part in enumerate(path):
        here = _name(path[:depth]) or "the config"
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise WorkbenchError(
                    f"{key}: {here} has no item {part} (it has {size}); "
                    "index within the list the config gives"
                )
        elif not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
            raise WorkbenchError(f"{key}: unknown config key {part!r} under {here}; known: {known}")
        if depth == len(path) - 1:
            return node, part
        node = node[part]
    raise WorkbenchError(f"{key}: an empty key")


def check_keys(config: dict, keys: list[str]) -> None:
    """Checks that every key names a value of the whole ``config``.

    Raises:
        WorkbenchError: one line naming the key and the keys known where it went wrong.
    """
    for key in keys:
        _walk(config, key)


def apply(config: dict, values: dict[str, Any]) -> dict:
    """A copy of ``config`` with each dotted key set to its value."""
    out = copy.deepcopy(config)
    for key, value in values.items():
        node, last = _walk(out, key)
        node[last] = value
    return out


def overlay(config: dict, values: dict[str, Any]) -> dict:
    """The smallest config overlay (for ``-c base.yaml -c overlay.yaml``) that sets ``values``.

    Mappings merge under the Lightning CLI, lists replace: a key that goes through a list item
    carries the whole list (with the value set) from the top-most list on its path.
    """
    applied = apply(config, values)
    out: dict = {}
    for key in values:
        path = parts(key)
        keep = path[: next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))]
        node, target = applied, out
        for depth, part in enumerate(keep):
            if "class_path" in node:  # keeps an overlay of init_args tied to its class
                target["class_path"] = node["class_path"]
            node = node[part]
            if depth == len(keep) - 1:
                target[part] = copy.deepcopy(node)
            else:
                target = target.setdefault(part, {})
    return out
