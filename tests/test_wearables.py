"""Wearable attributes, body builds and background types of the synthetic renderer: the v1 pixels
stay the same without them, every attribute shows in every pose, and a simple classifier can
learn each attribute and background type from 32 px renders (so a judge can too)."""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from actionbench.errors import DatasetError
from actionbench.worlds import synthetic as S

# Hash of 57 renders (every pose three times, every subject, sizes 32/48/64, named, random and
# solid backgrounds) made by the renderer before attributes existed (commit f59566b).
V1_SAMPLE_SHA256 = "08cf7fa888d2483aaa2868dcebea3ff90b0a1ca5c5c60b7dcd13438f78ed2534"
V1_SUBJECTS = list(S.SUBJECT_IDS) + list(S.EXEMPLAR_LOOKS)
V1_BACKGROUNDS = [None, *S.BACKGROUNDS, (10, 200, 30)]
PLAIN = (222, 222, 222)
BODY_GARMENTS = [a for a in S.ATTRIBUTES if S.WEARABLES[a].slot == "body"]
OTHER_ATTRIBUTES = [a for a in S.ATTRIBUTES if S.WEARABLES[a].slot != "body"]


def v1_sample_hash(**extra) -> str:
    h = hashlib.sha256()
    for i in range(57):
        r = S.render(V1_SUBJECTS[(i * 7) % len(V1_SUBJECTS)], list(S.POSES)[i % len(S.POSES)], size=(32, 64, 48)[i % 3],
                     seed=13 * i, background=V1_BACKGROUNDS[i % len(V1_BACKGROUNDS)], **extra)
        h.update(np.asarray(r.image).tobytes())
        h.update(repr(r.keypoints).encode())
    return h.hexdigest()


def pixels(render) -> np.ndarray:
    return np.asarray(render.image).astype(np.int64)


# ---- the v1 renderer is unchanged -------------------------------------------------------------


def test_without_attributes_the_pixels_are_the_v1_renderers():
    assert v1_sample_hash() == V1_SAMPLE_SHA256
    assert v1_sample_hash(attributes=(), build="regular") == V1_SAMPLE_SHA256


# ---- attributes ------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["man", "cat"])
def test_every_attribute_shows_in_every_pose_and_each_looks_different(subject):
    for k, pose in enumerate(S.POSES):
        base = pixels(S.render(subject, pose, 32, seed=k, background=PLAIN))
        worn = {a: pixels(S.render(subject, pose, 32, seed=k, background=PLAIN, attributes=(a,))) for a in S.ATTRIBUTES}
        for a, image in worn.items():
            changed = int((np.abs(image - base).sum(-1) > 30).sum())
            assert changed >= 5, f"{a} on a {subject} in {pose} changes only {changed} pixels at 32 px"
        names = list(worn)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                differ = int((np.abs(worn[a] - worn[b]).sum(-1) > 30).sum())
                assert differ >= 5, f"{a} and {b} look alike on a {subject} in {pose}"


def test_attributes_combine_in_any_order_and_are_recorded():
    a = S.render("dog", "salute", 64, seed=3, attributes=("cap", "uniform", "scarf"))
    b = S.render("dog", "salute", 64, seed=3, attributes=["uniform", "scarf", "cap"])
    assert a.image.tobytes() == b.image.tobytes()
    assert a.attributes == ("uniform", "cap", "scarf") and a.build == "regular"
    assert S.render("dog", "salute", 64, seed=3, attributes="cap").attributes == ("cap",)


def test_garments_never_move_the_figure_and_keypoints_match_render_keypoints():
    for subject, pose in (("man", "cheer"), ("panda", "squat"), ("rabbit", "handstand")):
        plain = S.render(subject, pose, 64, seed=5).keypoints
        for attrs in (("uniform",), ("robe", "scarf"), ("sportswear", "headband"), ("mat",)):
            assert S.render(subject, pose, 64, seed=5, attributes=attrs).keypoints == plain
        attrs = ("cap", "stool")  # these can make the layout shrink the figure to fit them
        assert S.render_keypoints(subject, pose, 64, 5, attributes=attrs) == S.render(
            subject, pose, 64, seed=5, attributes=attrs).keypoints


def test_unknown_or_clashing_attributes_and_builds_are_refused_with_the_choices():
    with pytest.raises(DatasetError, match="unknown attribute.*known: uniform"):
        S.render("man", "stand", attributes=("helmet",))
    with pytest.raises(DatasetError, match="robe and uniform are both worn on the body; choose one"):
        S.render("man", "stand", attributes=("robe", "uniform"))
    with pytest.raises(DatasetError, match="name one twice"):
        S.render("man", "stand", attributes=("cap", "cap"))
    with pytest.raises(DatasetError, match="unknown build 'huge'; known: slim, regular, broad"):
        S.render("man", "stand", build="huge")


