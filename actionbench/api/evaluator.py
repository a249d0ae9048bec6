"""The judge interface: per image, is the target action shown? is the target subject shown?

Judges live in ``actionbench.evaluators`` (and in the worlds); the core knows them by name only,
through ``actionbench.api.registry.JUDGES``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

from ..dataset import Dataset


@dataclass(frozen=True)
class JudgeRequest:
    """One image to judge and what it is supposed to show."""

    unit_id: str  # "action/subject/k"
    action_id: str
    subject_id: str
    image: Any  # a path or a PIL image


@dataclass(frozen=True)
class Judgment:
    unit_id: str
    action_ok: bool
    subject_ok: bool
    detail: dict = field(default_factory=dict, compare=False)  # e.g. predicted labels, scores

    @property
    def total_ok(self) -> bool:
        return self.action_ok and self.subject_ok


class Evaluator(ABC):
    """A judge. Construct cheaply; load models on the first ``judge`` call.

    Subclasses set ``name`` (registry id) and ``VERSION``: any change to prompts, model,
    or thresholds bumps ``VERSION``, and the leaderboard never ranks rows judged by
    different versions against each other.

    ``per_image_metrics`` names booleans the judge puts in every judgment's ``detail`` that results
    summarise like action, subject and total (a mean with the same clustered interval, per action,
    per subject and per subject category), e.g. ``("leak", "total_clean")``; ``describe()`` records them.
    """

    name: ClassVar[str]
    VERSION: ClassVar[str] = "1"
    human: ClassVar[bool] = False
    per_image_metrics: ClassVar[tuple[str, ...]] = ()
    reads_subject_words: ClassVar[bool] = False
    """Whether the judge decides the subject from the subject's words (its name), as a CLIP prompt or an
    annotator does, and so can judge subjects and prompts of your own (``--subjects``, ``--prompts``).
    A judge fitted on a fixed set of subjects cannot, and refuses such a dataset when made."""

    def __init__(self, dataset: Dataset, device: str = "cpu", **options: Any):
        custom = (getattr(dataset, "extra", None) or {}).get("custom")
        if custom and not self.reads_subject_words:
            from ..custom import describe
            from ..errors import ConfigError

            raise ConfigError(f"judge '{self.name}' knows only the subjects it was made for, so it cannot judge "
                              f"{describe(custom)}; choose a judge that reads the subject's words (e.g. --judge clip)")
        self.dataset = dataset
        self.device = device
        self.options = options

    def check(self) -> None:
        """Raise now if this judge cannot run later (unknown model, weights missing and not
        downloadable): the runner calls it before the first training step, so a missing file is
        an error at start, not after hours of generation. Cheap; loads no model unless it must."""

    @abstractmethod
    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        """Judge a batch of images; returns one ``Judgment`` per request, in order."""

    def describe(self) -> dict:
        """Name, version and model identity, recorded in every result."""
        out = {"name": self.name, "version": self.VERSION, "human": self.human, "options": dict(self.options)}
        if self.per_image_metrics:  # absent otherwise, so the descriptions of older judges stay as they were
            out["per_image_metrics"] = list(self.per_image_metrics)
        return out


def image_of(request: JudgeRequest):
    from PIL import Image

    from ..io import load_image

    if isinstance(request.image, (str, Path)):
        return load_image(request.image)
    if isinstance(request.image, Image.Image):
        return request.image.convert("RGB")
    raise TypeError(f"JudgeRequest.image must be a path or a PIL image, got {type(request.image).__name__}")
