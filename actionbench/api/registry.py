"""One registry module: methods, judges, backbones, datasets and suites by name.

Built-ins are lazy ``"module:object"`` strings, so listing names imports no torch and the
core never imports a method, a judge or a world: it resolves them here, by exact name or a
``name:argument`` prefix (``mini:/models/my-mini``), the way open_clip resolves ``hf-hub:``.
Third-party packages register through entry-point groups (``actionbench.methods``,
``actionbench.evaluators``, ``actionbench.backbones``, ``actionbench.datasets``,
``actionbench.suites``), and a method or judge can be named directly as ``package.module:Class``.
"""
from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..errors import RegistryError

# --- the built-in tables ----------------------------------------------------------------------

BUILTIN_METHODS = {
    # in the order of a method table's rows (a small world's table and its protocol list methods this way)
    "null": "actionbench.methods.null:NullIdentifier",
    "sd": "actionbench.methods.sd:TextOnlySD",
    "controlnet": "actionbench.methods.controlnet:ControlNetPose",
    "textual_inversion": "actionbench.methods.textual_inversion:TextualInversion",
    "p_plus": "actionbench.methods.p_plus:PPlus",
    "reversion": "actionbench.methods.reversion:ReVersion",
    "dreambooth": "actionbench.methods.dreambooth:DreamBooth",
    "custom_diffusion": "actionbench.methods.custom_diffusion:CustomDiffusion",
    "adi": "actionbench.methods.adi:ADI",
}
BUILTIN_JUDGES = {
    "clip": "actionbench.evaluators.clip_zero_shot:CLIPZeroShotJudge",
    "tiny": "actionbench.evaluators.clip_zero_shot:TinyCLIPJudge",
    "few_shot": "actionbench.evaluators.few_shot:FewShotJudge",
    "human": "actionbench.evaluators.human:HumanJudge",
    "vqa": "actionbench.evaluators.vqa:VQAJudge",
}
BUILTIN_BACKBONES = {
    # name -> loader(name) returning an ``actionbench.backbone.Backbone``; hub ids, ``hf:`` and
    # ``local:`` are resolved by ``actionbench.backbone`` itself.
    "tiny": "actionbench.backbone:load_tiny_backbone",
}
BUILTIN_DATASETS = {
    # name -> loader(root=None) returning an ``actionbench.dataset.Dataset``; the downloaded
    # versions (v1) are read from their manifests by ``actionbench.dataset`` itself.
    "synthetic": "actionbench.worlds.synthetic:load_synthetic",
}
BUILTIN_SUITES = {
    "v1": "actionbench.api.spec:V1_SUITE",
}
BUILTIN_FAMILIES = {
    # name -> "module:function": a world family that names its own versions. function(group) returns
    # {name: "module:object"} for an entry-point group; a registry calls it on its first lookup (never at import),
    # and its names are built-ins like the ones above (mini, mini-v1, ... and mini:FOLDER, mini-v2:FOLDER backbones).
    "mini": "actionbench.worlds.mini.family:entries",
}
BUILTIN_RESULT_HOOKS = {
    # name -> hook(run, evaluator, judge_key, record) that may add to a results record before it is written
    "human_agreement": "actionbench.evaluators.agreement:attach_human_agreement",
}


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:object"
    source: str  # "built-in" or "entry point (dist)"


def import_object(target: str):
    """Import ``package.module:object``; errors name the target and the fix."""
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


