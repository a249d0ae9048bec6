"""The procedural synthetic world: determinism, dataset shape, distinct poses and subjects,
OpenPose pose maps, and idempotent atomic materialisation."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from actionbench.worlds import synthetic as S
from actionbench.dataset import Protocol, load_dataset
from actionbench.io import TMP_MARKER

V1_SUBJECTS = [
    ("man", "a man", "human"), ("woman", "a woman", "human"), ("boy", "a boy", "human"),
    ("girl", "a girl", "human"), ("old_man", "an old man", "human"), ("old_woman", "an old woman", "human"),
    ("police_officer", "a police officer", "human"), ("chef", "a chef", "human"),
    ("michael_jackson", "Michael Jackson", "personality"), ("david_beckham", "David Beckham", "personality"),
    ("barack_obama", "Barack Obama", "personality"), ("taylor_swift", "Taylor Swift", "personality"),
    ("albert_einstein", "Albert Einstein", "personality"), ("lionel_messi", "Lionel Messi", "personality"),
    ("emma_watson", "Emma Watson", "personality"), ("monkey", "a monkey", "animal"), ("cat", "a cat", "animal"),
    ("gorilla", "a gorilla", "animal"), ("tiger", "a tiger", "animal"), ("dog", "a dog", "animal"),
    ("panda", "a panda", "animal"), ("bear", "a bear", "animal"), ("rabbit", "a rabbit", "animal"),
]  # fmt: skip
V1_PHRASES = {
    "cheer": "cheering with both arms raised",
    "gesture": "pointing the index finger up",
    "handstand": "doing a handstand",
    "meditate": "meditating in the lotus position",
    "pray": "praying with clasped hands",
    "salute": "giving a military salute",
    "sit": "sitting",
    "squat": "squatting",
}

# A fixed sample of renders; hashed here and in a fresh interpreter.
_SAMPLE = [("man", "cheer", 64, 0), ("tiger", "handstand", 128, 7), ("michael_jackson", "walk", 96, 3),
           ("rabbit", "sit", 64, 11), ("exemplar_person_6", "squat", 200, 5)]
_HASH_SNIPPET = """
import hashlib, numpy as np
from actionbench.worlds import synthetic as S
h = hashlib.sha256()
for sid, pose, size, seed in {sample!r}:
    r = S.render(sid, pose, size=size, seed=seed)
    h.update(np.asarray(r.image).tobytes()); h.update(repr(r.keypoints).encode())
