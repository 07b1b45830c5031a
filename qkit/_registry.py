"""Registry: name -> factory, used for initializers, models, quantizers, observers, data sets and coders.

A failed look-up raises `UnknownNameError` that lists every valid name, so a typo in a notebook parameter
tells the user what they could have written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T", bound=Callable[..., Any])


class UnknownNameError(ValueError):
    """A name that is not in a registry; the message lists the valid names."""


class Registry(Generic[T]):
    """A named collection of factories, filled with `@REG.register("name")` or `REG.register("name", fn)`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None, obj: T | None = None) -> Any:
        """Register `obj` under `name` (default: its __name__); without `obj`, return a decorator."""

        def add(fn: T) -> T:
            key = name or fn.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = fn
            return fn

        return add if obj is None else add(obj)

    def get(self, name: str) -> T:
        """The factory registered as `name`, or an `UnknownNameError` that lists the valid names."""
        if not isinstance(name, str) or name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")
        return self._entries[name]

    def resolve(self, name_or_obj: Any) -> Any:
        """Accept a registered name or an object that is already the thing itself (a class or a callable)."""
        return self.get(name_or_obj) if isinstance(name_or_obj, str) else name_or_obj

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
