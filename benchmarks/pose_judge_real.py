"""A keypoint judge on the 80 real ActionBench photos: leave-one-out action classification with BlazePose.

    /tmp/posevenv/bin/python benchmarks/pose_judge_real.py [--root ../shared/upstream/ActionBench] [--context-swap]

Needs the optional extra ``pose-real`` (mediapipe 0.10.21, numpy<2) in an environment of its own:
``python3 -m venv /tmp/posevenv && /tmp/posevenv/bin/pip install "mediapipe==0.10.21" "numpy<2" pillow``.
Imports only numpy, PIL, mediapipe and actionbench's pure-Python pose module (no torch).

What is measured. Each photo's 33 BlazePose landmarks become ``landmark_features`` (centred on the
hips, divided by the torso length, visibility-weighted x, y). Each photo is classified by its nearest
neighbour (Euclidean) among the other 79 photos' features and their mirror images (a pose read
left-to-right is the same action), so there is no fitted parameter to tune. A photo with no person
detected counts as wrong. Intervals: Wilson 95 % by image (assumes the 80 are independent) and a
percentile bootstrap over the 8 actions (clustered; 8 clusters is few, so it is rough).

Context. The judge sees only the 33 landmarks, never pixels, so it should give no credit for an
action's context (background, props). Two checks on photos. Each photo flipped horizontally keeps its
action and is re-detected and re-classified (against the unflipped others): the label must survive
(invariance, not context: a flip keeps pose and context together). ``--context-swap`` builds photos that
carry one action's scene and another action's person (``_context_swap.py``: the person cut out with
BlazePose's segmentation and the hole inpainted, the other photo's person pasted in where it stood) and
counts how often the judge names the scene's action rather than the pasted pose's; the same photos with
the person removed and nothing pasted must give "no person".
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
    """Percentile 95 % interval of the pooled mean of ``correct``, resampling whole clusters (``action``: each
    value's cluster, an action or a photo) with replacement."""
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


def nearest(X: np.ndarray, y: np.ndarray, query: np.ndarray, exclude, mirror) -> int:
    """Label of the nearest row of X (not the row or rows ``exclude``), also among ``mirror(X)`` when given."""
    keep = ~np.isin(np.arange(len(X)), exclude)
    train, labels = X[keep], y[keep]
    if mirror is not None:
        train, labels = np.vstack([train, mirror(train)]), np.concatenate([labels, labels])
    return int(labels[np.argmin(((train - query) ** 2).sum(axis=1))])


def detect(extractor, image):
    t0, w0 = time.process_time(), time.perf_counter()
    landmarks = extractor.landmarks_from_image(image)
    return landmarks, time.process_time() - t0, time.perf_counter() - w0


def matrix(rows) -> np.ndarray:
    size = len(next(r for r in rows if r is not None))
    # a photo with no pose is never anyone's neighbour: push it far away
    return np.vstack([r if r is not None else np.full(size, 1e9) for r in rows])


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


def rate(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k} / {n} = {k / n:.1%} (Wilson 95 % {lo:.1%} to {hi:.1%})" if n else "0 / 0"


def context_swap(images: list, y: np.ndarray, numbers: list[str], feats: list, actions: list[str],
                 save: Path | None) -> None:
    """Scenes of one action with the person of another pasted in, and the scenes alone; see the module docstring."""
    from _context_swap import PersonSegmenter, donors, paste_person, remove_person

    X = matrix(feats)

    def predict(image, exclude) -> int:
        landmarks = extractor.landmarks_from_image(image)
        f = None if landmarks is None else landmark_features(landmarks)
        return -1 if f is None else nearest(X, y, f, exclude, mirror_landmark_features)

    segmenter, extractor = PersonSegmenter(), BlazePoseExtractor()
    masks = [segmenter.mask(image) for image in images]
    segmenter.close()
    scenes = [None if m is None else remove_person(image, m) for image, m in zip(images, masks)]
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)

    def name(i: int) -> str:
        return f"{actions[y[i]]}-{numbers[i]}"

    alone = {i: predict(scene, [i]) for i, scene in enumerate(scenes) if scene is not None}
    rows = []  # (scene's action, pasted pose's action, prediction, the donor photo's own prediction)
    for i, j in donors(y, numbers):
        if masks[i] is None or masks[j] is None:
            continue
        swapped = paste_person(scenes[i], masks[i], images[j], masks[j])
        if save is not None:
            swapped.save(save / f"{name(i)}_with_{name(j)}.jpg", quality=90)
        # neither the scene's photo nor the donor's photo may be its own neighbour
        control = -1 if feats[j] is None else nearest(X, y, feats[j], [i, j], mirror_landmark_features)
        rows.append((y[i], y[j], predict(swapped, [i, j]), control, i))
    extractor.close()
    if save is not None:
        for i, scene in enumerate(scenes):
            if scene is not None:
                scene.save(save / f"{name(i)}_person_removed.jpg", quality=90)

    print("\n## Context swap: one action's scene, another action's person\n")
    print(f"Person segmented in {sum(m is not None for m in masks)} of {len(images)} photos. Each photo's person "
          "removed (segmentation grown by 3 % of the height, OpenCV Telea inpainting), then the person of the photo "
          "with the same number of each other action pasted in (segmentation as alpha, scaled to the removed "
          f"person's height, same bottom centre). Classified by 1-NN + mirrors against the {len(images)} photos minus "
          "the scene's and the donor's.\n")
    a = np.array([r[0] for r in rows])
    b, pred, ctrl, scene_of = (np.array([r[k] for r in rows]) for k in (1, 2, 3, 4))
    n = len(rows)
    print(f"- swapped photos: {n}; credited to the **pasted pose's** action: {rate(int((pred == b).sum()), n)}")
    print(f"- credited to the **scene's** action: {rate(int((pred == a).sum()), n)}")
    print(f"- another action: {int(((pred >= 0) & (pred != a) & (pred != b)).sum())}; no person found: "
          f"{int((pred < 0).sum())}")
    print(f"- control, the donor photos themselves (same exclusions): pasted pose's action "
          f"{rate(int((ctrl == b).sum()), n)}; scene's action {rate(int((ctrl == a).sum()), n)}; another action "
          f"{int(((ctrl >= 0) & (ctrl != a) & (ctrl != b)).sum())}; no person found {int((ctrl < 0).sum())}")
    diff = (pred == a).astype(np.float64) - (ctrl == a)
    lo, hi = bootstrap_by_action(diff, scene_of)
    print(f"- context credit (scene's-action rate, swapped minus control): {diff.mean():+.1%} (95 % bootstrap over "
          f"the {len(np.unique(scene_of))} scene photos, 10000 draws: {lo:+.1%} to {hi:+.1%})")
    print(f"  (pairs where only the swapped photo went to the scene's action: {int((diff > 0).sum())}; only the "
          f"donor photo itself: {int((diff < 0).sum())})")
    print("\n| scene's action | swapped | pasted pose credited | scene credited | scene alone: no person | "
          "scene alone: scene's action |\n|---|---|---|---|---|---|")
    for k, action in enumerate(actions):
        m = a == k
        solo = [p for i, p in alone.items() if y[i] == k]
        print(f"| {action} | {int(m.sum())} | {int((pred[m] == b[m]).sum())} | {int((pred[m] == k).sum())} | "
              f"{sum(p < 0 for p in solo)} / {len(solo)} | {sum(p == k for p in solo)} / {len(solo)} |")
    solo_y = np.array([y[i] for i in alone])
    solo = np.array(list(alone.values()))
    print(f"\nScenes alone (person removed, nothing pasted): no person found {rate(int((solo < 0).sum()), len(solo))}; "
          f"credited to the scene's action {rate(int((solo == solo_y).sum()), len(solo))}; another action "
          f"{int(((solo >= 0) & (solo != solo_y)).sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of <action>/NN.jpg photos")
    parser.add_argument("--limit", type=int, default=0, help="photos per action (0: all)")
    parser.add_argument("--context-swap", action="store_true",
                        help="also judge photos with one action's scene and another action's person (about 2 minutes)")
    parser.add_argument("--save-swaps", type=Path, default=None,
                        help="write the swapped photos to this folder to look at (derived from CC BY-NC-ND photos: "
                             "keep them local, never commit them)")
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
    feats, flip_feats, judge_feats, cpu, wall, images = [], [], [], [], [], []
    for path in paths:
        with Image.open(path) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        if args.context_swap:
            images.append(image)
        landmarks, c, w = detect(extractor, image)
        cpu.append(c)
        wall.append(w)
        feats.append(None if landmarks is None else landmark_features(landmarks))
        judge_feats.append(None if landmarks is None else pose_features(openpose_keypoints(landmarks)))
        flipped, _, _ = detect(extractor, ImageOps.mirror(image))
        flip_feats.append(None if flipped is None else landmark_features(flipped))
    extractor.close()

    found = np.array([f is not None for f in feats])

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
    print("\nThe judge sees only the 33 landmarks, never the pixels, so an action's context (background, props) "
          "should earn no credit; --context-swap measures it. Chance is 1 in 8 (12.5 %).")
    if args.context_swap:
        context_swap(images, y, [p.stem for p in paths], feats, actions, args.save_swaps)


if __name__ == "__main__":
    main()
