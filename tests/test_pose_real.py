"""BlazePose, the offline pose backend of the keypoint judge (optional extra ``pose-real``).

The real-photo test needs mediapipe 0.10.21, which needs numpy<2, so it runs in that extra's own
environment: ``/tmp/posevenv/bin/python -m pytest --noconftest tests/test_pose_real.py`` (the repository's
conftest imports torch); in the main environment it skips with a reason naming the extra.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from actionbench.errors import ActionBenchError
from actionbench.pose import KEYPOINT_INDEX, KEYPOINT_NAMES
from actionbench.pose_blazepose import (
    BLAZEPOSE_EXTRA,
    LANDMARK_NAMES,
    BlazePoseExtractor,
    check_blazepose,
    landmark_features,
    mirror_landmark_features,
    openpose_keypoints,
)

UPSTREAM = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "ActionBench"
HAVE_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None


def _no_mediapipe(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))


def test_missing_extra_error_names_the_extra(monkeypatch):
    _no_mediapipe(monkeypatch)
    with pytest.raises(ActionBenchError, match=f"'{BLAZEPOSE_EXTRA}'.*numpy<2.*pip install"):
        check_blazepose()
    with pytest.raises(ActionBenchError, match=BLAZEPOSE_EXTRA):
        BlazePoseExtractor().pose  # noqa: B018


def test_judge_with_blazepose_detector_fails_early_naming_the_extra(monkeypatch):
    few_shot = pytest.importorskip("actionbench.evaluators.few_shot", reason="the judge needs the main environment")
    from actionbench.dataset import load_dataset
    from actionbench.errors import ConfigError

    _no_mediapipe(monkeypatch)
    data = load_dataset("synthetic")
    judge = few_shot.FewShotJudge(data, model="tiny", pose_detector="blazepose")
    assert judge.VERSION == f"{few_shot.FewShotJudge.VERSION}-blazepose"  # never ranked with OpenPose's rows
    with pytest.raises(ActionBenchError, match=BLAZEPOSE_EXTRA):
        judge.check()
    with pytest.raises(ActionBenchError, match=BLAZEPOSE_EXTRA):
        judge.keypoints.image_extractor  # noqa: B018
    with pytest.raises(ConfigError, match="pose_resolution"):
        few_shot.FewShotJudge(data, model="tiny", pose_detector="blazepose", pose_resolution=256)


def _landmarks(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 100, (33, 2)), rng.uniform(0.6, 1.0, 33)])


def test_openpose_mapping_and_features():
    lm = _landmarks()
    lm[LANDMARK_NAMES.index("left_knee"), 2] = 0.1  # hidden
    points = openpose_keypoints(lm)
    assert len(points) == len(KEYPOINT_NAMES)
    assert points[KEYPOINT_INDEX["l_knee"]] is None
    assert points[KEYPOINT_INDEX["r_wrist"]] == pytest.approx(tuple(lm[LANDMARK_NAMES.index("right_wrist"), :2]))
    shoulders = lm[[LANDMARK_NAMES.index("left_shoulder"), LANDMARK_NAMES.index("right_shoulder")], :2]
    assert points[KEYPOINT_INDEX["neck"]] == pytest.approx(tuple(shoulders.mean(axis=0)))
    # the features of the mirror image are the mirrored features
    mirrored = lm.copy()
    mirrored[:, 0] = 100 - mirrored[:, 0]
    from actionbench.pose_blazepose import MIRRORED_LANDMARKS

    mirrored = mirrored[list(MIRRORED_LANDMARKS)]
    np.testing.assert_allclose(landmark_features(mirrored), mirror_landmark_features(landmark_features(lm)),
                               atol=1e-9)
    # translation and scale do not change them
    moved = lm.copy()
    moved[:, :2] = moved[:, :2] * 3 + 7
    np.testing.assert_allclose(landmark_features(moved), landmark_features(lm), atol=1e-9)


@pytest.mark.skipif(not HAVE_MEDIAPIPE, reason=f"mediapipe is not installed: the optional extra '{BLAZEPOSE_EXTRA}' "
                    "(mediapipe==0.10.21, numpy<2) in an environment of its own, see docs/judges-real.md")
@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"the upstream ActionBench photos are not at {UPSTREAM}")
def test_blazepose_reads_real_handstands_upside_down():
    from PIL import Image

    extractor = BlazePoseExtractor()
    try:
        for action, upside_down in (("handstand", True), ("squat", False)):
            for n in (1, 2):
                with Image.open(UPSTREAM / action / f"{n:02d}.jpg") as im:
                    points = extractor.keypoints_from_image(im.convert("RGB"))
                assert points is not None, f"no person found in {action}/{n:02d}.jpg"
                hips = [points[KEYPOINT_INDEX[k]] for k in ("r_hip", "l_hip") if points[KEYPOINT_INDEX[k]]]
                neck = points[KEYPOINT_INDEX["neck"]]
                assert hips and neck is not None
                # image y grows downward: in a handstand the neck is below the hips
                assert (neck[1] > np.mean([h[1] for h in hips])) == upside_down, (action, n)
    finally:
        extractor.close()


@pytest.mark.skipif(not HAVE_MEDIAPIPE, reason=f"mediapipe is not installed: the optional extra '{BLAZEPOSE_EXTRA}' "
                    "(mediapipe==0.10.21, numpy<2) in an environment of its own, see docs/judges-real.md")
@pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"the upstream ActionBench photos are not at {UPSTREAM}")
def test_context_swap_keeps_the_pasted_pose_not_the_scene():
    """benchmarks/_context_swap.py: a squat scene with a handstand pasted in reads upside down, a handstand
    scene with a squat pasted in reads upright, and a scene with its person removed has nobody in it."""
    import sys

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _context_swap import PersonSegmenter, paste_person, remove_person

    photos = {}
    for action in ("squat", "handstand"):
        with Image.open(UPSTREAM / action / "01.jpg") as im:
            photos[action] = im.convert("RGB")
    segmenter, extractor = PersonSegmenter(), BlazePoseExtractor()
    try:
        masks = {action: segmenter.mask(image) for action, image in photos.items()}
        assert all(m is not None for m in masks.values())
        scenes = {action: remove_person(photos[action], masks[action]) for action in photos}
        assert extractor.keypoints_from_image(scenes["squat"]) is None  # the scene alone: no person
        for scene, donor, upside_down in (("squat", "handstand", True), ("handstand", "squat", False)):
            swapped = paste_person(scenes[scene], masks[scene], photos[donor], masks[donor])
            assert swapped.size == photos[scene].size
            points = extractor.keypoints_from_image(swapped)
            assert points is not None, f"no person found in {scene} with {donor} pasted in"
            hips = [points[KEYPOINT_INDEX[k]] for k in ("r_hip", "l_hip") if points[KEYPOINT_INDEX[k]]]
            neck = points[KEYPOINT_INDEX["neck"]]
            assert hips and neck is not None
            assert (neck[1] > np.mean([h[1] for h in hips])) == upside_down, (scene, donor)
    finally:
        segmenter.close()
        extractor.close()
