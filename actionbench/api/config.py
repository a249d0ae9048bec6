"""Frozen settings: how images are sampled (``SamplerConfig``), what every method shares
(``MethodConfig``), and how ``--set key=value`` and presets become a config (``build_config``).

Specs are data (HELM): every field is typed, documented by the docstring under it, hashed
into the run's identity, and range-checked when the config is made, before any compute.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ..errors import ConfigError
from ..hashing import stable_hash, to_jsonable

SAMPLER_MOVES = {"num_inference_steps": "num_inference_steps", "guidance_scale": "guidance_scale",
                 "negative_prompt": "negative_prompt", "generation_batch_size": "batch_size"}
"""Method interface 1 kept these on the method config itself; interface 2 moved them into ``config.sampler``
(old name -> name there). Reading an old name still works, with a warning, until ActionBench 0.2."""


def moved_setting(name: str) -> str:
    """Where an interface-1 setting lives now: ```negative_prompt` is now `config.sampler.negative_prompt```."""
    return f"`{name}` is now `config.sampler.{SAMPLER_MOVES[name]}`"


@dataclass(frozen=True)
class SamplerConfig:
    """How an image is drawn: a diffusers solver (DDIM by default) with classifier-free guidance (every sampling
    path uses this).

    The ADI paper does not state its sampler; the defaults are Stable Diffusion 2.1's usual ones.
    """

    SOLVERS: ClassVar[tuple[str, ...]] = ("ddim", "dpmpp_2m", "unipc")

    num_inference_steps: int = 50
    """Solver steps per image."""
    solver: str = "ddim"
    """The diffusers scheduler that takes the steps: ``ddim`` (DDIMScheduler), ``dpmpp_2m`` (DPM-Solver++,
    second-order multistep: DPMSolverMultistepScheduler) or ``unipc`` (UniPCMultistepScheduler); each built from
    the backbone's own noise schedule."""
    guidance_scale: float = 7.5
    """Classifier-free guidance scale (1 or less: no guidance)."""
    negative_prompt: str = ""
    """Negative prompt for classifier-free guidance."""
    batch_size: int = 4
    """Images sampled together; the images do not depend on it (one generator per image)."""

    def replace(self, **changes: Any) -> "SamplerConfig":
        return dataclasses.replace(self, **changes)

    def key(self) -> dict:
        """What changes the images (for cache keys): everything but the batch size."""
        return {k: v for k, v in to_jsonable(self).items() if k != "batch_size"}

    def __post_init__(self):
        check_ranges(self)
        if self.solver not in self.SOLVERS:
            close = difflib.get_close_matches(str(self.solver), self.SOLVERS, n=1)
            raise ConfigError(f"SamplerConfig.solver must be one of {', '.join(self.SOLVERS)}, got {self.solver!r}"
                              + (f"; did you mean {close[0]}?" if close else "") + " e.g. --set sampler.solver=ddim")


