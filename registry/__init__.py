"""One registry helper for everything found by name (datasets, methods, backbones, heads, losses, optimisers,
schedulers), as timm's ``register_model``: ``@DATASETS.register("name")`` on a class or factory; a second entry
under one name is an error, and an unknown name is an error that lists the known ones and the closest.

It lives outside the three packages so that the data and the method packages can both use it without importing
each other.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def closest(name: str, known) -> str | None:
    """The known name nearest to a typo (difflib's ratio >= 0.6), or None: the one "did you mean" of the project."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return match[0] if match else None


class RegistryError(KeyError):
    """An unknown or duplicate name; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is meant to be read
        return str(self.args[0])


class Registry(Generic[T]):
    """Named entries of one kind; ``kind`` is how messages call them ("dataset", "loss", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (default: its ``name`` attribute)."""

        def add(entry: T) -> T:
            self.add(name or getattr(entry, "name"), entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries and self._entries[name] is not entry:
            raise RegistryError(f"{self.kind} {name!r} is registered twice ({_where(self._entries[name])} and {_where(entry)})")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            match = closest(name, self._entries)
            hint = f" (did you mean {match!r}?)" if match else ""
            raise RegistryError(f"unknown {self.kind} {name!r}{hint}; known: {', '.join(sorted(self._entries))}") from None

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())

    def names(self) -> list[str]:
        return sorted(self._entries)


def _where(entry: Any) -> str:
    return f"{getattr(entry, '__module__', '?')}.{getattr(entry, '__qualname__', repr(entry))}"
