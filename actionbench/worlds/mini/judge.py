"""The "mini" judge: an exact classifier of pose and subject for the mini world (32x32 renders).

A small convolutional network with two heads, fitted on rendered images with their true labels:

* pose: 19 classes (8 actions + 11 everyday poses); action_ok = predicted pose == target action;
* subject: the 23 subjects + "none" (the generic exemplar people); subject_ok = predicted == target.

Generated images are noisier than renders, so the judge is also fitted on renders *passed
through the mini model* (SDEdit: noised to 30-70 % of the schedule, then denoised by the model
with the render's caption). They carry the generator's artefacts but keep the render's labels,
so the judge learns to read through the artefacts without ever seeing an unlabelled sample.
Held-out accuracy is measured on fresh renders with other seeds, clean and passed through the
model, and recorded in ``judge.json`` and in ``describe()`` of every result.

Weights ship in the package data, ``actionbench/data/mini/judge.safetensors``; the lab's ``judge_fit.fit_mini_judge``
(``actionbench mini judge``) refits them. This module only loads and runs the network: a run never needs the fit.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from actionbench.api.evaluator import Evaluator, JudgeRequest, Judgment, image_of
from actionbench.worlds.mini.folders import JUDGE_META, JUDGE_WEIGHTS, shipped_dir

SIZE = 32
NONE = "none"


def pose_classes() -> list[str]:
    from actionbench.worlds.mini.captions import world_poses

    return list(world_poses())


def subject_classes() -> list[str]:
    from actionbench.worlds.synthetic import SUBJECT_IDS

    return list(SUBJECT_IDS) + [NONE]


def subject_label(look: str) -> str:
    from actionbench.worlds.synthetic import SUBJECT_IDS

    return look if look in SUBJECT_IDS else NONE


def conv_features(width: int) -> nn.Sequential:
    """The judges' trunk: six 3x3 conv blocks (GroupNorm, SiLU), 32 -> 8 pixels, 4 x ``width`` channels."""

    def block(c_in, c_out, stride):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.SiLU())

    w = width
    return nn.Sequential(block(3, w, 1), block(w, w, 1), block(w, 2 * w, 2), block(2 * w, 2 * w, 1),
                         block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 1))


class JudgeNet(nn.Module):
    """Six 3x3 conv blocks (32 -> 8 pixels), mean+max pooling, a linear head per label."""

    def __init__(self, n_poses: int, n_subjects: int, width: int = 32):
        super().__init__()

        w = width
        self.features = conv_features(width)
        self.pose = nn.Linear(8 * w, n_poses)
        self.subject = nn.Linear(8 * w, n_subjects)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], dim=1)
        return self.pose(h), self.subject(h)


def to_tensor(images) -> torch.Tensor:
    """PIL images (any size) or a uint8 (N, H, W, 3) array -> float (N, 3, 32, 32) in [-1, 1]."""
    from PIL import Image

    if not isinstance(images, np.ndarray):
        arrays = []
        for im in images:
            im = im.convert("RGB")
            if im.size != (SIZE, SIZE):
                im = im.resize((SIZE, SIZE), Image.BILINEAR)
            arrays.append(np.asarray(im))
        images = np.stack(arrays)
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def predict_indices(net: JudgeNet, x: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    poses, subjects = [], []
    for start in range(0, len(x), batch_size):
        pose_logits, subject_logits = net(x[start:start + batch_size])
        poses.append(pose_logits.argmax(1).numpy())
        subjects.append(subject_logits.argmax(1).numpy())
    return np.concatenate(poses), np.concatenate(subjects)


def load_judge_net(folder: str | Path | None = None) -> tuple[JudgeNet, dict]:
    """The judge network and its record from ``folder`` (default: the shipped one)."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else shipped_dir()
    meta = json.loads((folder / JUDGE_META).read_text())
    net = JudgeNet(len(meta["pose_classes"]), len(meta["subject_classes"]))
    net.load_state_dict(load_file(str(folder / JUDGE_WEIGHTS)))
    return net.eval(), meta


class MiniJudge(Evaluator):
    """Exact judge of the mini world: predicted pose == target action, predicted subject == target subject."""

    name = "mini"
    VERSION = "2"
    world = "mini-v1"  # whose shipped judge it loads when no ``folder`` option is given

    def __init__(self, dataset, device: str = "cpu", **options):
        super().__init__(dataset, device, **options)
        self._net = None
        self._meta = None

    def _load(self) -> JudgeNet:
        if self._net is None:
            self._net, self._meta = load_judge_net(self.options.get("folder") or shipped_dir(self.world))
        return self._net

    def predict(self, images: Sequence) -> list[tuple[str, str]]:
        net = self._load()
        pose_idx, subject_idx = predict_indices(net, to_tensor(list(images)))
        poses, subjects = self._meta["pose_classes"], self._meta["subject_classes"]
        return [(poses[p], subjects[s]) for p, s in zip(pose_idx, subject_idx)]

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Judgment]:
        preds = self.predict([image_of(r) for r in requests])
        return [
            Judgment(r.unit_id, pose == r.action_id, subj == r.subject_id, {"pose": pose, "subject": subj})
            for r, (pose, subj) in zip(requests, preds)
        ]

    def describe(self) -> dict:
        self._load()
        out = super().describe()
        meta = self._meta
        # "model" is the short label the leaderboard groups and prints by; the numbers behind it follow
        out["model"] = (f"CNN, held-out {100 * meta['heldout_pose_accuracy']:.1f}% pose / "
                        f"{100 * meta['heldout_subject_accuracy']:.1f}% subject")
        keys = ("classifier", "heldout_pose_accuracy", "heldout_subject_accuracy", "heldout_through_model",
                "through_model", "train_images", "heldout_images")
        out["heldout"] = {k: meta[k] for k in keys if k in meta}
        return out


class MiniV1Judge(MiniJudge):
    """Exact judge of the mini world v1 under its versioned name (the judge of ``mini`` today, the same weights)."""

    name = "mini-v1"
