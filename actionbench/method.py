"""The method interface every approach implements, and the artifact it learns.

A method learns an action from exemplars (``customize``) and draws subjects doing it
(``generate``). Hyper-parameters live in a frozen ``Config`` dataclass per method;
what was learned lives in an ``Artifact`` folder (safetensors + JSON).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import torch

from .errors import ArtifactError, ConfigError
from .hashing import stable_hash, to_jsonable
from .io import make_temp_dir

ARTIFACT_SCHEMA_VERSION = 1
ARTIFACT_JSON = "artifact.json"
TENSORS_FILE = "learned.safetensors"


@dataclass(frozen=True)
class MethodConfig:
    """Settings every method shares: how images are sampled at generation time.

    The paper does not state its sampler settings; these are Stable Diffusion 2.1's usual ones.
    """

    num_inference_steps: int = 50
    """DDIM steps per image."""
    guidance_scale: float = 7.5
    """Classifier-free guidance scale."""
    negative_prompt: str = ""
    """Negative prompt for classifier-free guidance."""
    generation_batch_size: int = 4
    """Images sampled together; results do not depend on it (one generator per image)."""
    seed: int = 0
    """Seed for training randomness (data order, noise, timesteps)."""

    SMOKE: ClassVar[dict] = {"num_inference_steps": 2}
    """Overrides for ``--preset smoke``: few steps, all 368 images. Subclasses extend it."""

    def replace(self, **changes: Any) -> "MethodConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def hash(self) -> str:
        return stable_hash(self.to_dict())

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Field name -> the docstring written under it (read from the source)."""
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


def smoke_overrides(config_cls: type[MethodConfig]) -> dict:
    merged: dict = {}
    for klass in reversed(config_cls.__mro__):
        merged.update(getattr(klass, "SMOKE", {}) if "SMOKE" in vars(klass) else {})
    return merged


PRESETS = ("smoke",)


def build_config(
    config_cls: type[MethodConfig], overrides: Mapping[str, Any] | None = None, preset: str | None = None
) -> MethodConfig:
    """Make a config from defaults, a preset, then ``key=value`` overrides (strings are parsed by field type).

    Raises:
        ConfigError: unknown preset or field, or a value that does not fit the field's type.
    """
    values: dict[str, Any] = {}
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset '{preset}'; presets: {', '.join(PRESETS)}")
        values.update(smoke_overrides(config_cls))
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    for key, raw in (overrides or {}).items():
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, fields, n=3)
            raise ConfigError(
                f"{config_cls.__qualname__} has no setting '{key}'"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + f" Settings: {', '.join(fields)}"
            )
        values[key] = parse_value(raw, hints[key], f"{config_cls.__qualname__}.{key}")
    return config_cls(**values)


