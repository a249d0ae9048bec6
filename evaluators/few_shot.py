"""Few-shot judge: a logistic regression on CLIP image embeddings of the benchmark's own exemplars.

**Action.** Training images are every exemplar of every action (label: the action id) plus a
``<none>`` class of people doing other, everyday things, rendered by the synthetic world
(``actionbench.worlds.synthetic.render``: standing, walking, running, waving, lying, touching toes,
jumping, kicking, arms crossed, hands on hips, kneeling; drawn with the exemplar-only people,
never with the 23 benchmark subjects). Each image is embedded with the CLIP image encoder
(L2-normalised, times sqrt(dim)) and a multinomial logistic regression (scikit-learn,
class-balanced, C=1) is fitted over the dataset's actions + ``<none>``. ``action_ok`` is true
when the predicted class is the target action, so an image showing no clear action (or
another action) is not forced into one of the eight. Flipped or cropped copies of the
exemplars would not do as negatives: they still show the action.

**Validation.** Leave-one-out over the exemplars: each exemplar is predicted by a classifier
fitted on all the other training images. The accuracy (overall and per action, plus the
same for the ``<none>`` images) is part of ``describe()``, hence of every result judged by it.

**Subject.** Unchanged from the zero-shot judge: the same CLIP model's subject head (the
prompt ensembles of ``CLIPZeroShotJudge`` with its ``<none>`` class), computed from the same
image embedding. A few-shot subject classifier would need images of the 23 subjects, which
the benchmark does not have.

On ActionBench v1 (photographs) the ``<none>`` images are still the synthetic cartoons, a
domain gap: they teach "no clear action" rather than realistic negatives. Pass
``none_dir=FOLDER`` (any images of people not doing the eight actions) to use your own
negatives instead; the folder's content hash is recorded.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, ClassVar, Sequence

from actionbench.dataset import Dataset
from actionbench.errors import ActionBenchError, ConfigError, optional_import

from actionbench.evaluator import Evaluator, JudgeRequest, Judgment, image_of
from .clip_zero_shot import NONE_LABEL, CLIPZeroShotJudge, TinyCLIPJudge

NONE_IMAGE_SIZE = 256  # the synthetic exemplars' size
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _int_option(name: str, value: Any, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"judge option {name} must be an integer >= {low}, got {value!r}") from None
    if number < low:
        raise ConfigError(f"judge option {name} must be an integer >= {low}, got {value!r}")
    return number


class FewShotJudge(Evaluator):
    """CLIP embeddings + logistic regression fitted on the exemplars (LOO-validated); zero-shot subject.

    Options (keyword arguments):
        model: open_clip architecture (default: the clip judge's, ``ViT-L-14-quickgelu``), or
            ``tiny`` for the random tiny model of the ``tiny`` judge (tests only).
        pretrained: open_clip tag or weights file (default: the clip judge's, ``openai``).
        C: inverse regularisation strength of the logistic regression (default 1).
        none_per_pose: synthetic ``<none>`` images per everyday pose (default 2).
        none_dir: a folder of your own ``<none>`` images instead of the synthetic ones.
        batch_size: images per forward pass (default 16).

    Versioning: bump ``VERSION`` when the training set, the none class, the classifier, the
    decision rule or the defaults change (as for the zero-shot judge).
    """

    name: ClassVar[str] = "few_shot"
    VERSION: ClassVar[str] = "1"

    def __init__(self, dataset: Dataset, device: str = "cpu", model: str | None = None,
                 pretrained: str | None = None, C: float | str = 1.0, none_per_pose: int | str = 2,
                 none_dir: str | Path | None = None, batch_size: int | str = 16, **options: Any):
        super().__init__(dataset, device=device, **options)
        optional_import("sklearn", "fewshot", "the few_shot judge")
        if options:
            raise ConfigError(f"unknown option(s) for judge 'few_shot': {', '.join(sorted(options))}; valid options: "
                              "model, pretrained, C, none_per_pose, none_dir, batch_size")
        try:
            self.C = float(C)
        except (TypeError, ValueError):
            raise ConfigError(f"judge option C must be a positive number, got {C!r}") from None
        if not self.C > 0:
            raise ConfigError(f"judge option C must be a positive number, got {C!r}")
        self.none_per_pose = _int_option("none_per_pose", none_per_pose, 1)
        self.none_dir = Path(none_dir) if none_dir else None
        if self.none_dir is not None and not self.none_dir.is_dir():
            raise ConfigError(f"judge option none_dir: {self.none_dir} is not a folder")
        if model == "tiny":
            self.zero_shot: CLIPZeroShotJudge = TinyCLIPJudge(dataset, device=device, batch_size=batch_size)
        else:
            self.zero_shot = CLIPZeroShotJudge(dataset, device=device, model=model, pretrained=pretrained,
                                               batch_size=batch_size)
        self.model_name = "tiny" if model == "tiny" else self.zero_shot.model_name
        self._classifier = None
        self._labels: list[str] = []
        self._validation: dict | None = None
        self._training: dict | None = None
        self._lock = threading.Lock()

    # --- training data -------------------------------------------------------------------------

    def none_images(self) -> tuple[list[Any], dict]:
        """The ``<none>`` training images and a description of where they came from."""
        from actionbench.io import load_image

        if self.none_dir is not None:
            paths = sorted(p for p in self.none_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if len(paths) < 2:
                raise ConfigError(f"judge option none_dir: {self.none_dir} needs at least two images")
            digest = hashlib.sha256()
            for p in paths:
                digest.update(p.read_bytes())
            return [load_image(p) for p in paths], {"source": str(self.none_dir.resolve()), "n": len(paths),
                                                    "sha256": digest.hexdigest()}
        try:
            from actionbench.worlds import synthetic
        except ImportError as exc:  # pragma: no cover - the renderer ships with actionbench
            raise ActionBenchError(f"the few-shot judge's none class needs actionbench.worlds.synthetic ({exc}); "
                                   "pass none_dir=FOLDER with your own images instead") from exc
        poses = [p for p in synthetic.EVERYDAY_POSES if p not in {a.id for a in self.dataset.actions}]
        looks = list(synthetic.EXEMPLAR_LOOKS)
        images = []
        for i, pose in enumerate(poses):
            for j in range(self.none_per_pose):
                look = looks[(i * self.none_per_pose + j) % len(looks)]
                images.append(synthetic.render(look, pose, NONE_IMAGE_SIZE, seed=1000 + j).image)
        return images, {"source": "actionbench.worlds.synthetic everyday poses", "poses": poses,
                        "per_pose": self.none_per_pose, "n": len(images),
                        "renderer_version": getattr(synthetic, "RENDERER_VERSION", None)}

    def _embed(self, images: Sequence[Any]):
        import torch

        self.zero_shot._ready()
        size = self.zero_shot.batch_size
        parts = [self.zero_shot._encode_images(images[i : i + size]) for i in range(0, len(images), size)]
        unit = torch.cat(parts).numpy().astype("float64")  # L2-normalised rows (for the zero-shot subject head)
        return unit

    @staticmethod
    def _features(unit):
        """Classifier input: the L2-normalised embedding times sqrt(dim), so each coordinate has about unit
        scale (the regularisation then means the same for every model width, and lbfgs converges fast)."""
        return unit * float(unit.shape[1]) ** 0.5

    def _new_classifier(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=5000, class_weight="balanced")

    def _fit_and_validate(self, X, y):
        """The classifier fitted on everything, and per training image whether leave-one-out gets it right."""
        import numpy as np

        classifier = self._new_classifier().fit(X, y)
        correct = np.zeros(len(y), dtype=bool)
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            clf = self._new_classifier()
            if set(y[keep]) == set(y):  # start from the full fit: the same optimum, a few iterations away
                clf.set_params(warm_start=True)
                clf.classes_ = classifier.classes_
                clf.coef_, clf.intercept_ = classifier.coef_.copy(), classifier.intercept_.copy()
            clf.fit(X[keep], y[keep])
            correct[i] = clf.predict(X[i : i + 1])[0] == y[i]
        return classifier, correct

    def _fit(self) -> None:
        """Embed the training images, run leave-one-out, fit the final classifier (once)."""
        import numpy as np
        from threadpoolctl import threadpool_limits

        with self._lock:
            if self._classifier is not None:
                return
            images, labels = [], []
            for action in self.dataset.actions:
                for ex in action.exemplars:
                    images.append(ex.image())
                    labels.append(action.id)
            n_exemplars = len(images)
            none, none_info = self.none_images()
            images += none
            labels += [NONE_LABEL] * len(none)
            X = self._features(self._embed(images))
            y = np.asarray(labels, dtype=object)
            # Small problems: BLAS threads only add overhead (10-20x slower on a busy 2-core machine).
            # threadpool_limits only reaches libraries already loaded: import scikit-learn (and scipy's BLAS) first.
            import sklearn.linear_model  # noqa: F401

            with threadpool_limits(1):
                classifier, correct = self._fit_and_validate(X, y)
            per_action = {}
            for action in self.dataset.actions:
                mask = y[:n_exemplars] == action.id
                per_action[action.id] = round(float(correct[:n_exemplars][mask].mean()), 6)
            self._validation = {
                "method": "leave-one-out: each training image predicted by a classifier fitted on all the others",
                "loo_accuracy": round(float(correct[:n_exemplars].mean()), 6),
                "loo_n": int(n_exemplars),
                "loo_per_action": per_action,
                "loo_accuracy_none": round(float(correct[n_exemplars:].mean()), 6),
                "loo_n_none": int(len(y) - n_exemplars),
            }
            self._training = {"exemplars": n_exemplars, "none": none_info}
            self._labels = [str(c) for c in classifier.classes_]
            self._classifier = classifier

    @property
    def validation(self) -> dict:
        self._fit()
        return dict(self._validation)

    def describe(self) -> dict:
        self._fit()
        zero = self.zero_shot.describe()
        record = {
            "name": self.name,
            "version": self.VERSION,
            "human": self.human,
            "model": self.model_name,
            "pretrained": zero.get("pretrained"),
            "classifier": {"type": "sklearn LogisticRegression (multinomial, class_weight=balanced)", "C": self.C,
                           "features": "L2-normalised CLIP image embedding x sqrt(dim)", "classes": self._labels},
            "training": self._training,
            "validation": self._validation,
            "subject": {"decision": "zero-shot CLIP subject head (argmax over subjects + none)",
                        "prompts_hash": zero.get("prompts_hash")},
            "decision": "action: argmax of the classifier over actions + none; subject: zero-shot",
        }
        for key in ("pretrained_sha256", "seed", "config_hash"):
            if key in zero:
                record[f"model_{key}"] = zero[key]
        return record

    # --- judging -------------------------------------------------------------------------------

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        import numpy as np
        import torch
        from threadpoolctl import threadpool_limits

        requests = list(requests)
        for r in requests:
            self.dataset.action(r.action_id)
            self.dataset.subject(r.subject_id)
        if not requests:
            return []
        self._fit()
        subject_labels, subject_embeddings = self.zero_shot._ready()["subject"]
        features = self._embed([image_of(r) for r in requests])
        with threadpool_limits(1):
            action_probs = self._classifier.predict_proba(self._features(features))
        subject_probs = torch.softmax(
            self.zero_shot._logit_scale * torch.from_numpy(features).float() @ subject_embeddings.T, dim=-1
        ).numpy()
        out = []
        for i, r in enumerate(requests):
            pa, ps = action_probs[i], subject_probs[i]
            action_pred = self._labels[int(np.argmax(pa))]
            subject_pred = subject_labels[int(np.argmax(ps))]
            detail = {
                "action_pred": action_pred,
                "action_p_target": round(float(pa[self._labels.index(r.action_id)]), 6),
                "action_p_pred": round(float(pa.max()), 6),
                "subject_pred": subject_pred,
                "subject_p_target": round(float(ps[subject_labels.index(r.subject_id)]), 6),
                "subject_p_pred": round(float(ps.max()), 6),
            }
            out.append(Judgment(r.unit_id, action_pred == r.action_id, subject_pred == r.subject_id, detail))
        return out
