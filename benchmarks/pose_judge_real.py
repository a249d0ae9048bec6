"""A keypoint judge on the 80 real ActionBench photos: leave-one-out action classification with BlazePose.

    /tmp/posevenv/bin/python benchmarks/pose_judge_real.py [--root ../shared/upstream/ActionBench]

Needs the optional extra ``pose-real`` (mediapipe 0.10.21, numpy<2) in an environment of its own:
``python3 -m venv /tmp/posevenv && /tmp/posevenv/bin/pip install "mediapipe==0.10.21" "numpy<2" pillow``.
Imports only numpy, PIL, mediapipe and actionbench's pure-Python pose module (no torch).

What is measured. Each photo's 33 BlazePose landmarks become ``landmark_features`` (centred on the
hips, divided by the torso length, visibility-weighted x, y). Each photo is classified by its nearest
neighbour (Euclidean) among the other 79 photos' features and their mirror images (a pose read
left-to-right is the same action), so there is no fitted parameter to tune. A photo with no person
detected counts as wrong. Intervals: Wilson 95 % by image (assumes the 80 are independent) and a
percentile bootstrap over the 8 actions (clustered; 8 clusters is few, so it is rough).

Context. The judge sees only the 33 landmarks, never pixels, so by construction it cannot give credit
for an action's context (background, props, clothes). What is checked on photos: each photo flipped
horizontally keeps its action and is re-detected and re-classified (against the unflipped others);
the label must survive.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # actionbench's pure-Python pose module

from actionbench.pose import mirror_pose_features, pose_features  # noqa: E402
from actionbench.pose_blazepose import (  # noqa: E402
    BlazePoseExtractor,
    check_blazepose,
    landmark_features,
    mirror_landmark_features,
    openpose_keypoints,
)

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "ActionBench"


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def bootstrap_by_action(correct: np.ndarray, action: np.ndarray, reps: int = 10000, seed: int = 0):
    """Percentile 95 % interval of the pooled accuracy, resampling whole actions with replacement."""
    rng = np.random.default_rng(seed)
    groups = [correct[action == a] for a in np.unique(action)]
    sums = np.array([g.sum() for g in groups], dtype=np.float64)
    sizes = np.array([len(g) for g in groups], dtype=np.float64)
    picks = rng.integers(0, len(groups), size=(reps, len(groups)))
    stats = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nearest(X: np.ndarray, y: np.ndarray, query: np.ndarray, exclude: int, mirror) -> int:
    """Label of the nearest row of X (not row ``exclude``), also among ``mirror(X)`` when given."""
    keep = np.arange(len(X)) != exclude
    train, labels = X[keep], y[keep]
    if mirror is not None:
        train, labels = np.vstack([train, mirror(train)]), np.concatenate([labels, labels])
    return int(labels[np.argmin(((train - query) ** 2).sum(axis=1))])


def detect(extractor, image):
    t0, w0 = time.process_time(), time.perf_counter()
    landmarks = extractor.landmarks_from_image(image)
    return landmarks, time.process_time() - t0, time.perf_counter() - w0


def report(name: str, pred: np.ndarray, y: np.ndarray, actions: list[str]) -> None:
    correct = pred == y
    n, k = len(y), int(correct.sum())
    lo, hi = wilson(k, n)
    blo, bhi = bootstrap_by_action(correct.astype(np.float64), y)
    print(f"\n## {name}\n")
    print("| action | correct / photos | accuracy |\n|---|---|---|")
    for i, a in enumerate(actions):
        m = y == i
        print(f"| {a} | {int(correct[m].sum())} / {int(m.sum())} | {correct[m].mean():.0%} |")
    print(f"| **all** | {k} / {n} | **{k / n:.1%}** |")
    print(f"\n95 % interval by image (Wilson): {lo:.1%} to {hi:.1%}; by action (bootstrap over the "
          f"{len(actions)} actions, 10000 draws): {blo:.1%} to {bhi:.1%}")


def confusion(pred: np.ndarray, y: np.ndarray, actions: list[str]) -> None:
    print("\nConfusion (rows: true action, columns: predicted; 'none' = no person detected)\n")
    cols = actions + ["none"]
    print("| true \\ predicted | " + " | ".join(cols) + " |\n" + "|---" * (len(cols) + 1) + "|")
    for i, a in enumerate(actions):
        row = [int(((y == i) & (pred == j)).sum()) for j in range(len(actions))] + [int(((y == i) & (pred < 0)).sum())]
        print(f"| {a} | " + " | ".join(str(v) for v in row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of <action>/NN.jpg photos")
    parser.add_argument("--limit", type=int, default=0, help="photos per action (0: all)")
    args = parser.parse_args()
    check_blazepose()
    if not args.root.is_dir():
        sys.exit(f"--root {args.root} is not a folder; pass the upstream ActionBench photos' folder")
    from PIL import Image, ImageOps

    actions = sorted(p.name for p in args.root.iterdir() if p.is_dir() and any(p.glob("*.jpg")))
    paths, y = [], []
    for i, a in enumerate(actions):
        files = sorted((args.root / a).glob("*.jpg"))
        files = files[: args.limit] if args.limit else files
        paths += files
        y += [i] * len(files)
    y = np.array(y)
    if len(actions) < 2:
        sys.exit(f"--root {args.root} needs at least two action folders of .jpg photos")

    extractor = BlazePoseExtractor()
    extractor.landmarks_from_image(Image.new("RGB", (64, 64)))  # load the model outside the timing
    feats, flip_feats, judge_feats, cpu, wall = [], [], [], [], []
    for path in paths:
        with Image.open(path) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        landmarks, c, w = detect(extractor, image)
        cpu.append(c)
        wall.append(w)
        feats.append(None if landmarks is None else landmark_features(landmarks))
        judge_feats.append(None if landmarks is None else pose_features(openpose_keypoints(landmarks)))
        flipped, _, _ = detect(extractor, ImageOps.mirror(image))
        flip_feats.append(None if flipped is None else landmark_features(flipped))
    extractor.close()

    found = np.array([f is not None for f in feats])

    def matrix(rows) -> np.ndarray:
        size = len(next(r for r in rows if r is not None))
        # a photo with no pose is never anyone's neighbour: push it far away
        return np.vstack([r if r is not None else np.full(size, 1e9) for r in rows])

    def classify(queries, mirror, train=None) -> np.ndarray:
        X = matrix(feats if train is None else train)
        return np.array([-1 if q is None else nearest(X, y, q, i, mirror) for i, q in enumerate(queries)])

    import mediapipe as mp

    print("# BlazePose keypoint judge on the real ActionBench photos (leave-one-out, 1-nearest-neighbour)\n")
    print(f"Machine: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"mediapipe {mp.__version__} (pose_landmark_full, model_complexity=1), numpy {np.__version__}, "
          f"python {platform.python_version()}")
    print(f"Photos: {len(paths)} in {len(actions)} actions ({args.root})")
    print(f"No person detected: {int((~found).sum())} of {len(paths)} ({(~found).mean():.1%}); in the flipped "
          f"photos: {sum(f is None for f in flip_feats)} of {len(paths)}")
    print(f"CPU seconds per image (time.process_time, all of the process's threads): median "
          f"{np.median(cpu):.3f}, mean {np.mean(cpu):.3f}; wall seconds: median {np.median(wall):.3f}")

    pred = classify(feats, mirror_landmark_features)
    report("Leave-one-out accuracy (training set + its mirror images)", pred, y, actions)
    confusion(pred, y, actions)
    plain = classify(feats, None)
    report("Leave-one-out accuracy without the mirror images", plain, y, actions)
    flip = classify(flip_feats, mirror_landmark_features)
    report("Horizontally flipped photos, label kept (classified against the other photos unflipped + mirrors)",
           flip, y, actions)
    judge = classify(judge_feats, mirror_pose_features, train=judge_feats)
    report("The few_shot judge's features (pose_detector=blazepose): actionbench.pose.pose_features of the 18 "
           "OpenPose points mapped from BlazePose, 1-NN + mirrors", judge, y, actions)
    print("\nThe judge sees only the 33 landmarks, never the pixels: it cannot credit an action's context "
          "(background, props) by construction. Chance is 1 in 8 (12.5 %).")


if __name__ == "__main__":
    main()
