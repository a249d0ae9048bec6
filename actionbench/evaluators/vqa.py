"""VQAScore-style judge: ask a vision-language model yes/no questions about each image.

VQAScore (Lin et al. 2024, "Evaluating Text-to-Visual Generation with Image-to-Text Generation";
the ``t2v_metrics`` package) scores an image against a text by asking a vision-language model
``Does this figure show '{text}'? Please answer yes or no.`` and reading the probability of "Yes".
Here, per image:

* **score of a question**: P(yes) = p(Yes) / (p(Yes) + p(No)), the model's next-token
  probabilities of the first token of the answers "Yes" and "No" right after the question,
  normalised over the two. The full-vocabulary mass p(Yes) + p(No) is recorded as well: when it is
  small the model wanted to say something else, and P(yes) means little.
* **action**: one question per dataset action, about ``"{subject name} {action phrase}"`` (the
  target subject's words, the same in every question, so the questions differ only in the action).
  The predicted action is the argmax of P(yes) (zero-shot classification over the actions);
  ``action_ok`` when it is the target action *and* its P(yes) > 0.5. The threshold stands where the
  CLIP judge has its "none of these" class: an image that shows none of the actions is not forced
  into one.
* **subject**: one question about ``"{subject name}"``; ``subject_ok`` when P(yes) > 0.5. One
  question rather than one per subject: a yes/no question already has its own "no", and it keeps
  the cost at (actions + 1) forward passes per image (9 for ActionBench).

Which weights: a hub model id needs ``revision=`` (a 40-hex commit of that repository), because a
branch such as ``main`` moves and the same name would score differently later; the repository
pins no default commit, since it could not check one without network access. A local folder
needs no revision: its files are hashed instead (read once, when the judge is made). The model,
its revision (or the folder's hash), the question template, the answers and the dtype all go into
the instance's ``VERSION`` (``1-<hash>``), so results of different settings never share a
judgments folder or a leaderboard group, and into ``describe()`` in readable form.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, ClassVar, Sequence

from actionbench.dataset import Dataset
from actionbench.errors import ActionBenchError, ConfigError
from actionbench.api.evaluator import Evaluator, JudgeRequest, Judgment, image_of
from actionbench.hashing import sha256_file, stable_hash

DEFAULT_MODEL = "Qwen/Qwen2-VL-2B-Instruct"
"""A small open VLM (2.2B parameters, Apache-2.0, about 4.5 GB in bfloat16) that transformers loads with
``AutoModelForImageTextToText``; t2v_metrics scores with the Qwen2-VL family too."""
DEFAULT_TEMPLATE = "Does this figure show '{text}'? Please answer yes or no."
"""VQAScore's question (t2v_metrics' default); ``{text}`` is replaced by the words asked about."""
ANSWERS = ("Yes", "No")
THRESHOLD = 0.5
DTYPES = ("float32", "bfloat16", "float16")
COMMIT = re.compile(r"[0-9a-f]{40}")


def verdict(p_action: dict[str, float], target_action: str, p_subject: float) -> tuple[str, bool, bool]:
    """The decision rule: (predicted action, action_ok, subject_ok) from the P(yes) of each question."""
    predicted = max(p_action, key=p_action.get)
    return predicted, predicted == target_action and p_action[target_action] > THRESHOLD, p_subject > THRESHOLD


def folder_hash(folder: Path) -> str:
    """A hash of every file in a model folder (names and contents; links are followed)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return stable_hash({str(p.relative_to(folder)): sha256_file(p) for p in files}, length=16)


