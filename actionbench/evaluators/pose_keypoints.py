"""Where the few-shot judge's keypoints come from (its ``features=keypoints`` mode).

Three kinds of image need keypoints, and each pair that is compared must come from the same
place, or the classifier would learn the difference between two detectors instead of poses:

- **exemplars**: ``exemplar_pose=auto`` (the default) takes the exact keypoints the synthetic
  dataset recorded when every exemplar has them, and the image detector otherwise (photos);
- **``<none>`` renders** (synthetic everyday poses): the same source as the exemplars, exact
  keypoints beside exact keypoints, detected ones beside detected ones;
- **judged images**: the image detector, always. By default that is OpenPose (controlnet_aux,
  ``actionbench.pose.OpenPoseExtractor``) with the body model given by ``pose_detector``;
  ``pose_detector=blazepose`` uses MediaPipe BlazePose instead (``actionbench.pose_blazepose``, the
  optional extra ``pose-real``: its weights ship inside the mediapipe wheel, so it runs offline, but it
  needs numpy<2 and so an environment of its own).

In Python a ``pose_extractor`` object with a ``keypoints_from_image(image)`` method (18 OpenPose
points or None) replaces OpenPose, for example a detector of your own, or in tests one that
looks up the exact keypoints of rendered images (a random-weight OpenPose would be meaningless).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from actionbench.errors import ActionBenchError, ConfigError
from actionbench.pose import (
    BODY_WEIGHTS,
    INSTALL_HINT,
    OPENPOSE_ANNOTATORS,
    OpenPoseExtractor,
    SyntheticPoseExtractor,
    resolve_body_weights,
    resolve_extractor_name,
)
from actionbench.pose_blazepose import BlazePoseExtractor, check_blazepose

BLAZEPOSE = "blazepose"
"""The ``pose_detector`` value that selects BlazePose instead of an OpenPose body model."""

EXEMPLAR_POSE_CHOICES = ("auto", "synthetic", "openpose")


def detector_unavailable(reason: str) -> ActionBenchError:
    """The error for a judge whose OpenPose cannot run here: why, and the ways out."""
    return ActionBenchError(
        f"the few_shot judge (features=keypoints) finds the pose in each image with OpenPose, which cannot run "
        f"here: {reason}. To fix it: {INSTALL_HINT}, download {OPENPOSE_ANNOTATORS}'s {BODY_WEIGHTS} once with "
        f"network access (huggingface-cli download {OPENPOSE_ANNOTATORS} {BODY_WEIGHTS}) and pass the file or its "
        "folder with --judge-option pose_detector=PATH; or judge with --judge-option features=clip, whose results "
        "are marked contamination-biased"
    )


class JudgeKeypoints:
    """The keypoints of the few-shot judge's exemplars, ``<none>`` renders and judged images.

    Args:
        dataset: the benchmark (its exemplars).
        detector: OpenPose body model: hub repo id, folder or file; or ``blazepose``.
        resolution: OpenPose's detection resolution in pixels.
        exemplar_pose: ``auto``, ``synthetic`` (exact, recorded) or ``openpose`` (detected).
        extractor: an object with ``keypoints_from_image(image)`` that replaces OpenPose, or None.
        device: where OpenPose runs.
    """

    def __init__(self, dataset, detector: str = OPENPOSE_ANNOTATORS, resolution: int = 512,
                 exemplar_pose: str = "auto", extractor: Any = None, device: str = "cpu"):
        if exemplar_pose not in EXEMPLAR_POSE_CHOICES:
            raise ConfigError(f"judge option exemplar_pose must be one of {', '.join(EXEMPLAR_POSE_CHOICES)}, "
                              f"got {exemplar_pose!r}")
        if extractor is not None and not callable(getattr(extractor, "keypoints_from_image", None)):
            raise ConfigError(
                f"judge option pose_extractor must be an object with a keypoints_from_image(image) method, got "
                f"{extractor!r}; to use OpenPose weights from a file, pass pose_detector=PATH instead"
            )
        self.dataset = dataset
        self.detector = str(detector)
        self.resolution = int(resolution)
        self.exemplar_pose = exemplar_pose
        self.device = device
        self._extractor = extractor
        self._weights: Path | None = None
        self._weights_sha256: str | None = None

    # --- the image detector --------------------------------------------------------------------

    def check(self) -> None:
        """Raise now if the image detector cannot run: controlnet_aux missing, or weights neither local
        nor downloadable. Loads no model."""
        import importlib.util

        if self._extractor is not None or self._weights is not None:
            return
        if self.detector == BLAZEPOSE:
            check_blazepose()  # the error names the extra 'pose-real' and its separate-venv install
            return
        if importlib.util.find_spec("controlnet_aux") is None:
            raise detector_unavailable("controlnet-aux is not installed")
        try:
            self._weights = resolve_body_weights(self.detector)
        except ConfigError as exc:  # not a file, a folder with the weights, or a hub id
            raise detector_unavailable(str(exc)) from None
        except ActionBenchError as exc:  # a hub id, not cached and not downloadable
            cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "no download"
            raise detector_unavailable(f"{BODY_WEIGHTS} of {self.detector} is not on this machine and could not "
                                       f"be downloaded ({cause})") from None

    @property
    def image_extractor(self):
        """The injected extractor, or OpenPose with its weights loaded (errors say how to fix)."""
        if self._extractor is None and self.detector == BLAZEPOSE:
            self.check()
            self._extractor = BlazePoseExtractor()
        if self._extractor is None:
            self.check()
            openpose = OpenPoseExtractor(str(self._weights), self.resolution, self.device)
            try:
                openpose.detector  # noqa: B018 - load now, so that a bad file fails here with our message
            except ActionBenchError as exc:
                raise detector_unavailable(str(exc)) from None
            self._extractor = openpose
        return self._extractor

    def of_images(self, images: Sequence[Any]) -> list:
        """Detected keypoints (or None: nobody found) of PIL images."""
        extractor = self.image_extractor
        return [extractor.keypoints_from_image(image) for image in images]

    # --- training images -----------------------------------------------------------------------

    def exemplar_source(self) -> str:
        """``synthetic`` (exact, recorded keypoints) or ``openpose`` (the image detector) for the exemplars."""
        exemplars = [e for a in self.dataset.actions for e in a.exemplars]
        return resolve_extractor_name(self.exemplar_pose, exemplars)

    def of_exemplars(self, exemplars: Sequence[Any]) -> list:
        """Keypoints of ``actionbench.dataset.Exemplar`` objects, from ``exemplar_source()``."""
        if self.exemplar_source() == "synthetic":
            exact = SyntheticPoseExtractor(resolution=self.resolution)
            return [exact.keypoints(e) for e in exemplars]
        return self.of_images([e.image() for e in exemplars])

    def of_renders(self, renders: Sequence[Any]) -> list:
        """Keypoints of synthetic ``RenderedImage`` objects, from the exemplars' source, so both sides of
        the classifier see keypoints of the same kind."""
        if self.exemplar_source() == "synthetic":
            return [r.keypoints for r in renders]
        return self.of_images([r.image for r in renders])

    def describe(self) -> dict:
        """Where each kind of keypoint came from (recorded in every result)."""
        exemplars = self.exemplar_source()
        record = {
            "exemplars": "exact (recorded by the synthetic dataset)" if exemplars == "synthetic" else "image detector",
            "none_renders": "exact (rendered)" if exemplars == "synthetic" else "image detector",
            "images": "image detector",
        }
        extractor = self._extractor
        if (extractor is None and self.detector != BLAZEPOSE) or isinstance(extractor, OpenPoseExtractor):
            from actionbench.hashing import sha256_file

            self.check()
            if self._weights_sha256 is None:
                self._weights_sha256 = sha256_file(self._weights)
            record["detector"] = {"name": "openpose (controlnet_aux)", "source": self.detector,
                                  "resolution": self.resolution, "weights_sha256": self._weights_sha256}
        elif isinstance(extractor, BlazePoseExtractor):
            record["detector"] = extractor.describe()
        elif extractor is None and self.detector == BLAZEPOSE:
            self.check()
            record["detector"] = BlazePoseExtractor().describe()
        else:
            record["detector"] = {"name": str(getattr(extractor, "name", type(extractor).__name__)),
                                  "object": f"{type(extractor).__module__}.{type(extractor).__qualname__}"}
        return record
