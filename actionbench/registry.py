"""One registry for methods and evaluators.

Built-ins are lazy ``"module:Class"`` strings, so listing names imports no torch.
Third-party packages register through an entry-point group, and any class can be
named directly as ``package.module:Class``.
"""
from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import RegistryError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:Class"
    source: str  # "built-in" or "entry point (dist)"


def import_object(target: str):
    """Import ``package.module:Class``; errors name the target and the fix."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"'{target}' is not of the form package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(
            f"cannot import module '{module_name}' for '{target}': {exc}. "
            "Is the package installed in this environment (pip install -e PATH)?"
        ) from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistryError(f"module '{module_name}' has no attribute '{attr}' (from '{target}')") from None
    return obj


class Registry(Generic[T]):
    def __init__(self, kind: str, base_cls_path: str, group: str, builtins: dict[str, str]):
        self.kind = kind
        self.base_cls_path = base_cls_path
        self.group = group
        self._entries: dict[str, Entry] = {}
        for name, target in builtins.items():
            self.register(name, target, source="built-in")
        self._entry_points_loaded = False

    def register(self, name: str, target: str | type, source: str = "runtime") -> None:
        if isinstance(target, type):
            target = f"{target.__module__}:{target.__qualname__}"
        if name in self._entries and self._entries[name].target != target:
            raise ValueError(
                f"{self.kind} '{name}' is already registered to {self._entries[name].target} "
                f"({self._entries[name].source}); pick another name for {target}"
            )
        self._entries[name] = Entry(name, target, source)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            dist = getattr(getattr(ep, "dist", None), "name", "?")
            try:
                self.register(ep.name, ep.value, source=f"entry point ({dist})")
            except ValueError as exc:
                warnings.warn(f"ignoring {self.kind} entry point '{ep.name}' from {dist}: {exc}", stacklevel=2)

    def entries(self) -> list[Entry]:
        self._load_entry_points()
        return sorted(self._entries.values(), key=lambda e: (e.source != "built-in", e.name))

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def get(self, name: str) -> type[T]:
        """Resolve a registered name or a ``package.module:Class`` path to a class."""
        if ":" in name:
            cls = import_object(name)
        else:
            self._load_entry_points()
            if name not in self._entries:
                close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
                hint = f"; closest: {', '.join(close)}" if close else ""
                raise RegistryError(
                    f"no {self.kind} '{name}'{hint}; all: {', '.join(sorted(self._entries))}. "
                    f"A third-party {self.kind} can be named as package.module:Class."
                )
            cls = import_object(self._entries[name].target)
        base = import_object(self.base_cls_path)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise RegistryError(f"'{name}' resolves to {cls!r}, which is not a subclass of {base.__name__}")
        return cls
