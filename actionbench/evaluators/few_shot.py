"""Few-shot judge: a classifier fitted on the benchmark's own exemplars, over its actions + ``<none>``.

**What it is fitted on.** Every exemplar of every action (label: the action id) plus a
``<none>`` class of people doing other, everyday things, rendered by the synthetic world
(``actionbench.worlds.synthetic.render``: standing, walking, running, waving, lying, touching toes,
jumping, kicking, arms crossed, hands on hips, kneeling; drawn with the exemplar-only people,
never with the 23 benchmark subjects). A multinomial logistic regression (scikit-learn,
class-balanced, C=1) is fitted over the dataset's actions + ``<none>``. ``action_ok`` is true
when the predicted class is the target action, so an image showing no clear action (or
another action) is not forced into one of the eight. Flipped or cropped copies of the
exemplars would not do as negatives: they still show the action.

**Features** (option ``features``):

- ``keypoints`` (the default): the body pose and nothing else. 18 OpenPose keypoints per image
  (``actionbench/evaluators/pose_keypoints.py`` says where they come from: exact for synthetic exemplars,
  OpenPose for photos and for every judged image), made into ``actionbench.pose.pose_features``
  (neck at 0, torso length 1, hidden joints 0 with a visibility flag). People are drawn and
  photographed facing either way, so every training image also trains as its mirror image and
  a judged image's probabilities are the mean over it and its mirror image: left and right do
  not matter, the pose does. The synthetic ``<none>`` renders train as one class per everyday
  pose (no single linear boundary separates jumping from cheering and arms crossed from
  praying at once); predicting any of them means ``<none>``. An image where no person is found
  is judged ``<none>``.
- ``clip``: the L2-normalised CLIP image embedding times sqrt(dim). **Contamination-biased**:
  with 10 exemplars per action the classifier can key on context (the v1 captions show salute
  as soldiers, squat in sportswear or on yoga mats, pray in churches), so a method that copies
  the exemplars' look earns action credit, and one that removes it, as ADI means to, is
  penalised. Every result judged this way says so (``contamination_biased: true`` in
  ``describe()``), and its version is ``<VERSION>-clip``, so the two modes never share a
  judgments folder or a leaderboard ranking.

Without OpenPose's weights (offline, not downloaded) the keypoint mode cannot judge photos or
generated images: ``check()`` (run before any training) fails with an error that names
``--judge-option pose_detector=PATH``, ``pip install "actionbench[pose]"`` and
``features=clip``. It never falls back to CLIP by itself.

**Validation.** Leave-one-out over the exemplars: each exemplar is predicted by a classifier
fitted on all the other training images (without its mirror image, too). The accuracy (overall
and per action, plus the same for the ``<none>`` images) is part of ``describe()``, hence of
every result judged by it.

**Subject.** Unchanged from the zero-shot judge: the same CLIP model's subject head (the
prompt ensembles of ``CLIPZeroShotJudge`` with its ``<none>`` class), computed from the
image's CLIP embedding. A few-shot subject classifier would need images of the 23 subjects,
which the benchmark does not have; and the subject is appearance, which CLIP should see.

On ActionBench v1 (photographs) the ``<none>`` images are still the synthetic cartoons, a
domain gap (smaller for keypoints than for pixels): they teach "no clear action" rather than
realistic negatives. Pass ``none_dir=FOLDER`` (any images of people not doing the eight
actions) to use your own negatives instead; the folder's content hash is recorded.
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, ClassVar, Sequence

from actionbench.dataset import Dataset
from actionbench.errors import ActionBenchError, ConfigError, optional_import
from actionbench.api.evaluator import Evaluator, JudgeRequest, Judgment, image_of
from actionbench.pose import OPENPOSE_ANNOTATORS, mirror_pose_features, pose_features

from .clip_zero_shot import NONE_LABEL, CLIPZeroShotJudge, TinyCLIPJudge
from .pose_keypoints import BLAZEPOSE, JudgeKeypoints

NONE_IMAGE_SIZE = 256  # the synthetic exemplars' size
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FEATURES = ("keypoints", "clip")
DEFAULT_FEATURES = "keypoints"  # pose only: copying an exemplar's look earns nothing (see the module docstring)
CONTAMINATION_REASON = (
    "the action classifier is fitted on CLIP embeddings of the very exemplars the methods invert, so it can key "
    "on their backgrounds and clothes: copying an exemplar's look earns action credit, removing it is penalised"
)
POSE_ONLY_NOTE = ("the action classifier sees normalised body keypoints only (no pixels), so an exemplar's "
                  "background and clothes carry no action credit")
KEYPOINT_OPTIONS = ("pose_detector", "pose_resolution", "exemplar_pose", "pose_extractor")


def decision_label(label: str) -> str:
    """The class a training label counts for: ``<none>:walk`` (one everyday pose) counts as ``<none>``."""
    return NONE_LABEL if str(label).startswith(NONE_LABEL) else str(label)


def _int_option(name: str, value: Any, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"judge option {name} must be an integer >= {low}, got {value!r}") from None
    if number < low:
        raise ConfigError(f"judge option {name} must be an integer >= {low}, got {value!r}")
    return number


class FewShotJudge(Evaluator):
    """Logistic regression on the exemplars' body keypoints (or CLIP embeddings, marked biased); zero-shot subject.

    Options (keyword arguments):
        features: ``keypoints`` (default: normalised body keypoints, pose only) or ``clip`` (CLIP
            image embeddings; every result is marked contamination-biased).
        model: open_clip architecture (default: the clip judge's, ``ViT-L-14-quickgelu``), or
            ``tiny`` for the random tiny model of the ``tiny`` judge (tests only). Judges the
            subject in both modes, and the action with ``features=clip``.
        pretrained: open_clip tag or weights file (default: the clip judge's, ``openai``).
        C: inverse regularisation strength of the logistic regression (default 1).
        none_per_pose: synthetic ``<none>`` images per everyday pose (default 2).
        none_dir: a folder of your own ``<none>`` images instead of the synthetic ones.
        batch_size: images per forward pass (default 16).
        pose_detector: (keypoints) OpenPose body model: hub repo id (default
            ``lllyasviel/Annotators``), a folder holding ``body_pose_model.pth``, or the file; or
            ``blazepose``: MediaPipe BlazePose, offline, the optional extra ``pose-real`` (numpy<2).
        pose_resolution: (keypoints) OpenPose's detection resolution (default 512).
        exemplar_pose: (keypoints) ``auto`` (default: the exact recorded keypoints when every
            exemplar has them, else OpenPose), ``synthetic`` or ``openpose``.
        pose_extractor: (keypoints, Python only) an object whose ``keypoints_from_image(image)``
            returns 18 OpenPose points or None, used instead of OpenPose.

    Versioning: bump ``VERSION`` when the training set, the none class, the classifier, the
    features, the decision rule or the defaults change (as for the zero-shot judge). With
    ``features=clip`` an instance's version is ``VERSION + "-clip"``, with ``pose_detector=blazepose``
    ``VERSION + "-blazepose"``.
    """

    name: ClassVar[str] = "few_shot"
    reads_subject_words: ClassVar[bool] = True  # the subject head is CLIP prompts of the subject's words
    VERSION: ClassVar[str] = "2"  # 2: keypoint features by default, mirror images, the clip mode marked biased

    def __init__(self, dataset: Dataset, device: str = "cpu", model: str | None = None,
                 pretrained: str | None = None, C: float | str = 1.0, none_per_pose: int | str = 2,
                 none_dir: str | Path | None = None, batch_size: int | str = 16,
                 features: str = DEFAULT_FEATURES, pose_detector: str | None = None,
                 pose_resolution: int | str | None = None, exemplar_pose: str | None = None,
                 pose_extractor: Any = None, **options: Any):
        super().__init__(dataset, device=device, **options)
        optional_import("sklearn", "fewshot", "the few_shot judge")
        if options:
            raise ConfigError(f"unknown option(s) for judge 'few_shot': {', '.join(sorted(options))}; valid options: "
                              "features, model, pretrained, C, none_per_pose, none_dir, batch_size, "
                              + ", ".join(KEYPOINT_OPTIONS))
        if features not in FEATURES:
            raise ConfigError(f"judge option features must be one of {', '.join(FEATURES)}, got {features!r}")
        self.features = features
        pose_options = {"pose_detector": pose_detector, "pose_resolution": pose_resolution,
                        "exemplar_pose": exemplar_pose, "pose_extractor": pose_extractor}
        if features == "clip":
            given = sorted(k for k, v in pose_options.items() if v is not None)
            if given:
                raise ConfigError(f"judge option(s) {', '.join(given)} only apply to features=keypoints, "
                                  "not to features=clip")
            self.VERSION = f"{type(self).VERSION}-clip"  # its own judgments folder and leaderboard group
            self.keypoints: JudgeKeypoints | None = None
        else:
            if pose_detector == BLAZEPOSE:  # another detector: its own judgments folder and leaderboard group
                if pose_resolution is not None:
                    raise ConfigError("judge option pose_resolution applies to OpenPose, not to pose_detector=blazepose")
                self.VERSION = f"{type(self).VERSION}-blazepose"
            self.keypoints = JudgeKeypoints(
                dataset, detector=pose_detector or OPENPOSE_ANNOTATORS,
                resolution=_int_option("pose_resolution", pose_resolution or 512, 64),
                exemplar_pose=exemplar_pose or "auto", extractor=pose_extractor, device=device)
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
        self._labels: list[str] = []  # decision classes: the actions and <none>
        self._training_classes: list[str] = []  # the classifier's: <none> may be split into everyday poses
        self._validation: dict | None = None
        self._training: dict | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """The CLIP weights (subject, and action with ``features=clip``) and, for keypoints, OpenPose are here."""
        self.zero_shot.check()
        if self.keypoints is not None:
            self.keypoints.check()

    # --- training data -------------------------------------------------------------------------

    def _none_samples(self) -> tuple[list[Any], list[Any] | None, dict]:
        """The ``<none>`` training images, their synthetic renders (None for ``none_dir``), and their origin."""
        from actionbench.io import load_image

        if self.none_dir is not None:
            paths = sorted(p for p in self.none_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if len(paths) < 2:
                raise ConfigError(f"judge option none_dir: {self.none_dir} needs at least two images")
            digest = hashlib.sha256()
            for p in paths:
                digest.update(p.read_bytes())
            return [load_image(p) for p in paths], None, {"source": str(self.none_dir.resolve()), "n": len(paths),
                                                          "sha256": digest.hexdigest()}
        try:
            from actionbench.worlds import synthetic
        except ImportError as exc:  # pragma: no cover - the renderer ships with actionbench
            raise ActionBenchError(f"the few-shot judge's none class needs actionbench.worlds.synthetic ({exc}); "
                                   "pass none_dir=FOLDER with your own images instead") from exc
        poses = [p for p in synthetic.EVERYDAY_POSES if p not in {a.id for a in self.dataset.actions}]
        looks = list(synthetic.EXEMPLAR_LOOKS)
        renders = []
        for i, pose in enumerate(poses):
            for j in range(self.none_per_pose):
                look = looks[(i * self.none_per_pose + j) % len(looks)]
                renders.append(synthetic.render(look, pose, NONE_IMAGE_SIZE, seed=1000 + j))
        return [r.image for r in renders], renders, {
            "source": "actionbench.worlds.synthetic everyday poses", "poses": poses, "per_pose": self.none_per_pose,
            "n": len(renders), "renderer_version": getattr(synthetic, "RENDERER_VERSION", None)}

    def none_images(self) -> tuple[list[Any], dict]:
        """The ``<none>`` training images and a description of where they came from."""
        images, _, info = self._none_samples()
        return images, info

    def _embed(self, images: Sequence[Any]):
        import torch

        self.zero_shot._ready()
        size = self.zero_shot.batch_size
        parts = [self.zero_shot._encode_images(images[i : i + size]) for i in range(0, len(images), size)]
        unit = torch.cat(parts).numpy().astype("float64")  # L2-normalised rows (for the zero-shot subject head)
        return unit

    @staticmethod
    def _clip_features(unit):
        """Classifier input: the L2-normalised embedding times sqrt(dim), so each coordinate has about unit
        scale (the regularisation then means the same for every model width, and lbfgs converges fast)."""
        return unit * float(unit.shape[1]) ** 0.5

    @staticmethod
    def _pose_rows(keypoints: Sequence[Any]):
        """``pose_features`` of each keypoint set, and which of them show a pose at all."""
        import numpy as np

        vectors = [None if k is None else pose_features(k) for k in keypoints]
        found = np.array([v is not None for v in vectors], dtype=bool)
        rows = np.array([v for v in vectors if v is not None], dtype=np.float64)
        return rows, found

    def _training_rows(self):
        """Features and labels of every usable training image, and what was left out (no pose found)."""
        import numpy as np

        exemplars = [(action.id, ex) for action in self.dataset.actions for ex in action.exemplars]
        none_images, none_renders, none_info = self._none_samples()
        labels = [a for a, _ in exemplars] + [NONE_LABEL] * len(none_images)
        if self.keypoints is None:
            X = self._clip_features(self._embed([ex.image() for _, ex in exemplars] + none_images))
            return X, np.asarray(labels, dtype=object), len(exemplars), none_info, {}
        exemplar_keypoints = self.keypoints.of_exemplars([ex for _, ex in exemplars])
        if none_renders is None:
            none_keypoints = self.keypoints.of_images(none_images)
        else:
            # <none> is many poses, and no line separates all of them from the actions (jumping from cheering,
            # arms crossed from praying): one class per everyday pose; predicting any of them means <none>
            none_keypoints = self.keypoints.of_renders(none_renders)
            labels[len(exemplars):] = [f"{NONE_LABEL}:{r.pose}" for r in none_renders]
        X, found = self._pose_rows(exemplar_keypoints + none_keypoints)
        y = np.asarray(labels, dtype=object)
        missing = [decision_label(labels[i]) for i in np.flatnonzero(~found)]
        skipped = {label: missing.count(label) for label in sorted(set(missing))}
        kept = {decision_label(label) for label in y[found]}
        if len(kept) < 2 or NONE_LABEL not in kept:
            raise ActionBenchError("the few_shot judge found a pose in too few of its training images to fit a "
                                   f"classifier (no pose in: {skipped}); check --judge-option pose_detector")
        return X, y[found], int(found[: len(exemplars)].sum()), none_info, skipped

    # --- the classifier ------------------------------------------------------------------------

    def _new_classifier(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=5000, class_weight="balanced")

    def _with_mirrors(self, X, y):
        """Training rows, labels and image index per row: keypoints also train as their mirror image."""
        import numpy as np

        index = np.arange(len(y))
        if self.keypoints is None:
            return X, y, index
        return np.vstack([X, mirror_pose_features(X)]), np.concatenate([y, y]), np.concatenate([index, index])

    def _probabilities(self, classifier, X):
        """Probabilities of the classifier's classes; for keypoints the mean over the pose and its mirror image."""
        if self.keypoints is None:
            return classifier.predict_proba(X)
        return (classifier.predict_proba(X) + classifier.predict_proba(mirror_pose_features(X))) / 2

    def _fit_and_validate(self, X, y):
        """The classifier fitted on everything, and per training image whether leave-one-out gets it right
        (leaving out the image and its mirror image)."""
        import numpy as np

        rows, labels, image_of_row = self._with_mirrors(X, y)
        classifier = self._new_classifier().fit(rows, labels)
        correct = np.zeros(len(y), dtype=bool)
        for i in range(len(y)):
            keep = image_of_row != i
            clf = self._new_classifier()
            if set(labels[keep]) == set(labels):  # start from the full fit: the same optimum, a few iterations away
                clf.set_params(warm_start=True)
                clf.classes_ = classifier.classes_
                clf.coef_, clf.intercept_ = classifier.coef_.copy(), classifier.intercept_.copy()
            clf.fit(rows[keep], labels[keep])
            predicted = clf.classes_[int(np.argmax(self._probabilities(clf, X[i : i + 1])[0]))]
            correct[i] = decision_label(predicted) == decision_label(y[i])
        return classifier, correct

    def _fit(self) -> None:
        """Compute the training features, run leave-one-out, fit the final classifier (once)."""
        from threadpoolctl import threadpool_limits

        with self._lock:
            if self._classifier is not None:
                return
            X, y, n_exemplars, none_info, skipped = self._training_rows()
            # Small problems: BLAS threads only add overhead (10-20x slower on a busy 2-core machine).
            # threadpool_limits only reaches libraries already loaded: import scikit-learn (and scipy's BLAS) first.
            import sklearn.linear_model  # noqa: F401

            with threadpool_limits(1):
                classifier, correct = self._fit_and_validate(X, y)
            per_action = {}
            for action in self.dataset.actions:
                mask = y[:n_exemplars] == action.id
                per_action[action.id] = round(float(correct[:n_exemplars][mask].mean()), 6) if mask.any() else None
            self._validation = {
                "method": "leave-one-out: each training image predicted by a classifier fitted on all the others",
                "loo_accuracy": round(float(correct[:n_exemplars].mean()), 6),
                "loo_n": int(n_exemplars),
                "loo_per_action": per_action,
                "loo_accuracy_none": round(float(correct[n_exemplars:].mean()), 6),
                "loo_n_none": int(len(y) - n_exemplars),
            }
            self._training = {"exemplars": n_exemplars, "none": none_info}
            if self.keypoints is not None:
                self._training["no_pose_found"] = skipped  # left out of training, per class
            self._training_classes = [str(c) for c in classifier.classes_]
            self._labels = sorted({decision_label(c) for c in self._training_classes})
            self._classifier = classifier

    @property
    def validation(self) -> dict:
        self._fit()
        return dict(self._validation)

    def describe(self) -> dict:
        self._fit()
        zero = self.zero_shot.describe()
        if self.keypoints is None:
            feature_text = "L2-normalised CLIP image embedding x sqrt(dim)"
        else:
            feature_text = ("actionbench.pose.pose_features of 18 OpenPose keypoints (neck at 0, torso length 1, "
                            "hidden joints 0 + visibility flag); trained with mirror images, predicted as the mean "
                            "over the image and its mirror image; no pose found -> <none>")
        record = {
            "name": self.name,
            "version": self.VERSION,
            "human": self.human,
            "features": self.features,
            "contamination_biased": self.keypoints is None,
            "contamination": CONTAMINATION_REASON if self.keypoints is None else POSE_ONLY_NOTE,
            "model": self.model_name,
            "pretrained": zero.get("pretrained"),
            "classifier": {"type": "sklearn LogisticRegression (multinomial, class_weight=balanced)", "C": self.C,
                           "features": feature_text, "classes": self._labels,
                           "training_classes": self._training_classes},
            "training": self._training,
            "validation": self._validation,
            "subject": {"decision": "zero-shot CLIP subject head (argmax over subjects + none)",
                        "prompts_hash": zero.get("prompts_hash")},
            "decision": "action: argmax of the classifier over its classes (an everyday pose counts as none); "
                        "subject: zero-shot",
        }
        if self.keypoints is not None:
            record["keypoints"] = self.keypoints.describe()
        for key in ("pretrained_sha256", "seed", "config_hash"):
            if key in zero:
                record[f"model_{key}"] = zero[key]
        return record

    # --- judging -------------------------------------------------------------------------------

    def _action_probabilities(self, images: Sequence[Any], embeddings):
        """Per image the probabilities of the classifier's classes, and whether a pose was found (always with clip)."""
        import numpy as np
        from threadpoolctl import threadpool_limits

        if self.keypoints is None:
            with threadpool_limits(1):
                return self._probabilities(self._classifier, self._clip_features(embeddings)), np.ones(len(images), bool)
        rows, found = self._pose_rows(self.keypoints.of_images(images))
        probabilities = np.zeros((len(images), len(self._training_classes)))
        nobody = self._training_classes.index(next(c for c in self._training_classes if decision_label(c) == NONE_LABEL))
        probabilities[:, nobody] = 1.0  # nobody there: certainly no action
        if len(rows):
            with threadpool_limits(1):
                probabilities[found] = self._probabilities(self._classifier, rows)
        return probabilities, found

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        import numpy as np
        import torch

        requests = list(requests)
        for r in requests:
            self.dataset.action(r.action_id)
            self.dataset.subject(r.subject_id)
        if not requests:
            return []
        if self.keypoints is not None:
            self.keypoints.check()  # no detector: say so before fitting anything
        self._fit()
        subject_labels, subject_embeddings = self.zero_shot._ready()["subject"]
        images = [image_of(r) for r in requests]
        embeddings = self._embed(images)
        action_probs, pose_found = self._action_probabilities(images, embeddings)
        subject_probs = torch.softmax(
            self.zero_shot._logit_scale * torch.from_numpy(embeddings).float() @ subject_embeddings.T, dim=-1
        ).numpy()
        out = []
        for i, r in enumerate(requests):
            pa, ps = action_probs[i], subject_probs[i]
            action_pred = decision_label(self._training_classes[int(np.argmax(pa))])
            subject_pred, subject_p_target = self.zero_shot.read_subject(subject_labels, ps, r.subject_id)
            # an action whose exemplars all lacked a pose has no class: it is never predicted
            classes = self._training_classes
            p_target = float(pa[classes.index(r.action_id)]) if r.action_id in classes else 0.0
            detail = {
                "action_pred": action_pred,
                "action_p_target": round(p_target, 6),
                "action_p_pred": round(float(pa.max()), 6),
                "subject_pred": subject_pred,
                "subject_p_target": round(subject_p_target, 6),
                "subject_p_pred": round(float(ps.max()), 6),
            }
            if self.keypoints is not None:
                detail["pose_found"] = bool(pose_found[i])
            out.append(Judgment(r.unit_id, action_pred == r.action_id, subject_pred == r.subject_id, detail))
        return out