class VQAJudge(Evaluator):
    """VQAScore-style yes/no questions to a vision-language model (transformers), per action and subject.

    Options (keyword arguments, also ``--judge-option k=v``):
        model: hub model id (default ``Qwen/Qwen2-VL-2B-Instruct``) or a local folder with
            ``config.json``, safetensors weights and the processor files (with a chat template).
        revision: the hub repository's commit (40 hex digits); required for a hub id, refused with a
            folder.
        template: the question, with ``{text}`` (default VQAScore's).
        dtype: float32, bfloat16 or float16 (default bfloat16 on CUDA, float32 elsewhere).
        batch_size: questions per forward pass (default 8); does not change results beyond float noise.

    Versioning: the class ``VERSION`` is bumped when the decision rule, the answers or the way the
    question is built change; an instance's ``VERSION`` adds a hash of the model, revision (or
    folder hash), template and dtype (see the module docstring).
    """

    name: ClassVar[str] = "vqa"
    reads_subject_words: ClassVar[bool] = True  # questions are the subject's words
    VERSION: ClassVar[str] = "1"

    def __init__(self, dataset: Dataset, device: str = "cpu", model: str | None = None, revision: str | None = None,
                 template: str | None = None, dtype: str | None = None, batch_size: int | str = 8, **options: Any):
        super().__init__(dataset, device=device, **options)
        if options:
            raise ConfigError(f"unknown option(s) for judge '{self.name}': {', '.join(sorted(options))}; "
                              "valid options: model, revision, template, dtype, batch_size, device")
        self.model_name = str(model or DEFAULT_MODEL)
        self.template = DEFAULT_TEMPLATE if template is None else str(template)
        if "{text}" not in self.template:
            raise ConfigError(f"judge option template must contain {{text}} (the words asked about), got "
                              f"{self.template!r}; the default is {DEFAULT_TEMPLATE!r}")
        self.dtype = dtype or ("bfloat16" if str(device).startswith("cuda") else "float32")
        if self.dtype not in DTYPES:
            raise ConfigError(f"judge option dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        try:
            self.batch_size = int(batch_size)
        except (TypeError, ValueError):
            self.batch_size = 0
        if self.batch_size < 1:
            raise ConfigError(f"judge option batch_size must be a positive integer, got {batch_size!r}")
        self.local = Path(self.model_name).is_dir()
        if not self.local and (self.model_name.startswith(("/", ".", "~")) or self.model_name.count("/") != 1):
            raise ConfigError(f"judge option model={self.model_name} is neither a folder on this machine nor a hub "
                              "model id (organisation/name); pass an existing model folder or a hub id")
        if self.local and revision:
            raise ConfigError(f"judge option revision={revision!r} names a hub commit, but model={self.model_name} "
                              "is a local folder, whose files are hashed instead; drop revision")
        if not self.local and not (revision and COMMIT.fullmatch(str(revision))):
            raise ConfigError(
                f"judge '{self.name}' needs the commit of {self.model_name} to load, so that its results never mix "
                f"with another revision's: pass --judge-option revision=<40 hex digits> (got {revision!r}; a branch "
                "such as 'main' moves). Find it on the model's page under 'Files and versions' or with "
                f"huggingface_hub.model_info('{self.model_name}').sha; or pass model=/path/to/folder")
        self.revision = None if self.local else str(revision)
        self.weights = f"sha256:{folder_hash(Path(self.model_name))}" if self.local else self.revision
        self.VERSION = f"{type(self).VERSION}-{stable_hash(self.identity())}"  # its own folder and board group
        self._model = self._processor = None
        self._answer_ids: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def identity(self) -> dict:
        """Everything that changes a judgment besides the code: hashed into the instance's version."""
        return {"model": self.model_name if not self.local else "local folder", "weights": self.weights,
                "template": self.template, "answers": list(ANSWERS), "dtype": self.dtype}

    def questions(self, subject_id: str) -> dict[str, str]:
        """The questions asked of an image made for ``subject_id``: one per action id, and ``<subject>``."""
        name = self.dataset.subject(subject_id).name
        out = {a.id: self.template.format(text=f"{name} {a.phrase}") for a in self.dataset.actions}
        out["<subject>"] = self.template.format(text=name)
        return out

    def describe(self) -> dict:
        return {"name": self.name, "version": self.VERSION, "human": self.human, "model": self.model_name,
                "pretrained": self.weights, "template": self.template, "template_hash": stable_hash(self.template),
                "answers": list(ANSWERS), "dtype": self.dtype,
                "decision": f"action: argmax P(yes) over the actions' questions and P(yes) > {THRESHOLD}; "
                            f"subject: P(yes) > {THRESHOLD}; P(yes) = p(Yes) / (p(Yes) + p(No))"}

    # --- model -------------------------------------------------------------------------------

    def _source(self) -> str:
        """The local folder to load from: the model folder, or the hub snapshot at the revision (downloaded
        now, once, when it is not in the cache)."""
        if self.local:
            folder = Path(self.model_name)
            if not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
                raise ConfigError(f"judge '{self.name}': {folder} is not a model folder (it needs config.json and "
                                  "*.safetensors weights; save one with model.save_pretrained(folder) and "
                                  "processor.save_pretrained(folder))")
            return str(folder)
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(self.model_name, revision=self.revision)
        except Exception as exc:  # noqa: BLE001 - offline, not cached, unknown repo or commit
            raise ActionBenchError(
                f"judge '{self.name}' needs the vision-language model {self.model_name} at revision {self.revision}, "
                f"which is not on this machine and could not be downloaded ({type(exc).__name__}). Download it once "
                f"with network access (huggingface-cli download {self.model_name} --revision {self.revision}), or "
                "pass --judge-option model=/path/to/folder; nothing was trained or generated"
            ) from None

    def check(self) -> None:
        """transformers can load vision-to-text models, and the weights are on disk (or downloaded now)."""
        self._checked_source()

    def _checked_source(self) -> str:
        import transformers

        if not hasattr(transformers, "AutoModelForImageTextToText"):
            raise ActionBenchError(f"judge '{self.name}' needs transformers' AutoModelForImageTextToText, which "
                                   f"transformers {transformers.__version__} lacks: pip install -U \"transformers>=4.50\"")
        return self._source()

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        source = self._checked_source()
        dtype = getattr(torch, self.dtype)
        try:
            processor = AutoProcessor.from_pretrained(source)
            model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype, use_safetensors=True)
        except Exception as exc:  # noqa: BLE001 - unsupported architecture, missing files, bad weights
            raise ActionBenchError(
                f"could not load {self.model_name} ({self.weights}) for judge '{self.name}' with "
                f"AutoModelForImageTextToText and AutoProcessor: {type(exc).__name__}: {exc}. The judge needs a "
                "vision-language model transformers supports, with safetensors weights and a processor"
            ) from exc
        if not getattr(processor, "chat_template", None):
            raise ConfigError(f"the processor of {self.model_name} has no chat template, which judge '{self.name}' "
                              "uses to put the question and the image in the model's own format; choose an "
                              "instruction-tuned (chat) model")
        processor.tokenizer.padding_side = "left"  # the answer's logits are then at the last position of every row
        self._model, self._processor = model.to(device=self.device, dtype=dtype).eval(), processor
        self._answer_ids = self._first_answer_tokens()

    def prompt(self, question: str) -> str:
        """The question and one image in the model's chat format, ending where the answer begins."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return self._processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _first_answer_tokens(self) -> tuple[int, int]:
        """The token ids that start "Yes" and "No" after the chat prompt (a space before them unless the prompt
        ends in whitespace, as a model answering after ``ASSISTANT:`` writes it)."""
        tokenizer = self._processor.tokenizer
        prompt = self.prompt(self.template.format(text="x"))
        base = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        sep = "" if prompt[-1:].isspace() else " "
        ids = []
        for answer in ANSWERS:
            full = tokenizer(prompt + sep + answer, add_special_tokens=False)["input_ids"]
            start = next((i for i, (a, b) in enumerate(zip(base, full)) if a != b), len(base))
            ids.append(full[min(start, len(full) - 1)])
        if ids[0] == ids[1]:
            raise ConfigError(f"the tokenizer of {self.model_name} starts {ANSWERS[0]!r} and {ANSWERS[1]!r} with the "
                              f"same token ({ids[0]}), so judge '{self.name}' cannot tell the answers apart")
        return ids[0], ids[1]

    def p_yes(self, rows: Sequence[tuple[Any, str]]) -> list[tuple[float, float]]:
        """(P(yes), full-vocabulary p(Yes) + p(No)) of each (PIL image, question) row."""
        import inspect

        import torch

        with self._lock:
            if self._model is None:
                self._load()
        yes, no = self._answer_ids
        extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self._model.forward).parameters else {}
        out = []
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            inputs = self._processor(images=[image for image, _ in batch], text=[self.prompt(q) for _, q in batch],
                                     return_tensors="pt", padding=True).to(self.device)
            for key, value in inputs.items():  # pixels in the model's dtype; ids and masks stay integers
                if torch.is_tensor(value) and value.is_floating_point():
                    inputs[key] = value.to(self._model.dtype)
            with torch.no_grad():
                logits = self._model(**inputs, **extra).logits[:, -1, :].float()
            pair = torch.softmax(logits[:, [yes, no]], dim=-1)[:, 0]
            mass = torch.softmax(logits, dim=-1)[:, [yes, no]].sum(dim=-1)
            out += [(float(p), float(m)) for p, m in zip(pair.cpu(), mass.cpu())]
        return out

    # --- judging -----------------------------------------------------------------------------

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        """Judge images (paths or PIL images); one ``Judgment`` per request, in order."""
        requests = list(requests)
        for r in requests:  # fail before any model work on a bad request
            self.dataset.action(r.action_id)
            self.dataset.subject(r.subject_id)
        out = []
        for r in requests:
            asked = self.questions(r.subject_id)
            image = image_of(r)
            scores = dict(zip(asked, self.p_yes([(image, q) for q in asked.values()])))
            p_action = {a: round(p, 6) for a, (p, _) in scores.items() if a != "<subject>"}
            p_subject = round(scores["<subject>"][0], 6)
            predicted, action_ok, subject_ok = verdict(p_action, r.action_id, p_subject)
            detail = {"action_pred": predicted, "action_p_target": p_action[r.action_id], "action_p_yes": p_action,
                      "subject_p_yes": p_subject, "yes_no_mass_min": round(min(m for _, m in scores.values()), 6)}
            out.append(Judgment(r.unit_id, bool(action_ok), bool(subject_ok), detail))
        return out
