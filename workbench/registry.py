"""One generic name registry (the pattern of timm's ``_registry.py``): name -> object + metadata.

Attacks, backbones, scene kinds, corruptions and conditions each keep one :class:`Registry`,
which feeds the CLI choices, the app and the parametrized tests. Every registry has the same
duplicate policy, the same "unknown X; known: ..." message and the same filtered listing.
Torch-free, so that ``workbench.scene`` and ``workbench.render`` can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from workbench.errors import WorkbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects of one kind by unique name, each with keyword metadata; listed sorted by name.

    Duplicate policy: registering a name that is taken raises :class:`WorkbenchError`, unless it
    is the very same object with the same metadata (a no-op, so running a registration twice is
    harmless). Lookups of an unknown name raise :class:`WorkbenchError` with the one message
    ``unknown {kind} {name!r}; known: a, b, c`` (all known names, sorted); a caller that wants
    its own vocabulary (``--attacks: ...``) prefixes it.

    Args:
        kind: what an entry is, singular (``"attack"``, ``"scene kind"``); used in messages.

    Examples:
        >>> NOISES = Registry("noise")
        >>> @NOISES.register("gauss", channels=3)
        ... def gauss(x):
        ...     return x
        >>> _ = NOISES.add("none", None, channels=1)
        >>> NOISES.names(), NOISES.names(channels=3), "gauss" in NOISES
        (['gauss', 'none'], ['gauss'], True)
        >>> NOISES.get("salt")
        Traceback (most recent call last):
        ...
        workbench.errors.WorkbenchError: unknown noise 'salt'; known: gauss, none
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._metadata: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **metadata: Any) -> Callable[[T], T]:
        """Returns a decorator that adds the decorated object under ``name`` (see :meth:`add`).

        Args:
            name: the entry's unique name.
            **metadata: facts about the entry that :meth:`names` can filter on.
        """

        def decorate(obj: T) -> T:
            return self.add(name, obj, **metadata)

        return decorate

    def add(self, name: str, obj: T, **metadata: Any) -> T:
        """Adds ``obj`` under ``name`` with ``metadata`` and returns ``obj`` unchanged.

        Raises:
            WorkbenchError: ``name`` is not a non-empty string, or is taken by another object
                (or by the same object with other metadata).
        """
        if not isinstance(name, str) or not name:
            raise WorkbenchError(f"{self.kind} name: must be a non-empty string, got {name!r}")
        if name in self._entries:
            if self._entries[name] is obj and self._metadata[name] == metadata:
                return obj
            raise WorkbenchError(
                f"{self.kind} {name!r} is already registered "
                f"({_describe(self._entries[name])}); register under another name"
            )
        self._entries[name] = obj
        self._metadata[name] = dict(metadata)
        return obj

    def get(self, name: str) -> T:
        """Returns the entry ``name``.

        Raises:
            WorkbenchError: ``unknown {kind} {name!r}; known: ...`` for a name not registered.
        """
        if name not in self:
            known = ", ".join(self.names()) or "none"
            raise WorkbenchError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._entries[name]

    __getitem__ = get

    def metadata(self, name: str) -> Mapping[str, Any]:
        """Returns the read-only metadata of the entry ``name`` (raises like :meth:`get`)."""
        self.get(name)
        return MappingProxyType(self._metadata[name])

    def names(self, where: Callable[[T], bool] | None = None, **metadata: Any) -> list[str]:
        """Returns the sorted names of the entries that pass every filter.

        Args:
            where: keeps an entry when ``where(obj)`` is true.
            **metadata: keeps an entry when each of these keys is in its metadata with an
                equal value (``names(threat="linf")``).
        """
        return [
            name
            for name in sorted(self._entries)
            if (where is None or where(self._entries[name]))
            and all(
                key in self._metadata[name] and self._metadata[name][key] == value
                for key, value in metadata.items()
            )
        ]

    def items(self) -> list[tuple[str, T]]:
        """Returns ``(name, obj)`` pairs sorted by name."""
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:  # an unhashable name (a list from a spec file) is not registered
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"


def _describe(obj: object) -> str:
    """``module.qualname`` of a class or function, else the object's repr."""
    qualname = getattr(obj, "__qualname__", None)
    return f"{getattr(obj, '__module__', '?')}.{qualname}" if qualname else repr(obj)