def parse_value(raw: Any, annotation: Any, where: str) -> Any:
    """Parse a ``--set`` string (or check a Python value) against a field's type annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_value(raw, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
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
        except (TypeError, ValueError):
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


@dataclass
class Artifact:
    """What a method learned for one action: tensors (safetensors) plus JSON metadata.

    ``meta`` holds anything JSON (a prompt phrase, token strings, pose-map file names);
    extra files (e.g. pose maps as PNG) may sit beside them in ``path``.
    """

    method: str
    action_id: str
    config: dict
    backbone: dict
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    method_version: str = "1"

    def save(self, path: str | Path, extra_files: Mapping[str, bytes] | None = None) -> "Artifact":
        """Write the folder atomically: everything goes to a temporary folder renamed into place."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.exists():
            raise ArtifactError(f"artifact folder {path} already exists; delete it to customize again")
        tmp = make_temp_dir(path.parent, path.name)
        try:
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.tensors.items()}
            save_file(tensors, str(tmp / TENSORS_FILE), metadata={"method": self.method, "action": self.action_id,
                                                                  "config_hash": stable_hash(self.config),
                                                                  "backbone": str(self.backbone.get("id"))})
            for name, data in (extra_files or {}).items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp / name).write_bytes(data)
            record = {
                "schema_version": ARTIFACT_SCHEMA_VERSION,
                "method": self.method,
                "method_version": self.method_version,
                "action_id": self.action_id,
                "config": self.config,
                "config_hash": stable_hash(self.config),
                "backbone": self.backbone,
                "meta": self.meta,
                "tensors": {k: list(v.shape) for k, v in tensors.items()},
            }
            (tmp / ARTIFACT_JSON).write_text(json.dumps(to_jsonable(record), indent=2) + "\n")
            tmp.rename(path)
        except BaseException:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.path = path
        return self

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "Artifact":
        """Load an artifact folder; only safetensors are read (never pickle)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        record_path = path / ARTIFACT_JSON
        if not record_path.is_file():
            raise ArtifactError(f"{path} is not an artifact folder (no {ARTIFACT_JSON}); run `actionbench customize` to make one")
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{record_path} is not valid JSON ({exc}); delete {path} and customize again") from None
        if record.get("schema_version") != ARTIFACT_SCHEMA_VERSION:
            raise ArtifactError(
                f"{record_path} has schema_version {record.get('schema_version')!r}, expected {ARTIFACT_SCHEMA_VERSION}; "
                "delete the folder and customize again with this version of actionbench"
            )
        tensor_path = path / TENSORS_FILE
        try:
            tensors = load_file(str(tensor_path), device=str(device))
        except FileNotFoundError:
            raise ArtifactError(f"{tensor_path} is missing; delete {path} and customize again") from None
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ArtifactError(
                f"{tensor_path} is not a valid safetensors file ({exc}); it may be truncated or a pickle. "
                f"Delete {path} and customize again (weights load only from safetensors)"
            ) from None
        expected = record.get("tensors", {})
        if set(expected) != set(tensors) or any(list(tensors[k].shape) != v for k, v in expected.items()):
            raise ArtifactError(f"{tensor_path} does not hold the tensors {record_path} lists; delete {path} and customize again")
        return cls(
            method=record["method"],
            action_id=record["action_id"],
            config=record["config"],
            backbone=record["backbone"],
            tensors=tensors,
            meta=record.get("meta", {}),
            path=path,
            method_version=record.get("method_version", "1"),
        )


class Method(ABC):
    """Base class of every method. Subclasses set ``name``, ``Config`` and ``VERSION``.

    Construct cheaply: the backbone is given, not loaded here. ``customize`` and ``generate``
    must not change the backbone's weights in place (fine-tuning methods train a copy).
    """

    name: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    VERSION: ClassVar[str] = "1"
    summary: ClassVar[str] = ""
    """One line for ``actionbench methods``."""
    trains: ClassVar[str] = "nothing"
    """What the method learns, for the README's method table."""

    def __init__(self, backbone, config: MethodConfig | None = None):
        self.backbone = backbone
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise ConfigError(f"{type(self).__name__} expects a {self.Config.__qualname__}, got {type(self.config).__name__}")

    @abstractmethod
    def customize(self, action, out_dir: Path) -> Artifact:
        """Learn ``action`` (an ``actionbench.dataset.Action``) and save the artifact to ``out_dir``."""

    @abstractmethod
    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        """Images (PIL) of ``subject`` doing the learned action, one per seed; same seed gives the same image."""

    def new_artifact(self, action, tensors=None, meta=None) -> Artifact:
        return Artifact(
            method=self.name,
            action_id=action.id,
            config=self.config.to_dict(),
            backbone=self.backbone.fingerprint(),
            tensors=dict(tensors or {}),
            meta=dict(meta or {}),
            method_version=self.VERSION,
        )

    def check_artifact(self, artifact: Artifact) -> None:
        if artifact.method != self.name:
            raise ArtifactError(
                f"artifact {artifact.path} was made by method '{artifact.method}', not '{self.name}'; "
                "pass the matching --method"
            )
        if artifact.backbone.get("id") != self.backbone.fingerprint().get("id"):
            raise ArtifactError(
                f"artifact {artifact.path} was learned on backbone '{artifact.backbone.get('id')}', "
                f"not '{self.backbone.id}'; generate with --backbone {artifact.backbone.get('id')}"
            )
