"""Typed view of an ActionBench dataset: actions with exemplars, subjects, protocol.

``load_dataset("v1")`` reads the versioned manifest in ``actionbench/data/actionbench-v1`` and the
images under the data root (see ``actionbench download``); ``load_dataset("synthetic")``
renders a procedural dataset of the same shape with no download.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .errors import DatasetError
from .manifest import KNOWN_VERSIONS, default_data_root, read_manifest

DEFAULT_PROMPT = "{subject} {action}"


@dataclass(frozen=True)
class Subject:
    id: str
    name: str  # how it is written in prompts, e.g. "a police officer", "Michael Jackson"
    category: str  # "human", "personality" or "animal"
    template: str | None = None
    """The prompt it is drawn with, holding ``{subject}`` and ``{action}`` (None: ``DEFAULT_PROMPT``);
    set by ``--prompts`` (``actionbench.custom``)."""

    def prompt(self, action_text: str) -> str:
        """The generation prompt: this subject's words and ``action_text`` (a method's token or phrase)."""
        return (self.template or DEFAULT_PROMPT).format(subject=self.name, action=action_text)


@dataclass(frozen=True)
class Exemplar:
    action_id: str
    index: int  # 1-based, as in the upstream file names
    path: Path
    template: str  # caption with "{}" where the action phrase goes
    oracle: Callable[[int], list] | None = field(default=None, compare=False, hash=False, repr=False)
    """For rendered worlds only: ``oracle(n)`` draws this exemplar's exact person, clothes and background in
    ``n`` everyday poses (the ideal action-different samples ADI approximates with a tuned model)."""

    def image(self):
        from .io import load_image

        return load_image(self.path)

    def caption(self, action_text: str) -> str:
        return self.template.replace("{}", action_text)


@dataclass(frozen=True)
class Action:
    """The exemplars a method learns one action from (the design's ``ActionExemplars``)."""

    id: str
    phrase: str  # plain-language verb phrase, fills "{}" in the templates
    exemplars: tuple[Exemplar, ...]

    def captions(self, action_text: str | None = None) -> list[str]:
        return [e.caption(self.phrase if action_text is None else action_text) for e in self.exemplars]


ActionExemplars = Action


@dataclass(frozen=True)
class Protocol:
    images_per_pair: int = 2
    base_seed: int = 0
    prompt_template: str = DEFAULT_PROMPT
    seed_rule: str = "(base_seed + int(sha256('{action}|{subject}|{k}')[:8], 16)) % 2**31"

    def seed(self, action_id: str, subject_id: str, k: int) -> int:
        digest = hashlib.sha256(f"{action_id}|{subject_id}|{k}".encode()).hexdigest()
        return (self.base_seed + int(digest[:8], 16)) % 2**31

    def prompt(self, subject: Subject, action_text: str) -> str:
        return self.prompt_template.format(subject=subject.name, action=action_text)


@dataclass(frozen=True)
class GenerationUnit:
    """One image to generate: stable id ``action/subject/k``."""

    action_id: str
    subject_id: str
    k: int
    seed: int
    train_seed: int | None = None
    """The training seed of the customization that draws it, in a run with several (``--train-seeds``)."""

    @property
    def id(self) -> str:
        base = f"{self.action_id}/{self.subject_id}/{self.k}"
        return base if self.train_seed is None else f"{base}@{self.train_seed}"

    @property
    def pair_key(self) -> str:
        """What a shard splits generation and judging by: the (action, subject) pair, per training seed."""
        base = f"{self.action_id}/{self.subject_id}"
        return base if self.train_seed is None else f"{base}@{self.train_seed}"


@dataclass(frozen=True)
class Dataset:
    name: str  # "v1" or "synthetic"
    actions: tuple[Action, ...]
    subjects: tuple[Subject, ...]
    protocol: Protocol
    manifest_sha256: str
    root: Path
    license: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def action(self, action_id: str) -> Action:
        for action in self.actions:
            if action.id == action_id:
                return action
        raise DatasetError(
            f"unknown action '{action_id}' in dataset {self.name}; actions: {', '.join(a.id for a in self.actions)}"
        )

    def subject(self, subject_id: str) -> Subject:
        for subject in self.subjects:
            if subject.id == subject_id:
                return subject
        raise DatasetError(
            f"unknown subject '{subject_id}' in dataset {self.name}; subjects: {', '.join(s.id for s in self.subjects)}"
        )

    def units(self, actions: Sequence[str] | None = None, subjects: Sequence[str] | None = None) -> list[GenerationUnit]:
        """All (action, subject, k) units of the protocol, in a fixed order."""
        action_ids = [a.id for a in self.actions] if actions is None else [self.action(a).id for a in actions]
        subject_ids = [s.id for s in self.subjects] if subjects is None else [self.subject(s).id for s in subjects]
        return [
            GenerationUnit(a, s, k, self.protocol.seed(a, s, k))
            for a in action_ids
            for s in subject_ids
            for k in range(self.protocol.images_per_pair)
        ]

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def to_hf(self):
        """The exemplars as a ``datasets.Dataset`` with an ``Image`` column (``pip install "actionbench[hf]"``)."""
        from .errors import optional_import

        datasets = optional_import("datasets", "hf", "Dataset.to_hf()")

        rows = {"image": [], "action": [], "phrase": [], "index": [], "template": [], "caption": []}
        for action in self.actions:
            for ex in action.exemplars:
                rows["image"].append(str(ex.path))
                rows["action"].append(action.id)
                rows["phrase"].append(action.phrase)
                rows["index"].append(ex.index)
                rows["template"].append(ex.template)
                rows["caption"].append(ex.caption(action.phrase))
        features = datasets.Features(
            {
                "image": datasets.Image(),
                "action": datasets.Value("string"),
                "phrase": datasets.Value("string"),
                "index": datasets.Value("int32"),
                "template": datasets.Value("string"),
                "caption": datasets.Value("string"),
            }
        )
        return datasets.Dataset.from_dict(rows, features=features)


def dataset_from_manifest(manifest: dict, manifest_sha256: str, root: Path, name: str) -> Dataset:
    subjects = tuple(Subject(s["id"], s["name"], s["category"]) for s in manifest["subjects"])
    actions = tuple(
        Action(
            id=a["id"],
            phrase=a["phrase"],
            exemplars=tuple(
                Exemplar(a["id"], int(e["index"]), root / e["image"], e["template"]) for e in a["exemplars"]
            ),
        )
        for a in manifest["actions"]
    )
    p = manifest.get("protocol", {})
    protocol = Protocol(
        images_per_pair=int(p.get("images_per_pair", 2)),
        base_seed=int(p.get("base_seed", 0)),
        prompt_template=p.get("prompt_template", DEFAULT_PROMPT),
        seed_rule=p.get("seed_rule", Protocol.seed_rule),
    )
    return Dataset(
        name=name,
        actions=actions,
        subjects=subjects,
        protocol=protocol,
        manifest_sha256=manifest_sha256,
        root=root,
        license=manifest.get("license", ""),
    )


def load_dataset(name: str = "v1", root: str | Path | None = None, verify: bool = False) -> Dataset:
    """Load a dataset by name: ``"v1"`` (downloaded images) or a registered one (``"synthetic"``,
    ``"mini"``: rendered, no download; see ``actionbench.api.registry.DATASETS``).

    Args:
        name: dataset version or ``"synthetic"``.
        root: where the images are; default ``$ACTIONBENCH_HOME/actionbench-<version>``.
        verify: re-hash every file against the manifest (``actionbench verify`` does the same).

    Raises:
        DatasetError: unknown version, or images missing (the message says how to download them).
    """
    if name not in KNOWN_VERSIONS:
        from .api.registry import DATASETS

        if name not in DATASETS:
            raise DatasetError(
                f"unknown dataset '{name}'; downloadable versions: {', '.join(KNOWN_VERSIONS)}; "
                f"built-in and registered: {', '.join(DATASETS.names())}"
            )
        return DATASETS.get(name)(root=root)
    manifest, digest = read_manifest(name)
    root = Path(root) if root is not None else default_data_root(name)
    dataset = dataset_from_manifest(manifest, digest, root, name)
    missing = [ex.path for a in dataset.actions for ex in a.exemplars if not ex.path.is_file()]
    if missing:
        raise DatasetError(
            f"ActionBench {name} images are missing under {root} (first: {missing[0]}); "
            f"run `actionbench download --version {name}" + (f" --root {root}`" if root != default_data_root(name) else "`")
            + " (or `--from PATH` for a local copy)"
        )
    if verify:
        from .download import verify as verify_files

        verify_files(version=name, root=root)
    return dataset