print(h.hexdigest())
"""


def _sample_hash() -> str:
    h = hashlib.sha256()
    for sid, pose, size, seed in _SAMPLE:
        r = S.render(sid, pose, size=size, seed=seed)
        h.update(np.asarray(r.image).tobytes())
        h.update(repr(r.keypoints).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return S.load_synthetic(root=root)


# ---- renderer ------------------------------------------------------------------------------


def test_render_is_deterministic_and_seed_dependent():
    a = S.render("cat", "salute", size=64, seed=3)
    b = S.render("cat", "salute", size=64, seed=3)
    assert a.image.tobytes() == b.image.tobytes() and a.keypoints == b.keypoints
    assert S.png_bytes(a.image) == S.png_bytes(b.image)
    c = S.render("cat", "salute", size=64, seed=4)
    assert a.image.tobytes() != c.image.tobytes()
    assert (a.subject_id, a.pose, a.size, a.seed) == ("cat", "salute", 64, 3)


def test_render_is_identical_in_a_fresh_process(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACTIONBENCH_HOME": str(tmp_path), "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", _HASH_SNIPPET.format(sample=_SAMPLE)], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _sample_hash()


@pytest.mark.parametrize("size", [64, 128, 256, 512])
def test_render_any_size_keeps_layout(size):
    r = S.render("police_officer", "cheer", size=size, seed=2)
    assert r.image.size == (size, size) and r.image.mode == "RGB"
    assert len(r.keypoints) == 18 and all(p is not None for p in r.keypoints)
    kp = r.keypoints_array()
    assert (kp >= 0).all() and (kp < size).all()
    small = S.render("police_officer", "cheer", size=64, seed=2).keypoints_array()
    assert np.abs(kp * 64 / size - small).max() < 1.5  # same composition at every size


def test_side_view_hides_far_eye_and_ear_and_keypoints_match_render_keypoints():
    r = S.render("dog", "walk", size=96, seed=1)
    hidden = [S.KEYPOINT_NAMES[i] for i, p in enumerate(r.keypoints) if p is None]
    assert sorted(hidden) in (["r_ear", "r_eye"], ["l_ear", "l_eye"])
    assert S.render_keypoints("dog", "walk", size=96, seed=1) == r.keypoints


def test_render_rejects_unknown_names():
    from actionbench.errors import DatasetError

    with pytest.raises(DatasetError, match="unknown synthetic pose"):
        S.render("man", "moonwalk")
    with pytest.raises(DatasetError, match="unknown synthetic subject"):
        S.render("unicorn", "stand")


def test_backgrounds_named_solid_and_random():
    solid = np.asarray(S.render("man", "stand", size=64, seed=0, background=(10, 200, 30)).image)
    assert tuple(solid[0, 0]) == (10, 200, 30)
    park = np.asarray(S.render("man", "stand", size=64, seed=0, background="park").image)
    assert tuple(park[-1, 0]) != tuple(park[0, 0])  # floor differs from the sky
    corners = {tuple(np.asarray(S.render("man", "stand", size=64, seed=s).image)[0, 0]) for s in range(12)}
    assert len(corners) > 6


# ---- poses ---------------------------------------------------------------------------------


def test_pose_catalogue():
    assert set(S.ACTION_IDS) == set(V1_PHRASES) and set(S.ACTION_IDS) <= set(S.POSES)
    assert {"stand", "walk", "run", "wave", "lie", "jump", "kick", "arms_crossed"} <= set(S.EVERYDAY_POSES)
    assert S.KEYPOINT_NAMES[:2] == ("nose", "neck") and len(S.KEYPOINT_NAMES) == 18
    for pose in S.POSES.values():
        assert len(pose.keypoints) == 18 and pose.view in ("front", "side")
        assert all(pose.keypoints[i] is not None for i in range(14))


def test_every_pose_differs_from_every_other_by_a_clear_margin():
    names = list(S.POSES)
    worst = min((S.pose_distance(a, b), a, b) for a, b in itertools.combinations(names, 2))
    assert worst[0] >= 0.12, worst  # some body joint moves by >= 12 % of the body height


def test_pose_semantics():
    P = {n: {k: np.array(v) for k, v in zip(S.KEYPOINT_NAMES, p.keypoints) if v is not None} for n, p in S.POSES.items()}
    up = lambda a, b: a[1] < b[1]  # noqa: E731 (y grows downwards)
    assert up(P["cheer"]["r_wrist"], P["cheer"]["nose"]) and up(P["cheer"]["l_wrist"], P["cheer"]["nose"])
    assert up(P["gesture"]["r_wrist"], P["gesture"]["nose"]) and not up(P["gesture"]["l_wrist"], P["gesture"]["neck"])
    assert P["handstand"]["r_ankle"][1] < P["handstand"]["neck"][1] < P["handstand"]["r_hip"][1] + 1
    assert P["handstand"]["r_wrist"][1] > P["handstand"]["nose"][1]
    assert abs(P["pray"]["r_wrist"][0] - P["pray"]["l_wrist"][0]) < 0.05
    assert np.linalg.norm(P["salute"]["r_wrist"] - np.array(S.POSES["salute"].head_center)) < 0.1
    for n in ("sit", "squat", "meditate"):
        assert P[n]["r_hip"][1] > P["stand"]["r_hip"][1] + 0.15  # hips low
    sit = P["sit"]
    assert abs(sit["l_knee"][1] - sit["l_hip"][1]) < 0.03 and S.POSES["sit"].prop == "box"  # thighs horizontal
    assert P["squat"]["l_hip"][1] > P["squat"]["l_knee"][1]  # hips below the knees


# ---- subjects ------------------------------------------------------------------------------


def test_subject_looks_cover_the_v1_subjects_and_exemplar_people_are_separate():
    assert list(S.SUBJECTS) == V1_SUBJECTS
    assert set(S.SUBJECT_LOOKS) == {s[0] for s in V1_SUBJECTS}
    assert len(S.EXEMPLAR_LOOKS) == 10 and not set(S.EXEMPLAR_LOOKS) & set(S.SUBJECT_LOOKS)


def test_subjects_differ_visibly():
    ids = list(S.SUBJECT_LOOKS) + list(S.EXEMPLAR_LOOKS)
    bg = np.array([200.0, 200.0, 200.0])
    imgs = {sid: np.asarray(S.render(sid, "stand", size=64, seed=5, background="grey").image).astype(float) for sid in ids}
    masks = {sid: np.abs(im - bg).sum(-1) > 30 for sid, im in imgs.items()}
    for a, b in itertools.combinations(ids, 2):
        m = masks[a] | masks[b]
        diff = np.abs(imgs[a][m] - imgs[b][m]).mean()
        assert diff > 30, (a, b, diff)  # mean absolute RGB difference over the two figures


# ---- pose maps -----------------------------------------------------------------------------


def test_pose_map_uses_openpose_colours_on_black():
    r = S.render("man", "cheer", size=256, seed=0)
    pm = np.asarray(S.render_pose_map(r.keypoints, 256))
    assert pm.shape == (256, 256, 3) and tuple(pm[0, 0]) == (0, 0, 0)
    allowed = {(0, 0, 0)} | set(S.OPENPOSE_COLORS) | {tuple(int(c * 0.6) for c in col) for col in S.OPENPOSE_COLORS}
    found = {tuple(v) for v in pm.reshape(-1, 3)}
    assert found <= allowed
    for col, p in zip(S.OPENPOSE_COLORS, r.keypoints):  # each joint is a disc of its colour
        assert tuple(pm[int(p[1]), int(p[0])]) == col
    assert tuple(int(c * 0.6) for c in S.OPENPOSE_COLORS[0]) in found  # limbs at 60 %
    side = np.asarray(S.render("man", "sit", size=128, seed=0).pose_map())
    assert {tuple(v) for v in side.reshape(-1, 3)} <= allowed


# ---- the dataset ---------------------------------------------------------------------------


def test_dataset_shape(synth):
    assert synth.name == "synthetic"
    assert [a.id for a in synth.actions] == list(V1_PHRASES)
    assert {a.id: a.phrase for a in synth.actions} == V1_PHRASES
    assert all(len(a.exemplars) == 10 for a in synth.actions)
    assert [(s.id, s.name, s.category) for s in synth.subjects] == V1_SUBJECTS
    assert synth.protocol == Protocol()
    assert len(synth.units()) == 368
    for action in synth.actions:
        assert [e.index for e in action.exemplars] == list(range(1, 11))
        assert len({e.template for e in action.exemplars}) == 10
        for ex in action.exemplars:
            assert ex.template.count("{}") == 1 and ex.path.is_file()
            assert action.phrase in ex.caption(action.phrase)
            img = ex.image()
            assert img.size == (256, 256)
        looks = synth.extra["looks"][action.id]
        assert len(set(looks)) == 10 and all(lk.startswith("exemplar_person_") for lk in looks)


def test_exemplar_captions_describe_look_and_background(synth):
    ex = synth.action("cheer").exemplars[0]
    spec = S.exemplar_spec("cheer", 1)
    words = S.EXEMPLAR_LOOKS[spec["look"]].words
    assert words.split(" in ")[1] in ex.template and S.BACKGROUNDS[spec["background"]].words in ex.template


def test_keypoints_and_pose_maps_of_exemplars(synth):
    kp = S.synthetic_keypoints("salute", 4)
    assert tuple(tuple(p) if p else None for p in synth.extra["keypoints"]["salute"][3]) == kp
    assert S.synthetic_exemplar("salute", 4).keypoints == kp
    pm = S.synthetic_pose_map("salute", 4)
    assert pm.size == (256, 256)
    stored = np.asarray(synth.action("salute").exemplars[3].image())
    assert np.array_equal(stored, np.asarray(S.synthetic_exemplar("salute", 4).image))


def test_manifest_describes_files_with_hashes(synth):
    from actionbench.hashing import sha256_file

    manifest = json.loads((synth.root / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["protocol"]["images_per_method"] == 368
    assert len(manifest["files"]) == 80
    for f in manifest["files"]:
        assert sha256_file(synth.root / f["path"]) == f["sha256"]
    assert S.synthetic_manifest_sha256(manifest) == synth.manifest_sha256
    assert [s["id"] for s in manifest["subjects"]] == [s[0] for s in V1_SUBJECTS]


def test_an_edit_anywhere_in_the_renderer_invalidates_the_cache_but_not_the_dataset_hash(synth):
    from actionbench.worlds.synthetic.dataset import renderer_source_files

    names = {p.relative_to(Path(S.__file__).parents[3]).as_posix() for p in renderer_source_files()}
    package = {f"actionbench/worlds/synthetic/{p.name}" for p in Path(S.__file__).parent.glob("*.py")}
    assert names == package | {"actionbench/raster.py", "actionbench/pose.py"}
    manifest = json.loads((synth.root / "manifest.json").read_text())
    assert manifest["generator"]["source_sha256"] == S.renderer_source_sha256()
    edited = {**manifest, "generator": {**manifest["generator"], "source_sha256": "0" * 64}}
    assert S.synthetic_manifest_sha256(edited) == synth.manifest_sha256


def test_load_synthetic_is_idempotent_and_atomic(synth):
    root = synth.root
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) == 81 and not [p for p in files if TMP_MARKER in p.name]
    before = {p: p.stat().st_mtime_ns for p in files}
    again = S.load_synthetic(root=root)
    assert again.manifest_sha256 == synth.manifest_sha256 and again.actions == synth.actions
    assert {p: p.stat().st_mtime_ns for p in files} == before  # nothing rewritten
    (root / "manifest.json").unlink()  # forces a full re-render: PNGs with the same bytes stay untouched
    S.load_synthetic(root=root)
    assert all(p.stat().st_mtime_ns == before[p] for p in files if p.suffix == ".png")
    assert not [p for p in root.rglob("*") if TMP_MARKER in p.name]


def test_load_synthetic_repairs_and_survives_an_interrupted_write(tmp_path, monkeypatch):
    import actionbench.io as abio

    real_replace = abio.os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("simulated crash while renaming")
        return real_replace(src, dst)

    monkeypatch.setattr(abio.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="simulated crash"):
        S.load_synthetic(root=tmp_path)
    monkeypatch.setattr(abio.os, "replace", real_replace)
    assert not [p for p in tmp_path.rglob("*") if TMP_MARKER in p.name]  # the temporary was removed
    assert not (tmp_path / "manifest.json").exists()
    ds = S.load_synthetic(root=tmp_path)
    victim = ds.action("pray").exemplars[2].path
    victim.write_bytes(b"not a png")
    ds2 = S.load_synthetic(root=tmp_path)
    assert ds2.manifest_sha256 == ds.manifest_sha256
    assert ds2.action("pray").exemplars[2].image().size == (256, 256)


def test_load_dataset_synthetic_uses_actionbench_home_and_hash_is_stable_across_processes(tmp_path, monkeypatch, synth):
    monkeypatch.setenv("ACTIONBENCH_HOME", str(tmp_path / "home"))
    ds = load_dataset("synthetic")
    assert ds.root == tmp_path / "home" / "synthetic-v1" and (ds.root / "manifest.json").is_file()
    assert ds.manifest_sha256 == synth.manifest_sha256
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACTIONBENCH_HOME": str(tmp_path / "other")}
    code = "from actionbench.dataset import load_dataset; print(load_dataset('synthetic').manifest_sha256)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == synth.manifest_sha256


def test_rendering_the_exemplars_is_fast():
    t0 = time.perf_counter()
    for action in S.ACTION_IDS:
        for index in range(1, 11):
            S.synthetic_exemplar(action, index)
    assert time.perf_counter() - t0 < 10.0  # ~1 s on one core; generous for shared CI machines


def test_contact_sheet(tmp_path):
    sheet = S.contact_sheet(["man", "cat"], ["cheer", "stand"], size=48)
    assert sheet.size == (96, 96)
