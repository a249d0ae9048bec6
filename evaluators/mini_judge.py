"""The "mini" judge: an exact classifier of pose and subject for the mini world (32x32 renders).

Features: the figure is separated from the background (backgrounds of the world are constant
along each row, so the leftmost/rightmost pixels of a row give its colour), cropped to its
bounding box and resized; the silhouette, a coarse colour crop and a colour histogram of the
figure feed two multinomial logistic regressions (numpy at prediction time):

* pose: 19 classes (8 actions + 11 everyday poses); action_ok = predicted pose == target action;
* subject: the 23 subjects + "none" (the generic exemplar people); subject_ok = predicted == target.

The weights ship in ``actionbench/data/mini/judge.safetensors`` with their held-out accuracy on
fresh clean renders (``judge.json``), recorded in ``describe()``; ``fit_mini_judge`` refits them.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import Evaluator, JudgeRequest, Judgment, image_of

SIZE = 32
CROP = 16
NONE = "none"
JUDGE_WEIGHTS = "judge.safetensors"
JUDGE_META = "judge.json"


def _data_dir() -> Path:
    from actionbench.mini import DATA_DIR

    return DATA_DIR


def features(image) -> np.ndarray:
    """Feature vector of one PIL image (any size; resized to 32x32)."""
    from PIL import Image

    im = image.convert("RGB")
    if im.size != (SIZE, SIZE):
        im = im.resize((SIZE, SIZE), Image.BILINEAR)
    x = np.asarray(im, dtype=np.float32) / 255.0
    bg = 0.5 * (x[:, :1, :] + x[:, -1:, :])
    diff = np.abs(x - bg).max(axis=2)
    mask = diff > 0.2
    ys, xs = np.nonzero(mask)
    if len(ys) < 4:
        y0, y1, x0, x1 = 0, SIZE, 0, SIZE
    else:
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # square crop around the figure, so the aspect ratio (a pose cue) survives
    h, w = y1 - y0, x1 - x0
    side = max(h, w, 4)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    pad = SIZE  # the square box may stick out of the image: crop from padded copies
    box = (cx - side / 2 + pad, cy - side / 2 + pad, cx + side / 2 + pad, cy + side / 2 + pad)
    dpad = np.pad((np.clip(diff, 0, 1) * 255).astype(np.uint8), pad)
    cpad = np.pad(np.asarray(im), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    sil = np.asarray(Image.fromarray(dpad).resize((CROP, CROP), Image.BILINEAR, box=box), dtype=np.float32) / 255.0
    col = np.asarray(Image.fromarray(cpad).resize((8, 8), Image.BILINEAR, box=box), dtype=np.float32).reshape(-1) / 255.0
    fg = x[mask] if mask.sum() >= 4 else x.reshape(-1, 3)
    q = np.minimum((fg * 4).astype(int), 3)
    hist = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(np.float32)
    hist /= max(hist.sum(), 1.0)
    geo = np.array([h / SIZE, w / SIZE, h / max(w, 1)], dtype=np.float32)
    return np.concatenate([sil.reshape(-1), col, np.sqrt(hist), geo])


def _render_set(looks, poses, per_pair: int, seed_base: int):
    from actionbench.synthetic import BACKGROUNDS, render

    rng = random.Random(f"mini-judge|{seed_base}")
    bgs = list(BACKGROUNDS)
    X, P, S = [], [], []
    for look in looks:
        for pose in poses:
            for _ in range(per_pair):
                bg = bgs[rng.randrange(len(bgs))] if rng.random() < 0.5 else None
                img = render(look, pose, size=SIZE, seed=seed_base + rng.randrange(1 << 30), background=bg).image
                X.append(features(img))
                P.append(pose)
                S.append(look)
    return np.stack(X), P, S


def _subject_label(look: str) -> str:
    from actionbench.synthetic import SUBJECT_IDS

    return look if look in SUBJECT_IDS else NONE


class _Linear:
    def __init__(self, mean, scale, coef, intercept, classes):
        self.mean, self.scale, self.coef, self.intercept, self.classes = mean, scale, coef, intercept, list(classes)

    def scores(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict(self, X: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.scores(X).argmax(1)]


def _fit_linear(X, y, C: float) -> _Linear:
    from sklearn.linear_model import LogisticRegression

    mean, scale = X.mean(0), X.std(0) + 1e-3
    clf = LogisticRegression(C=C, max_iter=300)
    clf.fit((X - mean) / scale, y)
    return _Linear(mean, scale, clf.coef_, clf.intercept_, clf.classes_)


def fit_mini_judge(out: str | Path | None = None, per_pair: int = 4, heldout_per_pair: int = 2, log=print) -> dict:
    """Fit both heads on fresh renders; measure held-out accuracy on renders with other seeds; save."""
    from safetensors.numpy import save_file

    from actionbench.mini import world_looks, world_poses

    out = Path(out) if out is not None else _data_dir()
    t0 = time.time()
    looks, poses = world_looks(), world_poses()
    X, P, S = _render_set(looks, poses, per_pair, seed_base=7_000_000)
    pose_head = _fit_linear(X, P, C=0.5)
    subj_head = _fit_linear(X, [_subject_label(s) for s in S], C=0.5)
    Xh, Ph, Sh = _render_set(looks, poses, heldout_per_pair, seed_base=9_000_000)
    pose_acc = float(np.mean([a == b for a, b in zip(pose_head.predict(Xh), Ph)]))
    subj_acc = float(np.mean([a == _subject_label(b) for a, b in zip(subj_head.predict(Xh), Sh)]))
    tensors = {}
    for name, head in (("pose", pose_head), ("subject", subj_head)):
        for k in ("mean", "scale", "coef", "intercept"):
            tensors[f"{name}.{k}"] = np.ascontiguousarray(getattr(head, k), dtype=np.float32)
    meta = {
        "features": "32x32 figure mask crop 16x16 + colour crop 8x8 + 64-bin colour histogram + box shape",
        "classifier": "multinomial logistic regression (scikit-learn, C=0.5), standardised features",
        "pose_classes": list(pose_head.classes),
        "subject_classes": list(subj_head.classes),
        "train_images": len(P),
        "heldout_images": len(Ph),
        "heldout_pose_accuracy": round(pose_acc, 4),
        "heldout_subject_accuracy": round(subj_acc, 4),
        "fit_seconds": round(time.time() - t0, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / JUDGE_WEIGHTS))
    (out / JUDGE_META).write_text(json.dumps(meta, indent=2) + "\n")
    log(f"mini judge: held-out pose accuracy {pose_acc:.3f}, subject accuracy {subj_acc:.3f}")
    return meta


def load_heads(folder: str | Path | None = None):
    from safetensors.numpy import load_file

    folder = Path(folder) if folder is not None else _data_dir()
    t = load_file(str(folder / JUDGE_WEIGHTS))
    meta = json.loads((folder / JUDGE_META).read_text())
    heads = {}
    for name, classes in (("pose", meta["pose_classes"]), ("subject", meta["subject_classes"])):
        heads[name] = _Linear(t[f"{name}.mean"], t[f"{name}.scale"], t[f"{name}.coef"], t[f"{name}.intercept"], classes)
    return heads, meta


class MiniJudge(Evaluator):
    """Exact judge of the mini world: predicted pose == target action, predicted subject == target subject."""

    name = "mini"
    VERSION = "1"

    def __init__(self, dataset, device: str = "cpu", **options):
        super().__init__(dataset, device, **options)
        self._heads = None
        self._meta = None

    def _load(self):
        if self._heads is None:
            self._heads, self._meta = load_heads(self.options.get("folder"))
        return self._heads

    def predict(self, images: Sequence) -> list[tuple[str, str]]:
        heads = self._load()
        X = np.stack([features(im) for im in images])
        return list(zip(heads["pose"].predict(X), heads["subject"].predict(X)))

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        preds = self.predict([image_of(r) for r in requests])
        return [
            Judgment(r.unit_id, pose == r.action_id, subj == r.subject_id, {"pose": pose, "subject": subj})
            for r, (pose, subj) in zip(requests, preds)
        ]

    def describe(self) -> dict:
        self._load()
        out = super().describe()
        out["model"] = {k: self._meta[k] for k in ("features", "classifier", "heldout_pose_accuracy",
                                                   "heldout_subject_accuracy", "train_images", "heldout_images")}
        return out
