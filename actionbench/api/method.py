"""The method interface every approach implements, and the artifact it learns.

A method learns an action from exemplars (``customize``) and draws subjects doing it
(``generate``). Hyper-parameters live in a frozen ``Config`` dataclass per method;
what was learned lives in an ``Artifact`` folder (safetensors + JSON).
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import torch

from .config import SAMPLER_MOVES, MethodConfig, SamplerConfig, build_config, moved_setting, presets_of, setting_names  # noqa: F401 - the method API in one place
from ..errors import ArtifactError, ConfigError, RegistryError
from ..hashing import canonical_json, stable_hash, to_jsonable
from ..io import make_temp_dir

INTERFACE_VERSION = 2
"""The method interface this ActionBench implements. An adapter sets ``interface_version`` to the one it
was written for; CHANGES.md says what each version moved."""
INTERFACE_CHANGES = {
    2: "sampler settings moved under `config.sampler`: " + ", ".join(moved_setting(name) for name in SAMPLER_MOVES),
}
"""What changed for adapters in each interface version (the version that made the change -> what moved)."""
ARTIFACT_SCHEMA_VERSION = 1
ARTIFACT_JSON = "artifact.json"
TENSORS_FILE = "learned.safetensors"


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
        if (path / ARTIFACT_JSON).exists() or (path.exists() and not path.is_dir()):
            raise ArtifactError(f"artifact folder {path} already exists; delete it to customize again")
        tmp = make_temp_dir(path.parent, path.name)
        try:
            if path.is_dir():  # the method's own working folder: what it put there becomes part of the artifact
                import shutil

                for item in path.iterdir():
                    shutil.move(str(item), str(tmp / item.name))
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.tensors.items()}
            # one metadata key: safetensors writes its metadata map in an order that changes from process to
            # process, and an artifact's bytes should not
            about = {"method": self.method, "action": self.action_id, "config_hash": stable_hash(self.config),
                     "backbone": str(self.backbone.get("id"))}
            save_file(tensors, str(tmp / TENSORS_FILE), metadata={"actionbench": canonical_json(about)})
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
            if path.is_dir():
                path.rmdir()
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


def interface_notice(cls: type) -> str:
    """What an adapter written for an older method interface must change ("" when it is current).

    Raises:
        RegistryError: the adapter declares an interface newer than this ActionBench's, or no valid version.
    """
    from .. import __version__

    declared = getattr(cls, "interface_version", INTERFACE_VERSION)
    where = f"method {cls.__module__}:{cls.__qualname__}"
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        raise RegistryError(f"{where} declares interface_version = {declared!r}; set it to the method interface "
                            f"it was written for, a whole number (this ActionBench implements {INTERFACE_VERSION})")
    if declared > INTERFACE_VERSION:
        raise RegistryError(f"{where} was written for method interface {declared}, but ActionBench {__version__} "
                            f"implements interface {INTERFACE_VERSION}; upgrade ActionBench "
                            "(pip install -U actionbench), or use a release of the adapter written for "
                            f"interface {INTERFACE_VERSION}")
    if declared == INTERFACE_VERSION:
        return ""
    moved = "; ".join(f"interface {v}: {INTERFACE_CHANGES[v]}" for v in range(declared + 1, INTERFACE_VERSION + 1))
    return (f"{where} was written for method interface {declared}; ActionBench {__version__} implements "
            f"{INTERFACE_VERSION}. What moved: {moved}. The old names still work, with a DeprecationWarning, "
            f"until ActionBench 0.2: update the adapter and set interface_version = {INTERFACE_VERSION} (CHANGES.md)")


@dataclass(frozen=True)
class TableRow:
    """One row a method brings to a small world's method table (``actionbench mini table``): the method run
    with a preset and settings. A row's name is its leaderboard entry's (``mini-v2-<name>``): never rename one."""

    name: str | None = None
    """The row's name; None: the method's registry name."""
    preset: str | None = None
    """A preset of the method's Config (``--preset``)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """``--set`` settings on top of the suite's and the preset's."""
    keep_fraction_from: str | None = None
    """A control: ``random_keep_fraction`` is set to the mean kept fraction of the masks of this row's artifacts."""


TRAINING_FIELDS = {"steps_field": "train_steps", "lr_field": "learning_rate"}
"""The class attributes naming a method's training fields, and the Config field each means when not declared."""


def _looks_like(attr: str, name: str) -> bool:
    if attr == "steps_field":
        return name.endswith("steps")
    return name == "lr" or name.endswith("_lr") or "learning_rate" in name


def _declared(cls: type, attr: str) -> bool:
    """Whether a class between ``cls`` and ``Method`` sets ``attr`` itself (a value filled in by
    ``check_training_fields`` does not count: a subclass with another Config works it out again)."""
    for klass in cls.__mro__:
        if klass is Method:
            return False
        if attr in vars(klass):
            return attr not in vars(klass).get("_filled_in", ())
    return False