def test_builds_thin_and_thicken_the_figure():
    def figure_area(build):
        image = pixels(S.render("man", "stand", 64, seed=1, background=PLAIN, build=build))
        return int((np.abs(image - np.array(PLAIN)).sum(-1) > 30).sum())

    assert figure_area("slim") < figure_area("regular") < figure_area("broad")
    assert S.render("man", "stand", 64, seed=1, build="regular").image.tobytes() == \
        S.render("man", "stand", 64, seed=1).image.tobytes()


# ---- background types ----------------------------------------------------------------------


def test_background_types_are_seeded_and_never_move_the_figure():
    plain = S.render("cat", "walk", 32, seed=4)
    for kind in S.BACKGROUND_TYPES:
        a = S.render("cat", "walk", 32, seed=4, background=S.TYPE_PREFIX + kind)
        assert a.image.tobytes() == S.render("cat", "walk", 32, seed=4, background=S.TYPE_PREFIX + kind).image.tobytes()
        assert a.keypoints == plain.keypoints and a.background.startswith(S.TYPE_PREFIX + kind)
        looks = {S.render("cat", "walk", 32, seed=s, background=S.TYPE_PREFIX + kind).image.getpixel((1, 1))
                 for s in range(6)}
        assert len(looks) > 1, f"{kind}: the seed does not vary its colours"
    assert S.render("cat", "walk", 32, seed=4, background="type:studio:teal").background == "type:studio:teal"
    assert S.render("cat", "walk", 32, seed=4, background="type:gym:rubber").background == "type:gym:rubber"


def test_unknown_background_types_and_variants_are_refused():
    with pytest.raises(DatasetError, match="unknown background type 'moon'; known: room, beach"):
        S.render("man", "stand", background="type:moon")
    with pytest.raises(DatasetError, match="no variant 'purple'; known: orange"):
        S.render("man", "stand", background="type:studio:purple")


def test_named_backgrounds_keep_their_names_and_pixels():
    # "room", "beach" and "studio" are also v1 named backgrounds; without the prefix they stay v1's
    for name in ("room", "beach", "studio"):
        named = S.render("man", "stand", 32, seed=2, background=name)
        typed = S.render("man", "stand", 32, seed=2, background=S.TYPE_PREFIX + name)
        assert named.background == name and named.image.getpixel((0, 31)) == (
            S.render("man", "stand", 32, seed=2, background=S.BACKGROUNDS[name]).image.getpixel((0, 31)))
        assert typed.image.tobytes() != named.image.tobytes()


# ---- determinism across processes ----------------------------------------------------------

_NEW_SAMPLE = [("man", "salute", 32, 1, "type:outdoors", ("uniform", "cap"), "broad"),
               ("cat", "meditate", 64, 2, "type:room", ("robe", "mat"), "slim"),
               ("dog", "squat", 32, 3, "type:gym", ("sportswear", "headband", "scarf"), "regular"),
               ("rabbit", "sit", 48, 4, "type:studio", ("stool",), "regular"),
               ("tiger", "handstand", 32, 5, "type:beach", ("cap", "headband"), "slim")]
_NEW_SNIPPET = """
import hashlib, numpy as np
from actionbench.worlds import synthetic as S
h = hashlib.sha256()
for sid, pose, size, seed, bg, attrs, build in {sample!r}:
    r = S.render(sid, pose, size=size, seed=seed, background=bg, attributes=attrs, build=build)
    h.update(np.asarray(r.image).tobytes()); h.update(repr(r.keypoints).encode())
print(h.hexdigest())
"""


