"""The mini world's scenes and captions, for every world version (``world.WorldSpec``): which looks and
poses there are, what a training render wears and stands on, how it is captioned, and the renders.

32x32 renders of ``actionbench.worlds.synthetic`` (23 subjects + 10 generic exemplar people,
19 poses). Captions name the subject and only the 11 *everyday* poses ("a cat standing"); images
of the 8 benchmark actions are rendered too, but their captions never name the action ("a photo
of a cat"), so the model can draw them while text alone cannot ask for them.

In v2 (``WorldSpec.contexts``) a training render also wears attributes and may stand on a
background type, drawn independently of the pose, and the caption always names them ("a cat
standing wearing a cap on a beach"): an unnamed attribute means "none". The generic people are
all "a person". v1's captions and renders come out of the same functions, draw for draw.

A ``Scene`` says everything a render shows (look, pose, background, attributes, build, seed):
``render_scene`` draws it, ``scene_caption`` captions it, and ``render_labelled`` renders every
look in every pose with its scene, for a judge.
"""
from __future__ import annotations

import random
from typing import NamedTuple, Protocol, Sequence

import numpy as np

from actionbench.worlds.mini.model import MINI_RESOLUTION
from actionbench.worlds.mini.world import ATTRIBUTE_WORDS, BACKGROUND_TYPE_WORDS, MINI_V1, WorldSpec

TYPE_PREFIX = "type:"  # as ``actionbench.worlds.synthetic.TYPE_PREFIX``: "type:gym" asks for a background type


class WorldConfig(Protocol):
    """What captions and the training renders read of a config (``lab.train.TrainConfig`` has it all)."""

    seed: int
    seeds_per_pair: int  # renders per (look, pose)
    named_background_fraction: float
    uncond_fraction: float  # empty caption, for classifier-free guidance
    drop_pose_fraction: float  # everyday images captioned without their pose
    action_pose_repeats: int  # renders of a benchmark pose per everyday pose's
    pose_parts_fraction: float  # renders captioned with their pose's parts (``POSE_PARTS``), any pose


class Scene(NamedTuple):
    """What one render shows; ``render_scene`` draws it, ``scene_caption`` captions it."""

    look: str  # a subject id or a generic exemplar person's id
    pose: str
    background: str | None  # None (random, from the seed), a BACKGROUNDS name, or "type:<background type>"
    attributes: tuple[str, ...] = ()  # canonical order (``WEARABLES``)
    build: str = "regular"
    seed: int = 0

    @property
    def background_type(self) -> str | None:
        """The background type ("room", ...) of a typed background, None for a plain or random one."""
        if self.background and self.background.startswith(TYPE_PREFIX):
            return self.background[len(TYPE_PREFIX):].split(":")[0]
        return None


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


# Every pose described by its parts, in words shared between poses and never an action's name or the words of
# its phrase (``ACTION_PHRASES``, beyond "with", "both", "arms", "hands", "the", "up", "a", "in"): a text handle on
# *which* pose, benchmark poses included, that describes without naming (lever 5, docs/mini-v3-preregistration.md).
POSE_PARTS = {
    "cheer": "upright with both arms up",
    "gesture": "upright with the right arm straight up and the left arm down",
    "handstand": "upside down on the hands with the legs up",
    "meditate": "seated on the floor with crossed legs and the hands on the knees",
    "pray": "upright with the palms together at the chest",
    "salute": "upright with the right hand at the forehead and the left arm down",
    "sit": "seated on a box with the hands on the thighs",
    "squat": "crouching low with bent knees and both arms forward",
    "stand": "upright with both arms down",
    "walk": "upright with the legs in a stride",
    "run": "leaning forward with the legs in a stride and bent elbows",
    "wave": "upright with the right hand up beside the head and the left arm down",
    "lie": "flat on the back with the arms down",
    "touch_toes": "bent forward with the hands at the feet",
    "jump": "in the air with the arms out and the legs apart",
    "kick": "on one leg with the other leg forward",
    "arms_crossed": "upright with the arms folded",
    "hands_on_hips": "upright with the hands on the hips",
    "kneel": "upright on one knee",
}


def look_words(look_id: str, world: WorldSpec = MINI_V1) -> str:
    """How captions name a look: the subject's display name, or a generic person's words (in v2 "a person")."""
    from actionbench.worlds.synthetic import LOOKS, SUBJECTS

    for sid, name, _ in SUBJECTS:
        if sid == look_id:
            return name
    return world.person_words or LOOKS[look_id].words


def world_looks() -> list[str]:
    """The 23 subjects, then the 10 generic exemplar people."""
    from actionbench.worlds.synthetic import EXEMPLAR_LOOKS, SUBJECT_IDS

    return list(SUBJECT_IDS) + list(EXEMPLAR_LOOKS)


def world_poses() -> list[str]:
    """All 19 poses: the 8 benchmark actions and the 11 everyday poses."""
    from actionbench.worlds.synthetic import POSES

    return list(POSES)


def caption(look_id: str, pose: str, background: str | None, rng: random.Random, cfg: WorldConfig,
            attributes: Sequence[str] = (), world: WorldSpec = MINI_V1) -> str:
    """A training caption: subject, everyday pose words (never an action's) or, in ``cfg.pose_parts_fraction`` of
    the renders, the pose's parts (any pose), the attributes and background type (always, in v2), maybe a named
    background."""
    from actionbench.worlds.synthetic import BACKGROUNDS

    if rng.random() < cfg.uncond_fraction:
        return ""
    subject = look_words(look_id, world)
    words = POSE_WORDS.get(pose)
    if cfg.pose_parts_fraction and rng.random() < cfg.pose_parts_fraction:  # no draw at 0: earlier worlds' captions stay
        words = POSE_PARTS[pose]
    elif words is not None and rng.random() < cfg.drop_pose_fraction:
        words = None
    context = [ATTRIBUTE_WORDS[a] for a in attributes]
    if len(context) > 1 and rng.random() < 0.5:  # both orders, so a prompt may name them either way
        context.reverse()
    if background and background.startswith(TYPE_PREFIX):
        context.append(BACKGROUND_TYPE_WORDS[background[len(TYPE_PREFIX):].split(":")[0]])
    elif background and rng.random() < 0.8:
        context.append(BACKGROUNDS[background].words)
    text = " ".join([subject] + ([words] if words else []) + context)
    return text if rng.random() < 0.5 else f"a photo of {text}"