@dataclass(frozen=True)
class MethodConfig:
    """Settings every method shares: the sampler for its images and the training seed.

    A method's own ``Config`` derives from this and adds its hyper-parameters, each with the
    docstring under it saying what it is and where its default comes from.
    """

    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """How generated images are sampled (``--set sampler.num_inference_steps=20``)."""
    seed: int = 0
    """Seed for training randomness (data order, noise, timesteps)."""

    SMOKE: ClassVar[dict] = {"sampler.num_inference_steps": 2}
    """Overrides for ``--preset smoke``: few steps, all 368 images. Subclasses extend it."""
    PRESETS: ClassVar[dict[str, dict]] = {}
    """Named settings a method documents (its controls and ablations), chosen with ``--preset NAME``."""
    FLAT_GROUPS: ClassVar[tuple[str, ...]] = ()
    """Groups of settings (nested dataclass fields) that were flat fields ``GROUP_NAME`` before they were grouped:
    recorded under those names (so the config hashes of runs made before stay the same), and accepted under them
    (``GROUP_NAME=...``, as shipped protocols and earlier records write them) as well as ``GROUP.NAME=...``."""

    def replace(self, **changes: Any) -> "MethodConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        values = to_jsonable(self)
        if not self.FLAT_GROUPS:
            return values
        flat: dict = {}
        for key, value in values.items():  # each group's settings in its place, in their order
            if key in self.FLAT_GROUPS:
                flat.update({f"{key}_{name}": v for name, v in value.items()})
            else:
                flat[key] = value
        return flat

    def hash(self) -> str:
        return stable_hash(self.to_dict())

    def __post_init__(self):
        check_ranges(self)

    def __getattr__(self, name: str):
        # Only names that are not fields reach here: an adapter written for interface 1 reading
        # ``config.negative_prompt`` keeps running for one minor version, told where the setting went.
        if name in SAMPLER_MOVES:
            warnings.warn(f"{moved_setting(name)} (method interface 2); the old name goes in ActionBench 0.2",
                          DeprecationWarning, stacklevel=2)
            return getattr(self.sampler, SAMPLER_MOVES[name])
        for group in type(self).FLAT_GROUPS:
            if name.startswith(group + "_"):
                warnings.warn(f"`{name}` is now `config.{grouped_name(type(self), name)}`", DeprecationWarning,
                              stacklevel=2)
                return getattr(getattr(self, group), name[len(group) + 1:])
        raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r}")

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Field name -> the docstring written under it (read from the source)."""
        return field_docs(cls)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in a dataclass (and its bases)."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for node, after in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if isinstance(after, ast.Expr) and isinstance(getattr(after, "value", None), ast.Constant):
                    docs[node.target.id] = str(after.value.value).strip()
    return docs


# --- range checks: made before any compute is spent ----------------------------------------------

# int fields whose name ends so must be at least 1 (a step count of 0 trains or samples nothing)
_AT_LEAST_ONE = ("steps", "batch_size", "num_inference_steps")
# float fields whose name contains one of these must be finite and > 0
_POSITIVE = ("learning_rate", "lr")


def check_ranges(config) -> None:
    """Refuse values no run can use: step counts and batch sizes below 1, NaN, learning rates that
    are not positive and finite, a negative or infinite guidance scale (an infinite threshold is fine).

    Raises:
        ConfigError: naming the field, the value and a valid example.
    """
    name = type(config).__qualname__
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        where = f"{name}.{f.name}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int) and f.name.endswith(_AT_LEAST_ONE) and value < 1:
            raise ConfigError(f"{where} must be at least 1, got {value}; e.g. --set {f.name}=10")
        if isinstance(value, int) and f.name == "seed" and not 0 <= value < 2**63:
            raise ConfigError(f"{where} must be a non-negative integer, got {value}")
        if isinstance(value, float):
            if math.isnan(value):
                raise ConfigError(f"{where} must be a number, got {value}")
            if any(part in f.name for part in _POSITIVE) and not (0 < value < math.inf):
                raise ConfigError(f"{where} must be positive and finite, got {value}; e.g. --set {f.name}=1e-4")
            if f.name == "guidance_scale" and not (0 <= value < math.inf):
                raise ConfigError(f"{where} must be at least 0, got {value}; e.g. --set sampler.guidance_scale=7.5")


# --- presets and --set ---------------------------------------------------------------------------


def smoke_overrides(config_cls: type) -> dict:
    """The ``--preset smoke`` overrides of a config class, merged over its bases."""
    merged: dict = {}
    for klass in reversed(config_cls.__mro__):
        merged.update(vars(klass).get("SMOKE", {}))
    return merged


def presets_of(config_cls: type) -> dict[str, dict]:
    """``smoke`` (every config) and the named presets a config class declares in ``PRESETS``."""
    named = {"smoke": smoke_overrides(config_cls)}
    for klass in reversed(config_cls.__mro__):
        named.update(vars(klass).get("PRESETS", {}))
    return named


def setting_names(config_cls: type, prefix: str = "") -> list[str]:
    """Every settable name, nested ones dotted (``sampler.num_inference_steps``)."""
    names = []
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        names.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            names += setting_names(hints[f.name], prefix + f.name + ".")
    return names


def build_config(config_cls: type, overrides: Mapping[str, Any] | None = None, preset: str | None = None,
                 base: Any = None):
    """Make a config from defaults (or ``base``), a preset, then ``key=value`` overrides.

    Strings are parsed by the field's type; a nested dataclass field (``sampler``) takes dotted
    keys (``sampler.num_inference_steps``). Values are range-checked (``check_ranges``).

    Raises:
        ConfigError: unknown preset or setting (with the closest names), or a value that does not
            fit its field.
    """
    values: dict[str, Any] = {}
    named = presets_of(config_cls)
    for name in [p.strip() for p in (preset or "").split(",") if p.strip()]:
        if name not in named:
            raise ConfigError(f"unknown preset '{name}' for {config_cls.__qualname__}; presets: {', '.join(named)} "
                              "(several: --preset a,b)")
        values.update(named[name])
    values.update(overrides or {})
    return _build(config_cls, values, base)


def grouped_name(config_cls: type, key: str) -> str:
    """``key`` as ``config_cls`` names it now: a ``FLAT_GROUPS`` setting's flat name becomes ``GROUP.NAME``."""
    for group in getattr(config_cls, "FLAT_GROUPS", ()):
        if key.startswith(group + "_"):
            return f"{group}.{key[len(group) + 1:]}"
    return key


