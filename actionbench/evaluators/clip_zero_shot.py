"""CLIP zero-shot judge: two prompt-ensemble classifiers per image, each with a "none" class.

Per image the judge asks two independent questions, as the paper's evaluation does:

* **action**: which of the dataset's actions is shown? Candidates are every action of the
  dataset (a prompt ensemble built from the action phrase) plus an explicit
  ``<none>`` class (standing, a plain person or animal, a blurry photo, an empty
  background), so that an image showing no clear action is not forced into one of the
  eight. ``action_ok`` is true when the argmax is the target action.
* **subject**: which of the dataset's subjects is shown? Candidates are every subject
  (prompts from the subject's display name) plus ``<none>``; ``subject_ok`` is true when
  the argmax is the target subject.

Class embeddings are the usual CLIP ensemble: every prompt is encoded and L2-normalised,
the prompts of one class are averaged and normalised again. Scores are cosine
similarities times the model's logit scale, turned into probabilities with a softmax over
the candidates. ``Judgment.detail`` records the predicted labels and the probability given
to the target.

The judge must not be the generator's own text encoder: Stable Diffusion 2.1 conditions on
OpenCLIP ViT-H-14 (laion2b), so the default is OpenAI's CLIP ViT-L/14. Its weights need
``QuickGELU``; open_clip keeps that in the architecture name, so the default is
``ViT-L-14-quickgelu`` with the ``openai`` tag. ``ViT-L-14`` + ``openai`` would load the same
weights with the wrong activation and score differently (open_clip #771); that combination
is refused with an error instead of a warning.
"""
from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import Any, ClassVar, Sequence

from actionbench.dataset import Dataset
from actionbench.errors import ActionBenchError, ConfigError
from actionbench.hashing import sha256_file, stable_hash

from actionbench.api.evaluator import Evaluator, JudgeRequest, Judgment, image_of

NONE_LABEL = "<none>"

# Prompt ensembles. Changing any of these changes the numbers: bump VERSION (see the class docstring).
ACTION_TEMPLATES: tuple[str, ...] = (
    "a photo of someone {phrase}.",
    "a photo of a person {phrase}.",
    "a picture of a figure {phrase}.",
    "a photo of an animal {phrase}.",
    "a full-body photo of someone {phrase}.",
    "an image of a character {phrase}.",
)
ACTION_NONE_PROMPTS: tuple[str, ...] = (
    "a photo of someone standing.",
    "a photo of a person.",
    "a photo of an animal.",
    "a blurry photo.",
    "an empty background.",
    "a close-up photo of a face.",
)
SUBJECT_TEMPLATES: tuple[str, ...] = (
    "a photo of {name}.",
    "a picture of {name}.",
    "a full-body photo of {name}.",
    "an image of {name}.",
)
SUBJECT_NONE_PROMPTS: tuple[str, ...] = (
    "a blurry photo.",
    "an empty background.",
    "a photo of an object.",
    "an abstract pattern.",
    "a photo of a crowd of people.",
)

# SD 2.1's text encoder: judging its images with the same CLIP would grade the generator with its own ruler.
GENERATOR_TEXT_ENCODERS = {("ViT-H-14", "laion2b_s32b_b79k")}