def scene_caption(scene: Scene, rng: random.Random, cfg: WorldConfig, world: WorldSpec = MINI_V1) -> str:
    """``caption`` of a scene."""
    return caption(scene.look, scene.pose, scene.background, rng, cfg, scene.attributes, world)


def draw_context(rng: random.Random, world: WorldSpec, named_fraction: float) -> tuple:
    """A training render's (background, attributes, build), independent of its look and pose.

    v1: a named background with probability ``named_fraction``, else a random one (None). v2 adds
    0, 1 or 2 attributes (``world.attribute_count_weights``; at most one worn on the body), a background
    type for ``world.typed_background_fraction`` of renders, and a body build.
    """
    from actionbench.worlds.synthetic import ATTRIBUTES, BACKGROUND_TYPES, BACKGROUNDS, WEARABLES

    if not world.contexts:
        names = list(BACKGROUNDS)
        return (names[rng.randrange(len(names))] if rng.random() < named_fraction else None), (), "regular"
    count = _weighted(rng, world.attribute_count_weights)
    chosen: list[str] = []
    for _ in range(count):
        body_taken = any(WEARABLES[a].slot == "body" for a in chosen)
        free = [a for a in ATTRIBUTES if a not in chosen and not (body_taken and WEARABLES[a].slot == "body")]
        chosen.append(free[rng.randrange(len(free))])
    attributes = tuple(a for a in ATTRIBUTES if a in chosen)
    if rng.random() < world.typed_background_fraction:
        background = TYPE_PREFIX + BACKGROUND_TYPES[rng.randrange(len(BACKGROUND_TYPES))]
    else:
        plain = list(world.plain_backgrounds or BACKGROUNDS)
        background = plain[rng.randrange(len(plain))] if rng.random() < named_fraction else None
    return background, attributes, world.builds[rng.randrange(len(world.builds))]


def _weighted(rng: random.Random, weights: Sequence[int]) -> int:
    """An index drawn with the given relative weights (one ``random()`` draw)."""
    u, total = rng.random() * sum(weights), 0.0
    for index, weight in enumerate(weights):
        total += weight
        if u < total:
            return index
    return len(weights) - 1


def render_scene(scene: Scene, size: int = MINI_RESOLUTION):
    """The ``RenderedImage`` of a scene."""
    from actionbench.worlds.synthetic import render

    return render(scene.look, scene.pose, size=size, seed=scene.seed, background=scene.background,
                  attributes=scene.attributes, build=scene.build)


def render_scenes(scenes: Sequence[Scene], size: int = MINI_RESOLUTION, progress_desc: str | None = None):
    """Render scenes: the images (uint8, N x size x size x 3) and their keypoints."""
    from actionbench.report import progress

    images = np.zeros((len(scenes), size, size, 3), dtype=np.uint8)
    keypoints = []
    for i, scene in enumerate(progress(scenes, desc=progress_desc, total=len(scenes)) if progress_desc else scenes):
        rendered = render_scene(scene, size)
        images[i] = np.asarray(rendered.image)
        keypoints.append(rendered.keypoints)
    return images, keypoints


def render_world(cfg: WorldConfig, size: int = MINI_RESOLUTION, progress_desc: str | None = "rendering",
                 world: WorldSpec = MINI_V1) -> dict:
    """Render the training set: every look in every pose, ``seeds_per_pair`` times (a benchmark pose
    ``action_pose_repeats`` times that), each in a context drawn by ``draw_context``.
    Returns {"images": uint8 array, "meta": list of ``Scene``}."""
    from actionbench.worlds.synthetic import ACTION_POSES

    rng = random.Random(f"{'mini' if world == MINI_V1 else world.name}-world|{cfg.seed}")  # v1: as first published
    benchmark_poses = set(ACTION_POSES.values())
    scenes = []
    for look in world_looks():
        for pose in world_poses():
            for _ in range(cfg.seeds_per_pair * (cfg.action_pose_repeats if pose in benchmark_poses else 1)):
                seed = 1_000_000 + rng.randrange(1 << 30)
                background, attributes, build = draw_context(rng, world, cfg.named_background_fraction)
                scenes.append(Scene(look, pose, background, attributes, build, seed))
    images, _ = render_scenes(scenes, size, progress_desc)
    return {"images": images, "meta": scenes}


def render_labelled(per_pair: int, rng: random.Random, seed_base: int, progress_desc: str | None = None,
                    world: WorldSpec = MINI_V1):
    """Every look in every pose ``per_pair`` times, in contexts drawn by ``draw_context`` (half of the
    non-typed backgrounds named), seeds drawn from ``rng``.

    Returns the images (uint8, N x 32 x 32 x 3), their ``Scene`` s and their keypoints.
    """
    scenes = []
    for look in world_looks():
        for pose in world_poses():
            for _ in range(per_pair):
                background, attributes, build = draw_context(rng, world, 0.5)
                scenes.append(Scene(look, pose, background, attributes, build, seed_base + rng.randrange(1 << 30)))
    images, keypoints = render_scenes(scenes, MINI_RESOLUTION, progress_desc)
    return images, scenes, keypoints
