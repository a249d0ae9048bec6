"""What a run is (``RunSpec``), how it is run (``RunOptions``), and the suites that bundle a
backbone, a dataset, a judge and their own protocol (``Suite``).

Specs are frozen data (HELM's ``RunSpec``): the method's config is the method's own frozen
dataclass, names are resolved once, and what is recorded in ``spec.json`` is derived from
them. Options never change which numbers come out, except the backbone's dtype and attention,
which the backbone fingerprint records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from typing import TYPE_CHECKING

from .config import MethodConfig, build_config
from ..errors import ConfigError
from ..hashing import stable_hash, to_jsonable

if TYPE_CHECKING:
    from ..custom import Custom


@dataclass(frozen=True)
class Suite:
    """A benchmark suite: the backbone, dataset and judge that belong together, and the suite's own
    method settings (its protocol: e.g. a small world's sampler and training steps).

    ``method_settings`` maps a method name (or ``"*"`` for every method) to ``--set``-style
    overrides applied before the preset and the user's own ``--set``; a key a method does not
    have is skipped for that method.
    """

    name: str
    backbone: str
    dataset: str
    judge: str
    description: str = ""
    method_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    protocol_note: str = ""
    """Where the suite's method settings come from (a document and the rule that chose them)."""

    def settings_for(self, method: str, config_cls: type) -> dict[str, Any]:
        from .config import grouped_name, setting_names

        names = set(setting_names(config_cls))
        merged: dict[str, Any] = {}
        for key in ("*", method):
            merged.update({grouped_name(config_cls, k): v for k, v in self.method_settings.get(key, {}).items()
                           if grouped_name(config_cls, k) in names})
        return merged


DEFAULT_JUDGE = "clip"
"""The judge of the paper's setting: a run, a suite or judged images that name none get it."""

V1_SUITE = Suite(
    name="v1",
    backbone="sd21",
    dataset="v1",
    judge=DEFAULT_JUDGE,
    description="ActionBench v1 on Stable Diffusion 2.1 with the zero-shot CLIP judge (the paper's setting)",
)


def get_suite(name: str) -> Suite:
    from .registry import SUITES

    suite = SUITES.get(name)
    if not isinstance(suite, Suite):
        raise ConfigError(f"suite '{name}' resolves to {suite!r}, not an actionbench.api.spec.Suite")
    return suite


@dataclass(frozen=True)
class RunSpec:
    """What a run is. Build it with ``RunSpec.build`` from names and ``--set`` strings."""

    method: str
    """Registry name of the method, or ``package.module:Class``."""
    config: MethodConfig
    """The method's own frozen config (suite settings, preset and overrides already applied)."""
    backbone: str = "sd21"
    """Backbone name: a registered one (tiny, mini, mini:/dir), an alias (sd21), a hub id or local:/dir."""
    dataset: str = "v1"
    """Dataset name: v1 (downloaded) or a registered one (synthetic, mini)."""
    judge: str = DEFAULT_JUDGE
    """The judge ``evaluate`` uses (a run folder can be judged again by others)."""
    suite: str | None = None
    """The suite the defaults came from, recorded with the run."""
    preset: str | None = None
    """``smoke`` or None."""
    train_seeds: int = 1
    """How many times each action is customized, with training seeds ``config.seed + i`` (``--train-seeds``)."""
    custom: "Custom | None" = None
    """Your own subjects and prompts (``--subjects``, ``--prompts``; ``actionbench.custom``), or None."""

    def __post_init__(self):
        if not (isinstance(self.train_seeds, int) and self.train_seeds >= 1):
            raise ConfigError(f"--train-seeds must be a whole number of at least 1, got {self.train_seeds!r}")

    @property
    def train_seed_values(self) -> list[int] | None:
        """The training seeds of a multi-seed run; None for a run with one (its layout has no seed level)."""
        if self.train_seeds == 1 or self.config is None:
            return None
        return [self.config.seed + i for i in range(self.train_seeds)]

    @classmethod
    def build(cls, method: str, overrides: Mapping[str, Any] | None = None, *, suite: str | None = None,
              backbone: str | None = None, dataset: str | None = None, judge: str | None = None,
              preset: str | None = None, train_seeds: int = 1, custom: "Custom | None" = None) -> "RunSpec":
        """Resolve a spec: the suite (if any) gives defaults for backbone, dataset and judge and its
        method settings; then the preset; then ``overrides`` (``--set key=value``).

        Raises:
            RegistryError: unknown method or suite (with the closest names).
            ConfigError: an override or a value out of range (before any compute).
        """
        from .registry import get_method

        method_cls = get_method(method)
        the_suite = get_suite(suite) if suite else None
        defaults = the_suite or V1_SUITE
        start = build_config(method_cls.Config, the_suite.settings_for(method_cls.name, method_cls.Config)) \
            if the_suite else None
        config = build_config(method_cls.Config, overrides, preset=preset, base=start)
        return cls(method=method, config=config, backbone=backbone or defaults.backbone,
                   dataset=dataset or defaults.dataset, judge=judge or defaults.judge, suite=suite, preset=preset,
                   train_seeds=train_seeds, custom=custom)

    @property
    def method_config(self) -> dict:
        return self.config.to_dict()

    def load_dataset(self, root: str | Path | None = None):
        """The dataset this spec runs on: its ``dataset`` with the spec's own subjects and prompts, if any."""
        from ..dataset import load_dataset

        dataset = load_dataset(self.dataset, root=root)
        return dataset if self.custom is None else self.custom.apply(dataset)

    def default_out(self) -> Path:
        """``runs/<method>-<dataset>-<backbone>-<hash>``: readable, and unique per spec."""
        tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.backbone)[-40:]
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", self.method)
        identity = {"method": self.method, "config": self.config.to_dict(), "backbone": self.backbone,
                    "dataset": self.dataset, "suite": self.suite, "preset": self.preset}
        if self.train_seeds > 1:
            identity["train_seeds"] = self.train_seeds
        if self.custom is not None:
            identity["custom"] = self.custom.identity()
        return Path("runs") / f"{name}-{self.dataset}-{tag}-{stable_hash(identity, 8)}"


DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps|xpu(:\d+)?)$")
DTYPES = ("fp32", "fp16", "bf16")
ATTENTION = ("sdpa", "classic")


@dataclass(frozen=True)
class RunOptions:
    """How a spec is run: where, split how, with which memory options. Checked when made."""

    out: Path | None = None
    """Run folder (default ``RunSpec.default_out()``)."""
    device: str = "cpu"
    """cpu, cuda, cuda:N, mps."""
    dtype: str = "fp32"
    """Weights dtype of the frozen backbone (recorded in its fingerprint)."""
    shard: tuple[int, int] = (0, 1)
    """Only the units whose id hashes to i modulo n."""
    world_size: int = 1
    """Processes sharing the run under torchrun / accelerate launch (recorded)."""
    data_root: Path | None = None
    """Where the dataset's images are (default: the cache)."""
    attention: str = "sdpa"
    """UNet attention: torch SDPA or the classic softmax(QK^T)V (recorded when not the default)."""
    vae_slicing: bool = False
    """Decode generated images one at a time."""
    gradient_checkpointing: bool = False
    """Recompute UNet activations when training."""
    judge_options: Mapping[str, Any] = field(default_factory=dict)
    """Options passed to the judge (model, pretrained weights, labels DB, ...)."""

    def __post_init__(self):
        if not DEVICE_PATTERN.match(str(self.device)):
            raise ConfigError(f"unknown device {self.device!r}; use cpu, cuda, cuda:N or mps (e.g. --device cpu)")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        if self.attention not in ATTENTION:
            raise ConfigError(f"attention must be one of {', '.join(ATTENTION)}, got {self.attention!r}")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise ConfigError(f"--shard expects i/n with 0 <= i < n, e.g. 0/2; got {i}/{n}")

    def backbone_options(self) -> dict:
        return {"attention": self.attention, "vae_slicing": self.vae_slicing,
                "gradient_checkpointing": self.gradient_checkpointing}

    def replace(self, **changes: Any) -> "RunOptions":
        import dataclasses

        return dataclasses.replace(self, **changes)


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 0-based."""
    if not text:
        return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard expects i/n with 0 <= i < n, e.g. 0/2; got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"--shard expects i/n with 0 <= i < n, e.g. 0/2; got {text!r}")
    return i, n


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["key=value", ...]`` -> dict (``--set``)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def recorded_spec(spec: RunSpec, method, dataset) -> dict:
    """The spec as written to ``spec.json``: names plus the resolved config, backbone fingerprint
    and dataset hash (what identifies the numbers)."""
    return {
        "method": spec.method,
        "method_class": f"{type(method).__module__}:{type(method).__qualname__}",
        "method_version": method.VERSION,
        "method_config": method.config.to_dict(),
        "config_hash": method.config.hash(),
        "backbone": method.backbone.fingerprint(),
        "dataset": dataset.name,
        "manifest_sha256": dataset.manifest_sha256,
        "protocol": to_jsonable(dataset.protocol),
        "suite": spec.suite,
        "preset": spec.preset,
        **({"train_seeds": spec.train_seed_values} if spec.train_seed_values else {}),
        **({"custom": spec.custom.record()} if spec.custom is not None else {}),
    }