class CLIPZeroShotJudge(Evaluator):
    """Zero-shot open_clip judge with prompt ensembles and a "none of these" class.

    Options (keyword arguments, also ``--judge-option k=v``):
        model: open_clip architecture name (default ``ViT-L-14-quickgelu``).
        pretrained: open_clip tag (default ``openai``) or the path of a local weights file.
        batch_size: images encoded per forward pass (default 16); does not change results.
        device: torch device (default ``cpu``).

    Versioning rule: ``VERSION`` is part of every result and of the run folder's judgment
    key, and the leaderboard never ranks rows judged by different versions against each
    other. Bump it whenever a judgment could change: any prompt template or "none" prompt,
    the ensembling or decision rule (argmax, the "none" class), the default model or tag,
    or image preprocessing. Pure refactors, batching and speed-ups keep the version. A
    non-default ``model``/``pretrained`` needs no bump: it is recorded by ``describe()`` in
    every result, and the leaderboard groups rows by judge name, version and model.
    """

    name: ClassVar[str] = "clip"
    reads_subject_words: ClassVar[bool] = True  # the subject head is CLIP prompts of the subject's words
    VERSION: ClassVar[str] = "1"
    DEFAULT_MODEL: ClassVar[str] = "ViT-L-14-quickgelu"
    DEFAULT_PRETRAINED: ClassVar[str | None] = "openai"

    def __init__(self, dataset: Dataset, device: str = "cpu", model: str | None = None,
                 pretrained: str | None = None, batch_size: int | str = 16, **options: Any):
        super().__init__(dataset, device=device, **options)
        self.model_name = model or self.DEFAULT_MODEL
        self.pretrained = self.DEFAULT_PRETRAINED if pretrained is None else (pretrained or None)
        try:
            self.batch_size = int(batch_size)
        except (TypeError, ValueError):
            raise ConfigError(f"judge option batch_size must be a positive integer, got {batch_size!r}") from None
        if self.batch_size < 1:
            raise ConfigError(f"judge option batch_size must be a positive integer, got {batch_size!r}")
        if options:
            raise ConfigError(
                f"unknown option(s) for judge '{self.name}': {', '.join(sorted(options))}; "
                "valid options: model, pretrained, batch_size, device"
            )
        if (self.model_name, self.pretrained) in GENERATOR_TEXT_ENCODERS:
            warnings.warn(
                f"judge model {self.model_name} ({self.pretrained}) is Stable Diffusion 2.1's own text encoder; "
                "its judgments of SD 2.1 images are biased. Use the default or another CLIP.",
                stacklevel=2,
            )
        self._model = None
        self._preprocess = None
        self._tokenizer = None
        self._logit_scale = 100.0
        self._heads: dict[str, tuple[list[str], Any]] | None = None
        self._lock = threading.Lock()
        self._pretrained_sha256: str | None = None

    # --- prompts -----------------------------------------------------------------------------

    def prompt_ensembles(self) -> dict[str, dict[str, list[str]]]:
        """The candidate classes and their prompts: ``{"action": {label: [prompts]}, "subject": {...}}``.

        Labels are action / subject ids, plus ``NONE_LABEL`` in each head.
        """
        actions = {
            a.id: [t.format(phrase=a.phrase) for t in ACTION_TEMPLATES] for a in self.dataset.actions
        }
        actions[NONE_LABEL] = list(ACTION_NONE_PROMPTS)
        subjects = {
            s.id: [t.format(name=s.name) for t in SUBJECT_TEMPLATES] for s in self.dataset.subjects
            if self.subject_class(s.id) == s.id
        }
        subjects[NONE_LABEL] = list(SUBJECT_NONE_PROMPTS)
        return {"action": actions, "subject": subjects}

    def subject_class(self, subject_id: str) -> str:
        """The subject head's class of a subject: the first subject written with the same words. The judge
        reads only the words, and a subject drawn in several prompts of your own (``--prompts``) keeps them."""
        name = self.dataset.subject(subject_id).name
        return next(s.id for s in self.dataset.subjects if s.name == name)

    def read_subject(self, labels: Sequence[str], probs, subject_id: str) -> tuple[str, float]:
        """The predicted subject (``subject_id`` itself when its class wins) and its class's probability."""
        target = self.subject_class(subject_id)
        predicted = labels[int(probs.argmax())]
        return (subject_id if predicted == target else predicted), float(probs[labels.index(target)])

    def describe(self) -> dict:
        pretrained = self.pretrained
        record = {
            "name": self.name,
            "version": self.VERSION,
            "human": self.human,
            "model": self.model_name,
            "pretrained": pretrained,
            "prompts_hash": stable_hash(self.prompt_ensembles()),
            "decision": "argmax over dataset classes + none class, per head",
        }
        if pretrained and Path(pretrained).is_file():
            # A path says nothing about its contents: record the weights' own hash.
            if self._pretrained_sha256 is None:
                self._pretrained_sha256 = sha256_file(pretrained)
            record["pretrained_sha256"] = self._pretrained_sha256
        return record

    # --- model -------------------------------------------------------------------------------

    def _open_clip(self):
        try:
            import open_clip
        except ImportError:
            raise ActionBenchError(
                f"judge '{self.name}' needs open_clip: pip install open-clip-torch "
                '(or pip install "actionbench[clip]")'
            ) from None
        return open_clip

    def check(self) -> None:
        """The model name and tag are valid and the weights are on disk (or downloaded now, once)."""
        open_clip = self._validate()
        pretrained = self.pretrained
        if pretrained and Path(pretrained).is_file():
            return
        if pretrained:
            try:
                open_clip.pretrained.download_pretrained(open_clip.get_pretrained_cfg(self.model_name, pretrained))
            except Exception as exc:  # noqa: BLE001 - offline, not cached, or a network error
                raise ActionBenchError(
                    f"judge '{self.name}' needs the CLIP weights {self.model_name} ({pretrained}), which are not on this "
                    f"machine and could not be downloaded ({type(exc).__name__}: {exc}). Download them once with network "
                    "access (they are cached), or pass --judge-option pretrained=/path/to/weights; "
                    "nothing was trained or generated"
                ) from None

    def _validate(self):
        """The open_clip module, after checking the model name and the pretrained tag (or file)."""
        open_clip = self._open_clip()
        name, pretrained = self.model_name, self.pretrained
        if name not in open_clip.list_models():
            import difflib

            close = difflib.get_close_matches(name, open_clip.list_models(), n=5)
            raise ConfigError(
                f"unknown open_clip model '{name}' for judge '{self.name}'; closest: {', '.join(close) or 'none'} "
                "(all: open_clip.list_models())"
            )
        if pretrained and not Path(pretrained).is_file():
            tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
            if not tag_cfg:
                tags = [t for m, t in open_clip.list_pretrained() if m == name]
                raise ConfigError(
                    f"pretrained '{pretrained}' is neither a file nor an open_clip tag of {name}; "
                    f"tags: {', '.join(tags) or 'none'}"
                )
            model_quick = bool(open_clip.get_model_config(name).get("quick_gelu", False))
            if bool(tag_cfg.get("quick_gelu", False)) != model_quick:
                fix = f"{name}-quickgelu" if not model_quick else name.replace("-quickgelu", "")
                raise ConfigError(
                    f"weights '{pretrained}' were trained with quick_gelu={not model_quick} but model {name} "
                    f"uses quick_gelu={model_quick}: scores would be wrong (open_clip #771); use model={fix}"
                )
        return open_clip

    def _load(self) -> None:
        """Create the open_clip model, its preprocessing and tokenizer (called once, on first use)."""
        open_clip = self._validate()
        name, pretrained = self.model_name, self.pretrained
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained,
                                                                         device=self.device)
        except Exception as exc:  # noqa: BLE001 - network, cache and format errors all end here
            raise ActionBenchError(
                f"could not load CLIP {name} ({pretrained}) for judge '{self.name}': {exc}. Download the weights "
                "once with network access (they are cached), or pass pretrained=/path/to/weights; "
                "for tests use judge 'tiny'"
            ) from exc
        self._set_model(model, preprocess, open_clip.get_tokenizer(name))

    def _set_model(self, model, preprocess, tokenizer) -> None:
        import torch

        model.eval()
        self._model, self._preprocess, self._tokenizer = model, preprocess, tokenizer
        with torch.no_grad():
            scale = getattr(model, "logit_scale", None)
            self._logit_scale = float(scale.exp().clamp(max=100.0)) if scale is not None else 100.0

    def _encode_texts(self, prompts: Sequence[str]):
        """L2-normalised text embeddings, one row per prompt (float32, on CPU)."""
        import torch

        rows = []
        with torch.no_grad():
            for start in range(0, len(prompts), 64):
                tokens = self._tokenizer(list(prompts[start : start + 64])).to(self.device)
                rows.append(self._model.encode_text(tokens).float().cpu())
        return torch.nn.functional.normalize(torch.cat(rows), dim=-1)

    def _encode_images(self, images: Sequence[Any]):
        """L2-normalised image embeddings, one row per PIL image (float32, on CPU)."""
        import torch

        with torch.no_grad():
            pixels = torch.stack([self._preprocess(im) for im in images]).to(self.device)
            return torch.nn.functional.normalize(self._model.encode_image(pixels).float().cpu(), dim=-1)

    def _ready(self) -> dict[str, tuple[list[str], Any]]:
        """Load the model and encode the class prompts, once per judge instance."""
        import torch

        with self._lock:
            if self._heads is None:
                if self._model is None:
                    self._load()
                heads = {}
                for head, classes in self.prompt_ensembles().items():
                    labels = list(classes)
                    embeddings = []
                    for label in labels:
                        prompts = self._encode_texts(classes[label])
                        embeddings.append(torch.nn.functional.normalize(prompts.mean(dim=0), dim=-1))
                    heads[head] = (labels, torch.stack(embeddings))
                self._heads = heads
        return self._heads

    # --- judging -----------------------------------------------------------------------------

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        """Judge images (paths or PIL images); one ``Judgment`` per request, in order.

        Raises:
            DatasetError: a request names an action or subject the dataset does not have.
        """
        import torch

        requests = list(requests)
        for r in requests:  # fail before any model work on a bad request
            self.dataset.action(r.action_id)
            self.dataset.subject(r.subject_id)
        if not requests:
            return []
        heads = self._ready()
        out: list[Judgment] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            features = self._encode_images([image_of(r) for r in batch])
            probs = {
                head: torch.softmax(self._logit_scale * features @ emb.T, dim=-1) for head, (_, emb) in heads.items()
            }
            for i, r in enumerate(batch):
                detail = {}
                verdict = {}
                for head, target in (("action", r.action_id), ("subject", r.subject_id)):
                    labels, _ = heads[head]
                    p = probs[head][i]
                    if head == "subject":
                        predicted, p_target = self.read_subject(labels, p, target)
                    else:
                        predicted, p_target = labels[int(torch.argmax(p))], float(p[labels.index(target)])
                    verdict[head] = predicted == target
                    detail[f"{head}_pred"] = predicted
                    detail[f"{head}_p_target"] = round(p_target, 6)
                    detail[f"{head}_p_pred"] = round(float(p.max()), 6)
                out.append(Judgment(r.unit_id, bool(verdict["action"]), bool(verdict["subject"]), detail))
        return out


