"""The mini world: which looks and poses it has, how training images are captioned, and the renders.

32x32 renders of ``actionbench.worlds.synthetic`` (23 subjects + 10 generic exemplar people,
19 poses). Captions name the subject and only the 11 *everyday* poses ("a cat standing"); images
of the 8 benchmark actions are rendered too, but their captions never name the action ("a photo
of a cat"), so the model can draw them while text alone cannot ask for them.
"""
from __future__ import annotations

import random
from typing import Protocol

import numpy as np

from actionbench.worlds.mini.model import MINI_RESOLUTION


class WorldConfig(Protocol):
    """What captions and the training renders read of a config (``train.TrainConfig`` has it all)."""

    seed: int
    seeds_per_pair: int  # renders per (look, pose)
    named_background_fraction: float
    uncond_fraction: float  # empty caption, for classifier-free guidance
    drop_pose_fraction: float  # everyday images captioned without their pose

# The words the captions use for the everyday poses. The 8 benchmark actions have none.
POSE_WORDS = {
    "stand": "standing",
    "walk": "walking",
    "run": "running",
    "wave": "waving",
    "lie": "lying down",
    "touch_toes": "touching the toes",
    "jump": "jumping",
    "kick": "kicking",
    "arms_crossed": "with arms crossed",
    "hands_on_hips": "with hands on the hips",
    "kneel": "kneeling",
}


def look_words(look_id: str) -> str:
    """How captions name a look: the subject's display name, or a generic person's words."""
    from actionbench.worlds.synthetic import LOOKS, SUBJECTS

    for sid, name, _ in SUBJECTS:
        if sid == look_id:
            return name
    return LOOKS[look_id].words


def world_looks() -> list[str]:
    """The 23 subjects, then the 10 generic exemplar people."""
    from actionbench.worlds.synthetic import EXEMPLAR_LOOKS, SUBJECT_IDS

    return list(SUBJECT_IDS) + list(EXEMPLAR_LOOKS)


def world_poses() -> list[str]:
    """All 19 poses: the 8 benchmark actions and the 11 everyday poses."""
    from actionbench.worlds.synthetic import POSES

    return list(POSES)


def caption(look_id: str, pose: str, background: str | None, rng: random.Random, cfg: WorldConfig) -> str:
    """A training caption: subject, everyday pose words (never an action's), maybe the background."""
    from actionbench.worlds.synthetic import BACKGROUNDS

    if rng.random() < cfg.uncond_fraction:
        return ""
    subject = look_words(look_id)
    words = POSE_WORDS.get(pose)
    if words is not None and rng.random() < cfg.drop_pose_fraction:
        words = None
    bg = BACKGROUNDS[background].words if background and rng.random() < 0.8 else None
    parts = [subject] + ([words] if words else []) + ([bg] if bg else [])
    text = " ".join(parts)
    return text if rng.random() < 0.5 else f"a photo of {text}"


def render_world(cfg: WorldConfig, size: int = MINI_RESOLUTION, progress_desc: str | None = "rendering") -> dict:
    """Render the training set: every look in every pose, ``seeds_per_pair`` times."""
    from actionbench.report import progress
    from actionbench.worlds.synthetic import BACKGROUNDS, render

    bg_names = list(BACKGROUNDS)
    rng = random.Random(f"mini-world|{cfg.seed}")
    items = [(look, pose) for look in world_looks() for pose in world_poses() for _ in range(cfg.seeds_per_pair)]
    images = np.zeros((len(items), size, size, 3), dtype=np.uint8)
    meta = []
    for i, (look, pose) in enumerate(progress(items, desc=progress_desc, total=len(items))):
        seed = 1_000_000 + rng.randrange(1 << 30)
        background = bg_names[rng.randrange(len(bg_names))] if rng.random() < cfg.named_background_fraction else None
        images[i] = np.asarray(render(look, pose, size=size, seed=seed, background=background).image)
        meta.append((look, pose, background))
    return {"images": images, "meta": meta}


def render_labelled(per_pair: int, rng: random.Random, seed_base: int, progress_desc: str | None = None):
    """Every look in every pose ``per_pair`` times, half on named backgrounds, seeds drawn from ``rng``.

    Returns the images (uint8, N x 32 x 32 x 3), their (look, pose, background) and their keypoints.
    """
    from actionbench.report import progress
    from actionbench.worlds.synthetic import BACKGROUNDS, render

    bgs = list(BACKGROUNDS)
    items = [(look, pose) for look in world_looks() for pose in world_poses() for _ in range(per_pair)]
    images, meta, keypoints = [], [], []
    for look, pose in progress(items, desc=progress_desc, total=len(items)) if progress_desc else items:
        bg = bgs[rng.randrange(len(bgs))] if rng.random() < 0.5 else None
        r = render(look, pose, size=MINI_RESOLUTION, seed=seed_base + rng.randrange(1 << 30), background=bg)
        images.append(np.asarray(r.image))
        meta.append((look, pose, bg))
        keypoints.append(r.keypoints)
    return np.stack(images), meta, keypoints
