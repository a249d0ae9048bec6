"""Photos that carry one action's context and another action's pose, for the keypoint judge's context check.

A background photo (action A) loses its person: BlazePose's own person segmentation, grown by a few
pixels, is filled by OpenCV's inpainting (Telea) from the surrounding scene. Into that scene goes the
person of a donor photo (action B), cut out with the donor's segmentation mask (soft edges kept as
alpha), scaled to the height of A's person and standing where A's person stood (bottom centre). The
result keeps A's scene (background, props, lighting) and B's body, clothes included: clothes travel
with the person, so this probes the scene, not the outfit.

Needs the optional extra ``pose-real`` (mediapipe 0.10.21, which brings opencv-contrib-python).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

MASK_THRESHOLD = 0.5
"""A pixel belongs to the person when BlazePose's segmentation says so with at least this probability."""
GROW = 0.03
"""How far A's person mask is grown before inpainting, as a fraction of the image's height: the soft
edge of the mask otherwise leaves an outline of the old pose behind."""


class PersonSegmenter:
    """BlazePose with its segmentation output (a second instance: the judge's detector stays as it is)."""

    def __init__(self):
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True)

    def mask(self, image: Image.Image) -> np.ndarray | None:
        """Per-pixel person probability (H x W, float32 in [0, 1]), or None: nobody found."""
        result = self._pose.process(np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)))
        return None if result.segmentation_mask is None else np.asarray(result.segmentation_mask, dtype=np.float32)

    def close(self) -> None:
        self._pose.close()


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom), exclusive, of the pixels above ``MASK_THRESHOLD``; None if there are none."""
    ys, xs = np.nonzero(mask >= MASK_THRESHOLD)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def remove_person(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """The photo with its person inpainted away (the mask grown by ``GROW`` of the height first)."""
    import cv2

    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    grow = max(1, round(GROW * rgb.shape[0]))
    hole = cv2.dilate((mask >= MASK_THRESHOLD).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return Image.fromarray(cv2.inpaint(rgb, hole, 2 * grow, cv2.INPAINT_TELEA))


def paste_person(scene: Image.Image, scene_mask: np.ndarray, donor: Image.Image, donor_mask: np.ndarray) -> Image.Image:
    """``donor``'s person on ``scene``, as tall as the scene's removed person and standing where it stood."""
    target, source = bbox(scene_mask), bbox(donor_mask)
    if target is None or source is None:
        raise ValueError("both photos need a segmented person")
    left, top, right, bottom = source
    person = np.asarray(donor.convert("RGB"), dtype=np.float32)[top:bottom, left:right]
    alpha = donor_mask[top:bottom, left:right]
    width, height = scene.size
    scale = min((target[3] - target[1]) / (bottom - top), height / (bottom - top), width / (right - left))
    size = (max(1, round((right - left) * scale)), max(1, round((bottom - top) * scale)))
    person = np.asarray(Image.fromarray(person.astype(np.uint8)).resize(size, Image.BICUBIC), dtype=np.float32)
    alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.BILINEAR), dtype=np.float32)[..., None]
    x = int(np.clip(round((target[0] + target[2]) / 2 - size[0] / 2), 0, width - size[0]))
    y = int(np.clip(target[3] - size[1], 0, height - size[1]))
    out = np.asarray(scene.convert("RGB"), dtype=np.float32).copy()
    region = out[y : y + size[1], x : x + size[0]]
    out[y : y + size[1], x : x + size[0]] = alpha * person + (1 - alpha) * region
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def donors(actions: np.ndarray, numbers: list[str]) -> list[tuple[int, int]]:
    """(background, donor) index pairs: each photo as background once with the photo of the same number
    of every other action as donor (so every context meets every other pose equally often)."""
    by_key = {(int(a), n): i for i, (a, n) in enumerate(zip(actions, numbers))}
    return [(i, by_key[(int(b), numbers[i])]) for i, a in enumerate(actions) for b in np.unique(actions)
            if b != a and (int(b), numbers[i]) in by_key]
