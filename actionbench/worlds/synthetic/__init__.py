"""A procedural, deterministic image world: the built-in ``synthetic`` dataset and its renderer.

Two roles:

* ``load_synthetic()`` (what ``load_dataset("synthetic")`` calls) materialises a dataset of
  ActionBench's shape -- the same 8 actions with 10 exemplars each, the same 23 subjects
  and the same protocol -- without any download, for quick runs and tests.
* ``render(subject_id, pose, size, seed)`` draws any of the 23 subjects (or one of the
  exemplar-only people) in any named pose, with the OpenPose keypoints of what it drew;
  it is the renderer of the offline "mini world" where a tiny diffusion model is trained
  and a classifier judge recognises pose and subject exactly. Optionally the figure wears
  attributes (``attributes=("uniform", "cap")``), has a body build (``build="broad"``) and
  stands on a typed background (``background="type:gym"``); without them the pixels are v1's.

Figures are cartoon bodies with thick outlined limbs on a skeleton of the 18 OpenPose
(COCO order) keypoints. Poses are defined in a normalised body frame (x to the right of
the image, y down, a standing figure 1 unit tall with its feet on ``GROUND``); a seed
varies the background, the figure's position and scale, a slight lean and a small joint
jitter, never the pose itself.

Where things are, in the order a render uses them::

    benchmark    the v1 actions and subjects the world mirrors
    poses        keypoints in the body frame: Pose, POSES, pose_distance
    looks        what each subject wears or what fur it has: Look, SUBJECT_LOOKS, EXEMPLAR_LOOKS
    figure       a pose made into one seeded figure (jitter, lean, mirror, prop, tail)
    wearables    attributes any figure can carry (garments, head gear, mat, stool) and body builds
    backgrounds  named and random backgrounds; background_types: room, beach, gym, studio, outdoors
    painter      body parts and their order; heads: hair, faces, hats, animal heads
    scene        layout in the frame, render, render_keypoints, contact_sheet
    sheets       contact sheets of the attributes, builds and background types
    dataset      exemplar specs, the manifest and its hash, load_synthetic

The generic drawing lives in the core: ``actionbench.raster`` (the anti-aliased
signed-distance canvas) and ``actionbench.pose`` (keypoint names, OpenPose pose maps).

Determinism: geometry uses only + - * / and sqrt on float64 (pose tables are built once
with trigonometry and rounded to 1e-4), randomness comes from ``random.Random`` seeded by
SHA-256 and drawn with ``random()`` only, and pixels are rasterised with numpy from
signed distances, so the pixels are identical on every IEEE-754 machine. The PNG bytes
also match wherever zlib matches; ``manifest_sha256`` hashes the pixels, not the PNG bytes.
"""
from __future__ import annotations

from actionbench.pose import KEYPOINT_INDEX, KEYPOINT_NAMES, OPENPOSE_COLORS, OPENPOSE_LIMBS, render_pose_map

from .background_types import BACKGROUND_TYPES, STUDIO_COLOURS, TYPE_PREFIX, TypedBackground, typed_background
from .backgrounds import BACKGROUNDS, Background
from .benchmark import ACTION_IDS, ACTION_PHRASES, SUBJECT_IDS, SUBJECTS
from .dataset import (
    DATASET_VERSION,
    DEFAULT_EXEMPLAR_SIZE,
    EXEMPLARS_PER_ACTION,
    LICENSE,
    canonical_description,
    default_synthetic_root,
    exemplar_spec,
    load_synthetic,
    png_bytes,
    renderer_source_sha256,
    synthetic_exemplar,
    synthetic_keypoints,
    synthetic_manifest_sha256,
    synthetic_pose_map,
)
from .looks import EXEMPLAR_LOOKS, LOOKS, SUBJECT_LOOKS, Look
from .poses import ACTION_POSES, EVERYDAY_POSES, GROUND, POSES, Pose, pose_distance
from .scene import RENDERER_VERSION, RenderedImage, contact_sheet, render, render_keypoints
from .sheets import attribute_pose_sheet, attribute_sheet
from .wearables import ATTRIBUTES, BUILDS, DEFAULT_BUILD, WEARABLES, Wearable

__all__ = [
    "ACTION_IDS", "ACTION_PHRASES", "ACTION_POSES", "ATTRIBUTES", "BACKGROUNDS", "BACKGROUND_TYPES", "BUILDS",
    "DATASET_VERSION", "DEFAULT_BUILD", "DEFAULT_EXEMPLAR_SIZE", "EVERYDAY_POSES", "EXEMPLARS_PER_ACTION",
    "EXEMPLAR_LOOKS", "GROUND", "KEYPOINT_INDEX", "KEYPOINT_NAMES", "LICENSE", "LOOKS", "OPENPOSE_COLORS",
    "OPENPOSE_LIMBS", "POSES", "RENDERER_VERSION", "STUDIO_COLOURS", "SUBJECTS", "SUBJECT_IDS", "SUBJECT_LOOKS",
    "TYPE_PREFIX", "WEARABLES", "Background", "Look", "Pose", "RenderedImage", "TypedBackground", "Wearable",
    "attribute_pose_sheet", "attribute_sheet", "canonical_description", "contact_sheet", "default_synthetic_root",
    "exemplar_spec", "load_synthetic", "png_bytes", "pose_distance", "render", "render_keypoints", "render_pose_map",
    "renderer_source_sha256", "synthetic_exemplar", "synthetic_keypoints", "synthetic_manifest_sha256",
    "synthetic_pose_map", "typed_background",
]  # fmt: skip