def check_training_fields(cls: type) -> None:
    """Resolve and check a method's ``steps_field`` and ``lr_field`` against its Config, when the class is
    defined: a declared field must be a Config field; undeclared, the convention (``train_steps``,
    ``learning_rate``) is taken where the Config has it, and None (trains nothing) where the Config has
    nothing like it.

    Raises:
        RegistryError: a declared field the Config lacks, or an undeclared one whose Config calls it
            otherwise (``max_train_steps``): a method's steps would be read as none, silently.
    """
    if not dataclasses.is_dataclass(cls.Config):
        return  # the contract check says what a Config must be
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    where = f"method {cls.__module__}:{cls.__qualname__}"
    filled_in = []
    for attr, convention in TRAINING_FIELDS.items():
        if _declared(cls, attr):
            value = getattr(cls, attr)
            if value is not None and value not in fields:
                raise RegistryError(
                    f"{where} declares {attr} = {value!r}, but its Config {cls.Config.__qualname__} has no field "
                    f"{value!r} (fields: {', '.join(sorted(fields)) or 'none'}); name the Config field that holds it, "
                    f"or set {attr} = None for a method that trains nothing")
            continue
        if convention not in fields:
            lookalikes = sorted(f for f in fields if _looks_like(attr, f))
            if lookalikes:
                raise RegistryError(
                    f"{where}: its Config {cls.Config.__qualname__} has no field {convention!r}, which plans and a "
                    f"world's protocol read unless told otherwise, but has {', '.join(lookalikes)}; declare "
                    f"{attr} = {lookalikes[0]!r} on the class (or {attr} = None if it trains nothing)")
        setattr(cls, attr, convention if convention in fields else None)
        filled_in.append(attr)
    cls._filled_in = tuple(filled_in)


def check_table_rows(cls: type) -> None:
    """A method's ``table_rows`` and ``default_table_rows`` name real presets, settings and rows.

    Raises:
        RegistryError: a row with an unknown preset or setting, two rows of one name, or a default row that is none.
    """
    where = f"method {cls.__module__}:{cls.__qualname__}"
    names = [row.name or getattr(cls, "name", None) for row in cls.table_rows]
    if len(set(names)) != len(names):
        raise RegistryError(f"{where} has two table rows named {sorted(n for n in names if names.count(n) > 1)[0]!r}; "
                            "give each row of table_rows its own name")
    if not dataclasses.is_dataclass(cls.Config):
        return
    presets, settings = presets_of(cls.Config), set(setting_names(cls.Config))
    for name, row in zip(names, cls.table_rows):
        if row.preset is not None and any(p not in presets for p in row.preset.split(",")):
            raise RegistryError(f"{where}: table row {name!r} names preset {row.preset!r}; its Config has "
                                f"{', '.join(sorted(presets))}")
        unknown = sorted(set(row.settings) - settings)
        if unknown:
            raise RegistryError(f"{where}: table row {name!r} sets {', '.join(unknown)}, not settings of its Config")
    missing = [n for n in cls.default_table_rows or () if n not in names]
    if missing:
        raise RegistryError(f"{where}: default_table_rows names {', '.join(missing)}, not among its table rows "
                            f"({', '.join(map(str, names))})")


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
    generation_cost_factor: ClassVar[float] = 1.0
    """UNet-equivalents per sampling step and image (a ControlNet adds about half a UNet)."""
    interface_version: ClassVar[int] = INTERFACE_VERSION
    """The method interface the adapter was written for (``INTERFACE_VERSION`` when it was written)."""
    steps_field: ClassVar[str | None] = "train_steps"
    """The Config field holding the number of training steps (plans, ETAs and a world's protocol read it); None:
    the method trains nothing. Undeclared, ``train_steps`` where the Config has that field, else None; a declared
    field the Config lacks is refused when the class is defined (``check_training_fields``)."""
    lr_field: ClassVar[str | None] = "learning_rate"
    """The Config field holding the learning rate of the method's training (a world's protocol tunes it); None:
    none. Resolved and checked as ``steps_field`` is."""
    table_rows: ClassVar[tuple[TableRow, ...]] = (TableRow(),)
    """The rows the method brings to a small world's table, in order: by default one, at its own settings."""
    default_table_rows: ClassVar[tuple[str, ...] | None] = None
    """The names of the ``table_rows`` a table runs when not told which, in that order; None: all of them."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        note = interface_notice(cls)
        if note:  # at the class statement: the warning points at the adapter's own file
            warnings.warn(note, FutureWarning, stacklevel=2)
        check_training_fields(cls)
        check_table_rows(cls)

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

    def training_rows(self, action) -> float:
        """An estimate of the UNet rows (forward-pass equivalents) ``customize(action)`` costs, for
        ETAs and ``--dry-run``: train steps x batch x 3 (forward and backward). Methods with other
        costs (extra rows per step, class images, per-exemplar tuning) add them."""
        steps = getattr(self.config, self.steps_field) if self.steps_field else 0
        rows = getattr(self.config, "batch_size", 1) * (2 if getattr(self.config, "with_prior_preservation", False) else 1)
        return 3.0 * steps * rows

    trained_modules: ClassVar[str] = "token embeddings only"
    """Which backbone weights a trainable copy is made of, for memory estimates: ``unet`` (all of it),
    ``unet attention`` (self- and cross-attention projections), ``unet cross-attention k/v``, or none."""

    def training_memory_bytes(self) -> int:
        """Trained weights + gradients + two AdamW moments, fp32 (an estimate for ``--dry-run``)."""
        unet = self.backbone.unet
        select = {"unet": lambda n: True,
                  "unet attention": lambda n: ".attn1." in n or ".attn2." in n,
                  "unet cross-attention k/v": lambda n: ".attn2.to_k" in n or ".attn2.to_v" in n}.get(self.trained_modules)
        if select is None:
            return 0
        count = sum(p.numel() for n, p in unet.named_parameters() if select(n))
        return 4 * 4 * count

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