class Registry:
    """Names -> lazy targets of one kind (lm-evaluation-harness's ``Registry``).

    Args:
        kind: what is registered, for messages ("method", "judge", ...).
        group: the entry-point group third-party packages register under.
        builtins: name -> ``"module:object"``.
        base: ``"module:Class"`` every resolved object must subclass (None: any object).
        allow_paths: ``package.module:Class`` may be given instead of a name.
        prefixes: ``name:argument`` resolves to the entry ``name`` with an argument.
        families: family -> ``"module:function"`` adding built-ins for ``group`` on the first lookup.
    """

    def __init__(self, kind: str, group: str, builtins: dict[str, str], base: str | None = None,
                 allow_paths: bool = False, prefixes: bool = False, families: dict[str, str] | None = None):
        self.kind, self.group, self.base = kind, group, base
        self.allow_paths, self.prefixes = allow_paths, prefixes
        self.families = dict(families or {})
        self._entries: dict[str, Entry] = {}
        for name, target in builtins.items():
            self.register(name, target, source="built-in")
        self._entry_points_loaded = False

    def register(self, name: str, target: str | type, source: str = "runtime") -> None:
        if not isinstance(target, str):
            target = f"{target.__module__}:{target.__qualname__}"
        if name in self._entries and self._entries[name].target != target:
            raise ValueError(
                f"{self.kind} '{name}' is already registered to {self._entries[name].target} "
                f"({self._entries[name].source}); pick another name for {target}"
            )
        self._entries[name] = Entry(name, target, source)

    def reload_entry_points(self) -> None:
        """Read the entry points again on the next lookup (after installing a plugin)."""
        self._entries = {n: e for n, e in self._entries.items() if e.source in ("built-in", "runtime")}
        self._entry_points_loaded = False

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        try:
            for hook in self.families.values():  # before the entry points: a built-in name wins a clash, as always
                for name, target in import_object(hook)(self.group).items():
                    self.register(name, target, source="built-in")
        except Exception:
            self._entry_points_loaded = False  # a broken family fails every lookup loudly, not once then silently
            raise
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

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def lookup(self, name: str) -> tuple[Entry, str | None] | None:
        """The entry for ``name`` (and the argument of a ``name:argument`` form), or None."""
        self._load_entry_points()
        if name in self._entries:
            return self._entries[name], None
        prefix, sep, argument = name.partition(":")
        if self.prefixes and sep and prefix in self._entries:
            return self._entries[prefix], argument
        return None

    def unknown(self, name: str, hint: str = "") -> RegistryError:
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        return RegistryError(
            f"no {self.kind} '{name}'" + (f"; closest: {', '.join(close)}" if close else "")
            + f"; all: {', '.join(sorted(self._entries))}." + (f" {hint}" if hint else "")
        )

    def get(self, name: str) -> Any:
        """Resolve a registered name (or ``package.module:Class`` where allowed) to its object."""
        found = self.lookup(name)
        if found is not None and found[1] is None:
            obj = import_object(found[0].target)
        elif self.allow_paths and ":" in name:
            obj = import_object(name)
        else:
            raise self.unknown(name, f"A third-party {self.kind} can be named as package.module:Class."
                               if self.allow_paths else "")
        if self.base is not None:
            base = import_object(self.base)
            if not (isinstance(obj, type) and issubclass(obj, base)):
                raise RegistryError(f"'{name}' resolves to {obj!r}, which is not a subclass of {base.__name__}")
        return obj


METHODS = Registry("method", "actionbench.methods", BUILTIN_METHODS, base="actionbench.api.method:Method",
                   allow_paths=True)
JUDGES = Registry("judge", "actionbench.evaluators", BUILTIN_JUDGES, base="actionbench.api.evaluator:Evaluator",
                  allow_paths=True, families=BUILTIN_FAMILIES)
BACKBONES = Registry("backbone", "actionbench.backbones", BUILTIN_BACKBONES, prefixes=True, families=BUILTIN_FAMILIES)
DATASETS = Registry("dataset", "actionbench.datasets", BUILTIN_DATASETS, families=BUILTIN_FAMILIES)
SUITES = Registry("suite", "actionbench.suites", BUILTIN_SUITES, families=BUILTIN_FAMILIES)
RESULT_HOOKS = Registry("results hook", "actionbench.result_hooks", BUILTIN_RESULT_HOOKS)


def get_method(name: str):
    """The Method class for a registry name or ``package.module:Class``."""
    return METHODS.get(name)


def list_methods() -> list[Entry]:
    return METHODS.entries()


def method_classes() -> list[tuple[str, type]]:
    """Every registered method with its class: the built-ins in ``BUILTIN_METHODS``' order, then the others by
    name. A third-party method that cannot be resolved is left out with a warning, as listing treats it."""
    names = list(BUILTIN_METHODS) + sorted(n for n in METHODS.names() if n not in BUILTIN_METHODS)
    found = []
    for name in names:
        try:
            found.append((name, METHODS.get(name)))
        except RegistryError as exc:
            if name in BUILTIN_METHODS:
                raise
            warnings.warn(f"leaving out method '{name}': {exc}", stacklevel=2)
    return found


def get_evaluator(name: str):
    """The Evaluator class for a judge name or ``package.module:Class``."""
    return JUDGES.get(name)


def list_evaluators() -> list[Entry]:
    return JUDGES.entries()


def get_suite(name: str):
    """The ``actionbench.api.spec.Suite`` registered as ``name``."""
    return SUITES.get(name)