def test_attribute_renders_are_identical_in_a_fresh_process(tmp_path):
    h = hashlib.sha256()
    for sid, pose, size, seed, bg, attrs, build in _NEW_SAMPLE:
        r = S.render(sid, pose, size=size, seed=seed, background=bg, attributes=attrs, build=build)
        h.update(np.asarray(r.image).tobytes())
        h.update(repr(r.keypoints).encode())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACTIONBENCH_HOME": str(tmp_path), "PYTHONHASHSEED": "7"}
    out = subprocess.run([sys.executable, "-c", _NEW_SNIPPET.format(sample=_NEW_SAMPLE)], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == h.hexdigest()


def test_the_renderer_source_hash_covers_the_new_modules():
    from actionbench.worlds.synthetic.dataset import renderer_source_files

    names = {p.name for p in renderer_source_files()}
    assert {"wearables.py", "background_types.py", "sheets.py"} <= names


# ---- a judge can learn them ----------------------------------------------------------------


def random_render_spec(rng: random.Random) -> tuple:
    """A random subject, pose, background (typed 60 %, named 20 %, random 20 %), build and 0-3
    compatible attributes (at most one body garment)."""
    count = rng.choice([0, 1, 1, 2, 2, 3])
    attributes = [rng.choice(BODY_GARMENTS)] if rng.random() < 0.45 else []
    while len(attributes) < count:
        name = rng.choice(OTHER_ATTRIBUTES)
        if name not in attributes:
            attributes.append(name)
    r = rng.random()
    background = (S.TYPE_PREFIX + rng.choice(S.BACKGROUND_TYPES) if r < 0.6
                  else rng.choice(list(S.BACKGROUNDS)) if r < 0.8 else None)
    return rng.choice(V1_SUBJECTS), rng.choice(list(S.POSES)), tuple(attributes), background, rng.choice(list(S.BUILDS))


def colour_features(images: np.ndarray) -> np.ndarray:
    """Per image: a histogram of 8-level RGB colours, and one of 4-level colours in each image quarter
    (square roots of the pixel shares)."""
    x = images.astype(np.int64)
    fine = (x[..., 0] // 32) * 64 + (x[..., 1] // 32) * 8 + x[..., 2] // 32
    coarse = (x[..., 0] // 64) * 16 + (x[..., 1] // 64) * 4 + x[..., 2] // 64
    n, side = len(x), x.shape[1]
    parts = [np.stack([np.bincount(f.ravel(), minlength=512) for f in fine]) / (side * side)]
    half = side // 2
    for rows in (slice(0, half), slice(half, side)):
        for cols in (slice(0, half), slice(half, side)):
            parts.append(np.stack([np.bincount(c[rows, cols].ravel(), minlength=64) for c in coarse]) / (half * half))
    return np.sqrt(np.concatenate(parts, axis=1)).reshape(n, -1)


def labelled_renders(count: int, seed: int, size: int = 32):
    """``count`` random renders: images, attribute presence (count x len(ATTRIBUTES)), background type
    ("other" for named and random backgrounds). Seeds are ``seed * 1_000_000 + i``: disjoint per ``seed``."""
    rng = random.Random(seed)
    images, present, kinds = [], [], []
    for i in range(count):
        subject, pose, attributes, background, build = random_render_spec(rng)
        r = S.render(subject, pose, size, seed=seed * 1_000_000 + i, background=background, attributes=attributes,
                     build=build)
        images.append(np.asarray(r.image))
        present.append([a in attributes for a in S.ATTRIBUTES])
        kinds.append(r.background.split(":")[1] if r.background.startswith(S.TYPE_PREFIX) else "other")
    return np.stack(images), np.array(present), np.array(kinds)


def held_out_accuracies(train: int, test: int) -> dict:
    """Accuracy on held-out seeds of logistic classifiers on ``colour_features`` of 32 px renders:
    one per attribute (present or not) and one for the background type."""
    from sklearn.linear_model import LogisticRegression

    train_images, train_present, train_kinds = labelled_renders(train, seed=1)
    test_images, test_present, test_kinds = labelled_renders(test, seed=2)
    x_train, x_test = colour_features(train_images), colour_features(test_images)
    scores = {}
    for j, name in enumerate(S.ATTRIBUTES):
        model = LogisticRegression(C=100.0, max_iter=4000).fit(x_train, train_present[:, j])
        scores[name] = float((model.predict(x_test) == test_present[:, j]).mean())
    model = LogisticRegression(C=100.0, max_iter=4000).fit(x_train, train_kinds)
    scores["background type"] = float((model.predict(x_test) == test_kinds).mean())
    return scores


def test_a_linear_classifier_learns_every_attribute_and_background_type_from_32px_renders():
    # small here to stay fast; with 6000 training renders every attribute reaches 97 % or more
    scores = held_out_accuracies(train=700, test=300)
    weak = {name: round(score, 3) for name, score in scores.items() if score < 0.9}
    assert not weak, f"held-out accuracy below 90 %: {weak} (all: {scores})"
    assert scores["background type"] >= 0.96, scores


def test_attribute_sheets_have_a_cell_per_subject_and_column():
    sheet = S.attribute_sheet(subjects=("man", "cat"), scale=1, labels=False)
    assert sheet.size == (32 * (1 + len(S.ATTRIBUTES) + len(S.BACKGROUND_TYPES) + 2), 64)
    sheet = S.attribute_pose_sheet("dog", scale=2, labels=False)
    assert sheet.size == (64 * len(S.POSES), 64 * (1 + len(S.ATTRIBUTES)))