def _build(config_cls: type, values: Mapping[str, Any], base: Any):
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, raw in {grouped_name(config_cls, k): v for k, v in values.items()}.items():
        head, dot, rest = key.partition(".")
        if head not in fields or (dot and not dataclasses.is_dataclass(hints[head])):
            close = difflib.get_close_matches(key, setting_names(config_cls), n=3, cutoff=0.5)
            close += [n for n in setting_names(config_cls) if n.endswith("." + key) and n not in close]
            raise ConfigError(
                f"{config_cls.__qualname__} has no setting '{key}'"
                + (f" ({moved_setting(key)})" if key in SAMPLER_MOVES and "sampler" in fields else "")
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + f" Settings: {', '.join(setting_names(config_cls))}"
            )
        if dot:
            nested.setdefault(head, {})[rest] = raw
        elif dataclasses.is_dataclass(hints[head]) and not isinstance(raw, hints[head]):
            raise ConfigError(f"{config_cls.__qualname__}.{head} is a group of settings; set its parts, e.g. "
                              f"{setting_names(hints[head], head + '.')[0]}=...")
        else:
            flat[head] = parse_value(raw, hints[head], f"{config_cls.__qualname__}.{head}")
    for head, sub in nested.items():
        start = getattr(base, head) if base is not None else None
        if start is None and head in flat:
            start = flat[head]
        flat[head] = _build(hints[head], sub, start)
    try:
        return dataclasses.replace(base, **flat) if base is not None else config_cls(**flat)
    except TypeError as exc:
        raise ConfigError(f"{config_cls.__qualname__}: {exc}") from None


def parse_value(raw: Any, annotation: Any, where: str) -> Any:
    """Parse a ``--set`` string (or check a Python value) against a field's type annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(raw, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {raw!r} fits none of {annotation}")
    if origin is typing.Literal:
        for choice in args:
            if str(choice) == str(raw):
                return choice
        raise ConfigError(f"{where} must be one of {', '.join(map(str, args))}, got {raw!r}")
    if origin in (tuple, list):
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip().startswith("[") else [p for p in raw.split(",") if p]
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where} expects a list like a,b,c or [1,2]; got {raw!r} ({exc})") from None
        if not isinstance(raw, (list, tuple)):
            raise ConfigError(f"{where} expects a list, got {raw!r}")
        item_type = args[0] if args else str
        return tuple(parse_value(v, item_type, where) for v in raw)
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} expects true or false, got {raw!r}")
    if annotation in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"{where} expects {annotation.__name__}, got {raw!r}")
        try:
            value = annotation(raw)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where} expects {annotation.__name__}, got {raw!r}") from None
        if annotation is int and isinstance(raw, float) and raw != int(raw):
            raise ConfigError(f"{where} expects int, got {raw!r}")
        if annotation is int and isinstance(raw, str) and not raw.strip().lstrip("-").isdigit():
            raise ConfigError(f"{where} expects int, got {raw!r}")
        return value
    if annotation is str:
        if not isinstance(raw, str):
            raise ConfigError(f"{where} expects a string, got {raw!r}")
        return raw
    return raw