# --- tiny random judge for tests -------------------------------------------------------------

TINY_MODEL_NAME = "actionbench-tiny-clip"
TINY_SEED = 0
# ~1.7M parameters, almost all in the 49408-token embedding table the CLIP tokenizer needs.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def register_tiny_model() -> str:
    """Register the tiny architecture with open_clip (idempotent); returns its name."""
    import open_clip

    if TINY_MODEL_NAME in open_clip.list_models():
        return TINY_MODEL_NAME
    from actionbench.manifest import actionbench_home
    from actionbench.io import atomic_write_text

    path = actionbench_home() / "open_clip" / f"{TINY_MODEL_NAME}.json"
    text = json.dumps(TINY_CONFIG, indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    open_clip.add_model_config(path)
    return TINY_MODEL_NAME


class TinyCLIPJudge(CLIPZeroShotJudge):
    """The same judge on a tiny, randomly initialised open_clip model (seeded): for tests only.

    Its judgments are deterministic but meaningless; it exercises every code path on a CPU in
    a fraction of a second and needs no download. Same versioning rule as ``CLIPZeroShotJudge``;
    a change to ``TINY_CONFIG`` or ``TINY_SEED`` also bumps ``VERSION``.
    """

    name: ClassVar[str] = "tiny"
    VERSION: ClassVar[str] = "1"
    DEFAULT_MODEL: ClassVar[str] = TINY_MODEL_NAME
    DEFAULT_PRETRAINED: ClassVar[str | None] = None

    def describe(self) -> dict:
        record = super().describe()
        record.update(seed=TINY_SEED, config_hash=stable_hash(TINY_CONFIG))
        return record

    def check(self) -> None:
        """Nothing to download: the tiny model is built from a seed."""

    def _load(self) -> None:
        import torch

        open_clip = self._open_clip()
        register_tiny_model()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(self.model_name, pretrained=None,
                                                                         device=self.device)
        self._set_model(model, preprocess, open_clip.get_tokenizer(self.model_name))
